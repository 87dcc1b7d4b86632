//! Serves one HTTP request: route it, read its body, run it on an instance
//! of the matching service within the service's limits (a fresh one unless
//! the service opted into reuse), and turn the result into a response.
//! `wasi:http` components are handed to [`proxy`](crate::proxy); the
//! HTTP <-> WIT conversions live in [`convert`](crate::convert).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::bindings;
use crate::component::{Entry, Service};
use crate::convert;
use crate::failure::{CalleeError, Failure, guest_backtrace, trap_message};
use crate::host::Host;
use crate::invoke::{self, CallFailure};
use crate::problem::problem;

/// Response header carrying the request id, on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Response bodies: whole for Hive services and host errors, streamed for
/// `wasi:http` components.
pub type HttpBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// What every request gets back.
pub type HttpResponse = Response<HttpBody>;

/// A body that is already complete.
pub fn full_body(bytes: Bytes) -> HttpBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Handles one request end to end and logs one line for it. Never fails:
/// every problem becomes an HTTP error response.
pub async fn handle(
    host: Arc<Host>,
    req: Request<Incoming>,
) -> Result<HttpResponse, std::convert::Infallible> {
    let started = Instant::now();
    let request_id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
    // Method and path outlive the request only for the log line.
    let log_request = tracing::enabled!(target: "hive::request", tracing::Level::INFO);
    let method_path = log_request.then(|| (req.method().clone(), req.uri().path().to_string()));

    let (mut response, served) = route_and_call(&host, req, &request_id).await;
    let elapsed = started.elapsed();
    host.metrics.request(
        served
            .as_ref()
            .map(|(service, _)| service.metrics(&host.metrics)),
        response.status().as_u16(),
        elapsed,
    );

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some((method, path)) = method_path {
        let (component, digest, route) = match &served {
            Some((service, route)) => {
                let digest = &service.digest[..service.digest.len().min(12)];
                (service.name(), digest, &**route)
            }
            None => ("-", "-", "-"),
        };
        tracing::info!(
            target: "hive::request",
            request_id = %request_id,
            method = %method,
            path = %path,
            component = %component,
            digest = %digest,
            route = %route,
            status = response.status().as_u16(),
            duration_us = elapsed.as_micros() as u64,
            "request"
        );
    }
    Ok(response)
}

/// Returns the response, plus the service and the route that handled it,
/// if any.
async fn route_and_call(
    host: &Arc<Host>,
    req: Request<Incoming>,
    request_id: &Arc<str>,
) -> (HttpResponse, Option<(Arc<Service>, Arc<str>)>) {
    let deployment = host.registry.current();
    let Some(found) = deployment.router.lookup(req.uri().path()) else {
        let response = problem(
            StatusCode::NOT_FOUND,
            request_id,
            "no service answers this path",
            json!({ "path": req.uri().path() }),
        );
        return (response, None);
    };
    let service = found.target.clone();
    let route = found.pattern.shared();
    let params = found.params;
    // Release the snapshot: the request keeps only the service it needs.
    drop(deployment);

    // The calls are boxed: their futures hold wasmtime's call state (several
    // KiB), which would otherwise be copied each time hyper or Tokio moves
    // this request's future.
    let response = match &service.entry {
        Entry::Proxy(_) => Box::pin(crate::proxy::serve(host, &service, req, request_id)).await,
        Entry::Service(_) => match read_request(req, &route, params, &service, request_id).await {
            Ok(wit_request) => {
                Box::pin(call_service(host, &service, wit_request, request_id)).await
            }
            Err(response) => *response,
        },
    };
    (response, Some((service, route)))
}

