//! One HTTP request end to end: give it an id, ask the live deployment
//! which service answers, hand it to that service's world, and log and
//! count the result. Never fails: every problem becomes an HTTP response.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use serde_json::json;

use super::body::HttpResponse;
use super::problem::problem;
use super::{Front, hive_world, wasi_http};
use crate::digest::short;
use crate::logging::escape;
use crate::runtime::service::Service;
use crate::runtime::world::World;

/// Response header carrying the request id, on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Handles one request and logs one line for it.
pub async fn handle(front: Arc<Front>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let host = &front.host;
    let started = Instant::now();
    let request_id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
    // Method and path outlive the request only for the log line.
    let log_request = tracing::enabled!(target: "hive::request", tracing::Level::INFO);
    let method_path = log_request.then(|| (req.method().clone(), req.uri().path().to_string()));

    let (mut response, served) = route_and_call(&front, req, &request_id).await;
    let elapsed = started.elapsed();
    let metrics = host.metrics();
    metrics.request(
        served.as_ref().map(|(service, _)| service.metrics(metrics)),
        response.status().as_u16(),
        elapsed,
    );

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some((method, path)) = method_path {
        let (component, digest, route) = match &served {
            Some((service, route)) => (service.name(), short(service.digest()), &**route),
            None => ("-", "-", "-"),
        };
        tracing::info!(
            target: "hive::request",
            request_id = %request_id,
            method = %method,
            path = %escape(&path),
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
    front: &Front,
    req: Request<Incoming>,
    request_id: &Arc<str>,
) -> (HttpResponse, Option<(Arc<Service>, Arc<str>)>) {
    let host = &front.host;
    let deployment = host.registry.current();
    let Some(found) = deployment.router.lookup(req.uri().path()) else {
        let response = problem(
            StatusCode::NOT_FOUND,
            Some(request_id),
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
    let response = match service.entry.world() {
        World::Proxy => Box::pin(wasi_http::serve(host, &service, req, request_id)).await,
        World::Service => {
            Box::pin(hive_world::serve(
                front, &service, req, &route, params, request_id,
            ))
            .await
        }
    };
    (response, Some((service, route)))
}
