//! Serves standard `wasi:http/proxy` components (built for `wasmtime serve`,
//! Spin, wasmCloud, ...) through the same router, limits and logs as Hive
//! services. Bodies stream both ways: the request body is fed to the guest as
//! it arrives, and the response goes to the client while the guest is still
//! writing it, so neither has to fit in the instance's memory.

use std::sync::Arc;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::component::Service;
use crate::dispatch::{HttpResponse, failed, failure_response, record_failure};
use crate::guarded_body::{CallFailed, GuardedBody};
use crate::host::Host;
use crate::invoke::{self, CallFailure};
use crate::problem::problem;

/// Handles one request with a `wasi:http` component.
pub async fn serve(
    host: &Arc<Host>,
    service: &Arc<Service>,
    req: Request<Incoming>,
    request_id: &Arc<str>,
) -> HttpResponse {
    if req.uri().authority().is_none() && !req.headers().contains_key(hyper::header::HOST) {
        // wasi:http requires an authority; HTTP/1.1 clients always send Host.
        return problem(
            StatusCode::BAD_REQUEST,
            request_id,
            "the request has no Host header",
            json!({}),
        );
    }
    let limits = &service.info.limits;
    let limit = limits.request_body_bytes;
    if req.body().size_hint().lower() > limit as u64 {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            request_id,
            "request body too large",
            json!({ "limit_bytes": limit }),
        );
    }
    // A streamed body is cut off at the limit instead.
    let req = req.map(|body| {
        Limited::new(body, limit)
            .map_err(move |err| match err.downcast::<hyper::Error>() {
                Ok(err) => wasmtime_wasi_http::Error::Hyper(*err),
                Err(err) if err.is::<LengthLimitError>() => {
                    wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit as u64))
                }
                Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(None),
            })
            .boxed_unsync()
    });

    let (sender, receiver) = oneshot::channel();
    let failure_mark = CallFailed::default();
    let task_mark = failure_mark.clone();
    let (task_host, task_service, task_id) = (host.clone(), service.clone(), request_id.clone());
    // The guest runs in its own task: it may keep writing the body after the
    // response head has gone back to hyper. Boxed, so spawning moves a
    // pointer rather than the call's state. The task records its own
    // failure: one after the head (a trap mid-body, the timeout) has no
    // response left to go in, and must still be counted and logged.
    let task = AbortOnDrop(Some(tokio::spawn(Box::pin(async move {
        let result =
            invoke::proxy(&task_host, &task_service, &task_id, req, sender, task_mark).await;
        if let Err(failure) = &result {
            record_failure(&task_host, failure, task_service.name(), &task_id);
        }
        result
    }))));

    let component = service.name();
    match receiver.await {
        Ok(Ok(response)) => {
            // From here the guest streams the body; let it finish on its own.
            task.detach();
            let cap = limits.response_body_bytes;
            response.map(move |body| {
                Limited::new(GuardedBody::new(body, failure_mark), cap)
                    .map_err(
                        move |err| match err.downcast::<wasmtime_wasi_http::Error>() {
                            Ok(err) => *err,
                            Err(_) => {
                                wasmtime_wasi_http::Error::HttpResponseBodySize(Some(cap as u64))
                            }
                        },
                    )
                    .boxed_unsync()
            })
        }
        Ok(Err(code)) => {
            task.detach();
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                request_id,
                "the component answered with an error",
                json!({ "component": component, "error_code": format!("{code:?}") }),
            )
        }
        // The guest dropped the response without setting it: its task's
        // result says why (trap, timeout, ...).
        Err(_) => match task.join().await {
            Some(Ok(Err(failure))) => failure_response(&failure, component, request_id),
            Some(Ok(Ok(()))) => failed(
                host,
                &CallFailure {
                    failure: crate::failure::Failure::InvalidResponse,
                    error: None,
                    detail: Some("it returned without setting a response".into()),
                },
                component,
                request_id,
            ),
            Some(Err(err)) => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                request_id,
                "the component's task failed",
                json!({ "component": component, "reason": err.to_string() }),
            ),
            None => lost_task(request_id),
        },
    }
}

/// `join` found no task: it was already detached, which the branches above
/// never do before joining. Answer rather than panic all the same.
fn lost_task(request_id: &str) -> HttpResponse {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        request_id,
        "the component's task was lost",
        json!({}),
    )
}

/// Aborts the guest's task if the request is dropped before the response
/// head is ready (the client went away), unless detached.
struct AbortOnDrop<T>(Option<JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    fn detach(mut self) {
        self.0 = None;
    }

    async fn join(mut self) -> Option<Result<T, tokio::task::JoinError>> {
        let handle = self.0.take()?;
        Some(handle.await)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}