/// Reads the body (within the service's limit) and builds the WIT request.
async fn read_request(
    req: Request<Incoming>,
    route: &str,
    params: Vec<(String, String)>,
    service: &Service,
    request_id: &str,
) -> Result<bindings::Request, Box<HttpResponse>> {
    let limit = service.info.limits.request_body_bytes;
    let too_large = || {
        Box::new(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            request_id,
            "request body too large",
            json!({ "limit_bytes": limit }),
        ))
    };
    // Refuse early when the client announces a body over the limit.
    if req.body().size_hint().lower() > limit as u64 {
        return Err(too_large());
    }

    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(err) => {
            return Err(Box::new(problem(
                StatusCode::BAD_REQUEST,
                request_id,
                "could not read the request body",
                json!({ "reason": err.to_string() }),
            )));
        }
    };

    Ok(convert::to_wit_request(&parts, body, route, params))
}

/// Runs the request on an instance of `service` (fresh, or kept from an
/// earlier request when the service opted into reuse), within its limits.
async fn call_service(
    host: &Arc<Host>,
    service: &Arc<Service>,
    request: bindings::Request,
    request_id: &Arc<str>,
) -> HttpResponse {
    let component = service.name();
    let outcome = invoke::handle(host, service, request_id, &request).await;
    match outcome {
        Ok(response) => {
            let limit = service.info.limits.response_body_bytes;
            if response.body.len() > limit {
                let failure = CallFailure {
                    failure: Failure::ResponseTooLarge,
                    error: None,
                    detail: Some(format!("{} bytes, limit {limit}", response.body.len())),
                };
                return failed(host, &failure, component, request_id);
            }
            into_http(host, response, component, request_id)
        }
        Err(failure) => failed(host, &failure, component, request_id),
    }
}

/// Logs a failure with everything needed to debug it and builds the
/// client's response. The request id doubles as the error id.
pub(crate) fn failed(
    host: &Host,
    failure: &CallFailure,
    component: &str,
    request_id: &str,
) -> HttpResponse {
    record_failure(host, failure, component, request_id);
    failure_response(failure, component, request_id)
}

/// The client's response to a failure, which is recorded elsewhere.
pub(crate) fn failure_response(
    failure: &CallFailure,
    component: &str,
    request_id: &str,
) -> HttpResponse {
    let kind = failure.failure;
    let detail = failure.detail.clone().unwrap_or_default();
    let mut extra = json!({ "error_id": request_id, "component": component, "kind": kind.kind() });
    if let Some(callee) = failure
        .error
        .as_ref()
        .and_then(|err| err.downcast_ref::<CalleeError>())
    {
        extra["callee"] = json!(callee.callee);
        extra["reason"] = json!(callee.reason);
    } else if !detail.is_empty() {
        extra["reason"] = json!(detail);
    }
    let mut response = problem(kind.status(), request_id, kind.message(), extra);
    if matches!(kind, Failure::Overloaded | Failure::Waiting) {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Counts a failure and logs it with its trap and guest backtrace.
pub(crate) fn record_failure(
    host: &Host,
    failure: &CallFailure,
    component: &str,
    request_id: &str,
) {
    let kind = failure.failure;
    host.metrics.failure(component, kind.kind());
    let trap = failure.error.as_ref().map(trap_message).unwrap_or_default();
    let backtrace = failure
        .error
        .as_ref()
        .and_then(guest_backtrace)
        .unwrap_or_default();
    let detail = failure.detail.as_deref().unwrap_or_default();
    tracing::error!(
        error_id = %request_id,
        component = %component,
        kind = %kind.kind(),
        detail = %detail,
        trap = %trap,
        backtrace = %backtrace,
        "request failed: {}",
        kind.message()
    );
}

/// Converts the guest's response, rejecting values HTTP cannot carry.
fn into_http(
    host: &Host,
    response: bindings::Response,
    component: &str,
    request_id: &str,
) -> HttpResponse {
    let invalid = |reason: String| {
        let failure = Failure::InvalidResponse;
        host.metrics.failure(component, failure.kind());
        tracing::error!(
            error_id = %request_id,
            component = %component,
            kind = %failure.kind(),
            "request failed: {}: {reason}",
            failure.message()
        );
        problem(
            failure.status(),
            request_id,
            failure.message(),
            json!({
                "error_id": request_id,
                "component": component,
                "kind": failure.kind(),
                "reason": reason,
            }),
        )
    };
    convert::to_http_response(response).unwrap_or_else(invalid)
}
