//! Serving a Hive-world service: read the body (within the service's
//! limit), convert the request to the WIT record, call `handler.handle` on
//! an instance, and convert the WIT response back.

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Request, StatusCode};
use serde_json::json;

use super::body::HttpResponse;
use super::convert;
use super::problem::{failed, problem};
use crate::api::bindings;
use crate::host::Host;
use crate::runtime::Runtime;
use crate::runtime::call::{Caller, call};
use crate::runtime::failure::{Failure, FailureKind};
use crate::runtime::service::Service;

/// Serves `req` with `service`, matched by `route` with `params`.
pub async fn serve(
    host: &Host,
    service: &Arc<Service>,
    req: Request<Incoming>,
    route: &str,
    params: Vec<(String, String)>,
    request_id: &Arc<str>,
) -> HttpResponse {
    let request = match read_request(req, route, params, service, request_id).await {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let component = service.name();
    let metrics = host.metrics();
    let response = match invoke(&host.runtime, service, request_id, &request).await {
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
    request: &bindings::Request,
) -> Result<bindings::Response, Failure> {
    call(
        runtime,
        service,
        Caller::request(request_id.clone()),
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
            Some(request_id),
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
                Some(request_id),
                "could not read the request body",
                json!({ "reason": err.to_string() }),
            )));
        }
    };

    Ok(convert::to_wit_request(&parts, body, route, params))
}
