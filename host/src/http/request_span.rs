//! The server span of an HTTP request: started from the client's
//! `traceparent` (or starting a trace), named and labelled once routing
//! says which service and route answer, and handed on to the guest as the
//! request's own `traceparent` and to the call path in the request's
//! extensions.

use std::sync::Arc;

use http::HeaderValue;
use hyper::body::Incoming;
use hyper::{Method, Request};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, SpanKind};

use super::problem::FailedWith;
use crate::digest::short;
use crate::runtime::service::Service;
use crate::trace::{HostSpan, REQUEST_ID, TRACESTATE, Tracing, extract, traceparent};

/// The trace context a request's call runs below, in its extensions.
#[derive(Clone, Debug)]
pub struct RequestTrace(pub SpanContext);

/// Starts the span of `req`, below the client's span if it sent one.
pub fn start(tracing: &Tracing, req: &Request<Incoming>, request_id: &Arc<str>) -> HostSpan {
    let parent = extract(req.headers());
    let mut span = tracing.root(method_name(req.method()), SpanKind::Server, parent.as_ref());
    if span.is_recording() {
        span.set_all([
            KeyValue::new("http.request.method", method_name(req.method())),
            KeyValue::new("url.path", req.uri().path().to_string()),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new(REQUEST_ID, request_id.clone()),
        ]);
    }
    span
}

/// Names `span` after the route that answered and records the answer; a
/// 5xx is an error, as the HTTP conventions have it for a server, with
/// the failure's kind when the host made the answer of one.
pub fn answered(
    span: &mut HostSpan,
    method: &Method,
    route: Option<(&Service, &Arc<str>)>,
    status: u16,
    failed: Option<&FailedWith>,
) {
    if !span.is_recording() {
        return;
    }
    if let Some((service, route)) = route {
        span.rename(format!("{} {route}", method_name(method)));
        span.set_all([
            KeyValue::new("http.route", route.clone()),
            KeyValue::new("hive.component", service.info.name.clone()),
            KeyValue::new("hive.version", short(service.digest()).to_string()),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ]);
    } else {
        span.set("http.response.status_code", i64::from(status));
    }
    match failed {
        Some(failed) => span.fail(failed.kind, failed.message.clone()),
        None if status >= 500 => span.fail(&status.to_string(), format!("answered {status}")),
        None => {}
    }
}

/// Replaces the client's trace headers with the request span's and puts
/// the span in the request's extensions for the call path.
pub fn hand_on(req: &mut Request<Incoming>, trace: SpanContext) {
    req.headers_mut().remove(TRACESTATE);
    for (name, value) in traceparent(&trace) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            req.headers_mut().insert(name, value);
        }
    }
    req.extensions_mut().insert(RequestTrace(trace));
}

/// The method as a span wants it: a known one as a constant, any other as
/// `_OTHER`, so a client cannot make up span names.
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}
