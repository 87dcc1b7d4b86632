//! Serves one HTTP request: route it, read its body, run it on a fresh
//! instance of the matching service, and turn the result into a response.
//!
//! This is the only place that converts between hyper's types and the WIT
//! `request`/`response` records.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use wasmtime::{Store, UpdateDeadline};

use crate::bindings;
use crate::component::Service;
use crate::host::Host;
use crate::problem::problem;
use crate::state::InstanceState;

/// Response header carrying the request id, on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Headers the host manages itself; a guest's values for them are dropped.
const HOST_MANAGED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
];

/// Handles one request end to end and logs one line for it. Never fails:
/// every problem becomes an HTTP error response.
pub async fn handle(
    host: Arc<Host>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let started = Instant::now();
    let request_id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    let (mut response, component, route) = route_and_call(&host, req, &request_id).await;

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    tracing::info!(
        target: "hive::request",
        request_id = %request_id,
        method = %method,
        path = %path,
        component = %component.as_deref().unwrap_or("-"),
        route = %route.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        duration_us = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}

/// Returns the response plus the component and route that handled it, if any.
async fn route_and_call(
    host: &Host,
    req: Request<Incoming>,
    request_id: &Arc<str>,
) -> (Response<Full<Bytes>>, Option<String>, Option<String>) {
    let deployment = host.registry.current();
    let Some(found) = deployment.router.lookup(req.uri().path()) else {
        let response = problem(
            StatusCode::NOT_FOUND,
            request_id,
            "no service answers this path",
            json!({ "path": req.uri().path() }),
        );
        return (response, None, None);
    };
    let service = found.target.clone();
    let route = found.pattern.as_str().to_string();
    let params = found.params;
    // Release the snapshot: the request keeps only the service it needs.
    drop(deployment);

    let response = match read_request(req, &route, params, &service, request_id).await {
        Ok(wit_request) => call_service(host, &service, wit_request, request_id).await,
        Err(response) => *response,
    };
    (response, Some(service.name().to_string()), Some(route))
}

/// Reads the body (within the service's limit) and builds the WIT request.
async fn read_request(
    req: Request<Incoming>,
    route: &str,
    params: Vec<(String, String)>,
    service: &Service,
    request_id: &str,
) -> Result<bindings::Request, Box<Response<Full<Bytes>>>> {
    let limit = service.info.limits.max_request_body_bytes;
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

    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(bindings::Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers,
        route: route.to_string(),
        params,
        body: body.to_vec(),
    })
}

/// Instantiates `service` in a fresh store and calls its handler, within the
/// service's time limit.
async fn call_service(
    host: &Host,
    service: &Arc<Service>,
    request: bindings::Request,
    request_id: &Arc<str>,
) -> Response<Full<Bytes>> {
    let mut store = Store::new(
        &host.engine,
        InstanceState::new(service.info.clone(), request_id.clone()),
    );
    store.limiter(|state| &mut state.limits);
    // Yield to Tokio on every epoch tick, so a busy guest shares its worker
    // thread and the timeout below can fire.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));

    let call = async {
        let instance = service.pre.instantiate_async(&mut store).await?;
        instance
            .hive_service_handler()
            .call_handle(&mut store, &request)
            .await
    };
    let timeout = service.info.limits.timeout;
    let component = service.name();
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => into_http(response, component, request_id),
        Ok(Err(err)) => {
            tracing::error!(
                request_id = %request_id,
                component = %component,
                "component failed: {err:?}"
            );
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                request_id,
                "the component failed while handling the request",
                json!({ "component": component }),
            )
        }
        Err(_elapsed) => {
            tracing::error!(
                request_id = %request_id,
                component = %component,
                "component exceeded its time limit of {timeout:?}; instance dropped"
            );
            problem(
                StatusCode::GATEWAY_TIMEOUT,
                request_id,
                "the component did not answer in time",
                json!({ "component": component, "timeout_ms": timeout.as_millis() as u64 }),
            )
        }
    }
}

/// Converts the guest's response, rejecting values HTTP cannot carry.
fn into_http(
    response: bindings::Response,
    component: &str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let invalid = |reason: String| {
        tracing::error!(request_id = %request_id, component = %component, "component returned an invalid response: {reason}");
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            request_id,
            "the component returned an invalid response",
            json!({ "component": component, "reason": reason }),
        )
    };
    let Ok(status) = StatusCode::from_u16(response.status) else {
        return invalid(format!(
            "status {} is not a valid HTTP status",
            response.status
        ));
    };
    let mut http = Response::new(Full::new(Bytes::from(response.body)));
    *http.status_mut() = status;
    for (name, value) in response.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return invalid(format!("header name {name:?} is not valid"));
        };
        if HOST_MANAGED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let Ok(value) = HeaderValue::from_str(&value) else {
            return invalid(format!("header {name} has an invalid value"));
        };
        http.headers_mut().append(name, value);
    }
    http
}
