//! `hive:service/services`, and calls between services in general.
//!
//! A guest that calls another service must reach up to the host (which
//! knows the live deployment) from code that must not know the host. It goes
//! through [`Calls`], a small trait defined here and implemented by the
//! host: instance state holds a weak handle to it, never the host itself.
//!
//! The generic `services.call` sends an HTTP-shaped request to a service by
//! name; its failure comes back as a `call-error`, not a trap, so the caller
//! decides what to do. Typed calls (one service importing an interface
//! another exports) are linked by the runtime and reach [`Calls`] through
//! the same context.

use std::pin::Pin;
use std::sync::{Arc, Weak};

use opentelemetry::trace::SpanContext;
use wasmtime::component::{HasSelf, Linker, Val};

use super::bindings::services::{self, CallError};
use super::bindings::{Request, Response};
use super::request_id::RequestId;
use crate::trace::SpanScope;

/// A boxed future, as a trait object's async method returns it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The call being made: by whom, for which request, and how deep below it.
#[derive(Debug, Clone)]
pub struct CallScope {
    /// The calling service.
    pub caller: Arc<str>,
    /// The HTTP request the chain of calls serves.
    pub request_id: Arc<str>,
    /// How deep the callee runs below the HTTP request (the request itself
    /// is depth 0, so a direct call is depth 1).
    pub depth: u32,
    /// The caller's span, which the call's spans go below.
    pub trace: Option<SpanContext>,
}

/// How a guest reaches other services; implemented by the host.
pub trait Calls: Send + Sync {
    /// `services.call`: `request` to the service named `service`.
    fn call_service(
        &self,
        scope: CallScope,
        service: String,
        request: Request,
    ) -> BoxFuture<'_, Result<Response, CallError>>;

    /// A typed call: `interface.func(params)` on whichever service exports
    /// `interface`, its values written into `results`. Fails with an error
    /// the runtime classifies (the callee's failure, or why there is none).
    fn call_interface<'a>(
        &'a self,
        scope: CallScope,
        interface: Arc<str>,
        func: Arc<str>,
        params: &'a [Val],
        results: &'a mut [Val],
    ) -> BoxFuture<'a, wasmtime::Result<()>>;
}

/// What an instance needs to call other services.
pub struct ServicesCtx {
    calls: Weak<dyn Calls>,
    caller: Arc<str>,
    request_id: RequestId,
    depth: u32,
    trace: SpanScope,
}

impl ServicesCtx {
    /// Calls made by `caller`, running `depth` calls below the request that
    /// `request_id` holds.
    pub fn new(
        calls: Weak<dyn Calls>,
        caller: Arc<str>,
        request_id: RequestId,
        depth: u32,
        trace: SpanScope,
    ) -> ServicesCtx {
        ServicesCtx {
            calls,
            caller,
            request_id,
            depth,
            trace,
        }
    }

    /// Moves the instance below another call: a reused or prewarmed
    /// instance serves calls at any depth, and the cycle guard counts from
    /// the one it serves now.
    pub fn set_depth(&mut self, depth: u32) {
        self.depth = depth;
    }

    /// The scope of a call made from this instance now.
    fn scope(&self) -> CallScope {
        CallScope {
            caller: self.caller.clone(),
            request_id: self.request_id.get(),
            depth: self.depth + 1,
            trace: self.trace.current(),
        }
    }

    /// A typed call from this instance (see [`Calls::call_interface`]).
    pub fn call_interface<'a>(
        &self,
        interface: Arc<str>,
        func: Arc<str>,
        params: &'a [Val],
        results: &'a mut [Val],
    ) -> BoxFuture<'a, wasmtime::Result<()>> {
        let calls = self.calls.upgrade();
        let scope = self.scope();
        Box::pin(async move {
            let Some(calls) = calls else {
                wasmtime::bail!("the host is shutting down");
            };
            calls
                .call_interface(scope, interface, func, params, results)
                .await
        })
    }
}

impl services::Host for ServicesCtx {
    async fn call(&mut self, service: String, request: Request) -> Result<Response, CallError> {
        let Some(calls) = self.calls.upgrade() else {
            return Err(CallError::Unavailable("the host is shutting down".into()));
        };
        calls.call_service(self.scope(), service, request).await
    }
}

/// Links `hive:service/services` to the [`ServicesCtx`] that `get` finds in
/// `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ServicesCtx,
) -> wasmtime::Result<()> {
    services::add_to_linker::<T, HasSelf<ServicesCtx>>(linker, get)
}
