//! Serving a Hive-world service: read the body (within the service's
//! limit), convert the request to the WIT record, call `handler.handle` on
//! an instance, and convert the WIT response back.

use std::sync::Arc;

use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, StatusCode};
use opentelemetry::trace::SpanContext;
use serde_json::json;
use tokio::time::Instant;

use super::body::HttpResponse;
use super::body_budget::Reservation;
use super::problem::{close_if_unread, failed, problem};
use super::request_span::RequestTrace;
use super::{Front, convert};
use crate::api::bindings;
use crate::router::InvalidParam;
use crate::runtime::Runtime;
use crate::runtime::call::{Caller, call};
use crate::runtime::failure::{Failure, FailureKind};
use crate::runtime::service::Service;

/// Serves `req` with `service`, matched by `route` with `params`.
pub async fn serve(
    front: &Front,
    service: &Arc<Service>,
    req: Request<Incoming>,
    route: &str,
    params: Result<Vec<(String, String)>, InvalidParam>,
    request_id: &Arc<str>,
) -> HttpResponse {
    let params = match params {
        Ok(params) => params,
        Err(invalid) => {
            let response = problem(
                StatusCode::BAD_REQUEST,
                Some(request_id),
                "a path parameter is not valid UTF-8 once percent-decoded",
                json!({ "parameter": invalid.name }),
            );
            return close_if_unread(response, !req.body().is_end_stream());
        }
    };
    let trace = req.extensions().get::<RequestTrace>().map(|t| t.0.clone());
    // The reservation lasts as long as the body's bytes do: until the guest
    // has answered.
    let (request, _reservation) =
        match read_request(front, req, route, params, service, request_id).await {
            Ok(read) => read,
            Err(response) => return *response,
        };
    let host = &front.host;
    let component = service.name();
    let metrics = host.metrics();
    let response = match invoke(&host.runtime, service, request_id, trace, &request).await {
        Ok(response) => response,
        Err(failure) => return failed(metrics, &failure, component, request_id),
    };
    let limit = service.info.limits.response_body_bytes;
    if response.body.len() > limit {
        let failure = Failure::with_detail(
            FailureKind::ResponseTooLarge,
            format!("{} bytes, limit {limit}", response.body.len()),
        );
        return failed(metrics, &failure, component, request_id);
    }
    convert::to_http_response(response).unwrap_or_else(|reason| {
        let failure = Failure::with_detail(FailureKind::InvalidResponse, reason);
        failed(metrics, &failure, component, request_id)
    })
}

/// Calls `handler.handle(request)` on an instance of `service` (fresh, or
/// kept from an earlier request when the service opted into reuse).
pub async fn invoke(
    runtime: &Runtime,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    trace: Option<SpanContext>,
    request: &bindings::Request,
) -> Result<bindings::Response, Failure> {
    call(
        runtime,
        service,
        Caller::request(request_id.clone()).traced(trace),
        async |store, live| {
            let world = live.hive(&mut *store, &service.entry)?;
            world
                .hive_service_handler()
                .call_handle(&mut *store, request)
                .await
        },
    )
    .await
}

/// Reads the body and builds the WIT request. The body must stay within
/// the service's `request-body-kib` (413), arrive within its
/// `body-timeout-ms` (408), and fit in the host's body budget (503); the
/// budget is reserved up front for an announced length, as it arrives for
/// a chunked one.
async fn read_request(
    front: &Front,
    req: Request<Incoming>,
    route: &str,
    params: Vec<(String, String)>,
    service: &Service,
    request_id: &str,
) -> Result<(bindings::Request, Reservation), Box<HttpResponse>> {
    let limits = &service.info.limits;
    let limit = limits.request_body_bytes;
    let refuse = |status: StatusCode, message: &str, extra: serde_json::Value| {
        // The body is left unread, so the connection cannot carry another
        // request.
        let mut response = close_if_unread(problem(status, Some(request_id), message, extra), true);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Box::new(response)
    };
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            json!({ "limit_bytes": limit }),
        )
    };
    let over_budget = || {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the host is buffering too many request bodies; retry shortly",
            json!({}),
        )
    };
    // Refuse early when the client announces a body over the limit.
    let announced = req.body().size_hint().lower();
    if announced > limit as u64 {
        return Err(too_large());
    }
    let mut reservation = Reservation::default();
    if !front.budget.grow(&mut reservation, announced as usize) {
        return Err(over_budget());
    }

    let (parts, mut body) = req.into_parts();
    let mut bytes = BytesMut::new();
    if !body.is_end_stream() {
        let deadline = Instant::now() + limits.body_timeout;
        bytes.reserve(announced as usize);
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_elapsed) => {
                    return Err(refuse(
                        StatusCode::REQUEST_TIMEOUT,
                        "the request body did not arrive in time",
                        json!({ "timeout_ms": limits.body_timeout.as_millis() as u64 }),
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(err))) => {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "could not read the request body",
                        json!({ "reason": err.to_string() }),
                    ));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let length = bytes.len() + data.len();
            if length > limit {
                return Err(too_large());
            }
            let more = length.saturating_sub(reservation.bytes());
            if !front.budget.grow(&mut reservation, more) {
                return Err(over_budget());
            }
            bytes.extend_from_slice(&data);
        }
    }
    let request = convert::to_wit_request(&parts, bytes.freeze(), route, params);
    Ok((request, reservation))
}
