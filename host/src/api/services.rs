//! `hive:service/services`: an HTTP-shaped call to another service by name,
//! inside the host. The callee runs in its own instance with its own limits;
//! its failure comes back as a `call-error`, not a trap, so the caller
//! decides what to do.

use crate::bindings::hive::service::services::{CallError, Host};
use crate::bindings::{Request, Response};
use crate::component::Entry;
use crate::failure::Failure;
use crate::invoke;
use crate::link::MAX_CALL_DEPTH;
use crate::state::InstanceState;

impl Host for InstanceState {
    async fn call(&mut self, service: String, mut req: Request) -> Result<Response, CallError> {
        let depth = self.depth + 1;
        if depth > MAX_CALL_DEPTH {
            return Err(CallError::DepthExceeded(MAX_CALL_DEPTH));
        }
        let deployment = self.host.registry.current();
        let Some(callee) = deployment.services.get(&service).cloned() else {
            return Err(CallError::NotFound(format!("no service named `{service}`")));
        };
        // Fill in route and params as an HTTP request to that path would.
        if let Some(found) = deployment
            .router
            .lookup(&req.path)
            .filter(|found| found.target.name() == callee.name())
        {
            req.route = found.pattern.as_str().to_string();
            req.params = found.params;
        }
        drop(deployment);

        let (host, request_id) = (self.host.clone(), self.request_id.clone());
        let caller = self.service.name.clone();
        let outcome = invoke::run(&host, &callee, &request_id, depth, async |store, entry| {
            let Entry::Service(pre) = entry else {
                wasmtime::bail!(
                    "it is a wasi:http component; only Hive services take calls by name"
                );
            };
            let instance = pre.instantiate_async(&mut *store).await?;
            instance
                .hive_service_handler()
                .call_handle(&mut *store, &req)
                .await
        })
        .await;
        outcome.map_err(|failure| {
            tracing::warn!(
                request_id = %request_id,
                caller = %caller,
                callee = %service,
                "call failed: {}",
                failure.describe()
            );
            match failure.failure {
                Failure::Overloaded | Failure::Waiting | Failure::CalleeUnavailable => {
                    CallError::Unavailable(failure.describe())
                }
                Failure::CallDepthExceeded => CallError::DepthExceeded(MAX_CALL_DEPTH),
                _ => CallError::Failed(failure.describe()),
            }
        })
    }
}
