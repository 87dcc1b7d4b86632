//! Serves standard `wasi:http/proxy` components (built for `wasmtime serve`,
//! Spin, wasmCloud, ...) through the same router, limits and logs as Hive
//! services. Bodies stream both ways: the request body is fed to the guest
//! as it arrives, and the response goes to the client while the guest is
//! still writing it, so neither has to fit in the instance's memory.

use std::sync::Arc;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::body::{HttpBody, HttpResponse};
use super::guarded_body::GuardedBody;
use super::problem::{failed, failure_response, problem};
use crate::host::Host;
use crate::runtime::Runtime;
use crate::runtime::call::{Caller, call};
use crate::runtime::failure::{Failure, FailureKind};
use crate::runtime::failure_mark::FailureMark;
use crate::runtime::service::Service;

/// What a `wasi:http` component sets as its response: a head with a
/// streaming body, or an error code.
pub type ResponseHead = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// Where a `wasi:http` component's response head is sent.
pub type ResponseSender = oneshot::Sender<ResponseHead>;

/// Handles one request with a `wasi:http` component.
pub async fn serve(
    host: &Arc<Host>,
    service: &Arc<Service>,
    req: Request<Incoming>,
    request_id: &Arc<str>,
) -> HttpResponse {
    if let Err(reason) = check_authority(&req) {
        return problem(StatusCode::BAD_REQUEST, Some(request_id), reason, json!({}));
    }
    let limits = &service.info.limits;
    let limit = limits.request_body_bytes;
    if req.body().size_hint().lower() > limit as u64 {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(request_id),
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
    let failure_mark = FailureMark::default();
    let task_mark = failure_mark.clone();
    let (task_host, task_service, task_id) = (host.clone(), service.clone(), request_id.clone());
    // The guest runs in its own task: it may keep writing the body after the
    // response head has gone back to hyper. Boxed, so spawning moves a
    // pointer rather than the call's state. The task records its own
    // failure: one after the head (a trap mid-body, the timeout) has no
    // response left to go in, and must still be counted and logged.
    let task = AbortOnDrop(Some(tokio::spawn(Box::pin(async move {
        let result = run(
            &task_host.runtime,
            &task_service,
            &task_id,
            req,
            sender,
            task_mark,
        )
        .await;
        if let Err(failure) = &result {
            failure.record(task_host.metrics(), task_service.name(), &task_id);
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
                Some(request_id),
                "the component answered with an error",
                json!({ "component": component, "error_code": format!("{code:?}") }),
            )
        }
        // The guest dropped the response without setting it: its task's
        // result says why (trap, timeout, ...).
        Err(_) => match task.join().await {
            Some(Ok(Err(failure))) => failure_response(&failure, component, request_id),
            Some(Ok(Ok(()))) => failed(
                host.metrics(),
                &Failure::with_detail(
                    FailureKind::InvalidResponse,
                    "it returned without setting a response",
                ),
                component,
                request_id,
            ),
            Some(Err(err)) => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(request_id),
                "the component's task failed",
                json!({ "component": component, "reason": err.to_string() }),
            ),
            // `join` found no task: it was already detached, which the
            // branches above never do before joining. Answer rather than
            // panic all the same.
            None => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(request_id),
                "the component's task was lost",
                json!({}),
            ),
        },
    }
}

/// wasi:http hands the guest the request's authority, from the URI or the
/// `Host` header; one that is missing or not a valid authority is the
/// client's mistake (400), not a failure of the component.
fn check_authority<B>(req: &Request<B>) -> Result<(), &'static str> {
    if req.uri().authority().is_some() {
        return Ok(());
    }
    let Some(host) = req.headers().get(hyper::header::HOST) else {
        return Err("the request has no Host header");
    };
    match http::uri::Authority::try_from(host.as_bytes()) {
        Ok(authority) if !authority.as_str().is_empty() => Ok(()),
        _ => Err("the request's Host header is not a valid host[:port]"),
    }
}

/// Runs `incoming-handler.handle` for `request` on an instance of
/// `service`: the response head goes to `sender`, and `mark` is raised if
/// the call fails (so a body being streamed ends as cut off).
pub async fn run(
    runtime: &Runtime,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    request: http::Request<HttpBody>,
    sender: ResponseSender,
    mark: FailureMark,
) -> Result<(), Failure> {
    let caller = Caller {
        mark: Some(mark),
        ..Caller::request(request_id.clone())
    };
    call(runtime, service, caller, async |store, live| {
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let proxy = live.proxy(&mut *store, &service.entry)?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, request, out)
            .await
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::check_authority;

    fn with_host(host: &[u8]) -> hyper::Request<()> {
        let mut request = hyper::Request::get("/x").body(()).unwrap();
        request.headers_mut().insert(
            hyper::header::HOST,
            hyper::header::HeaderValue::from_bytes(host).unwrap(),
        );
        request
    }

    #[test]
    fn hosts_that_are_not_authorities_are_refused() {
        assert!(check_authority(&with_host(b"localhost:8080")).is_ok());
        assert!(check_authority(&with_host(b"example.com")).is_ok());
        for bad in [&b"\xff"[..], b"", b"a b", b"x/y"] {
            assert!(check_authority(&with_host(bad)).is_err(), "{bad:?}");
        }
        let absolute = hyper::Request::get("http://example.com/x")
            .body(())
            .unwrap();
        assert!(check_authority(&absolute).is_ok());
        let none = hyper::Request::get("/x").body(()).unwrap();
        assert!(check_authority(&none).is_err());
    }
}
