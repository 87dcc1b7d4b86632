//! One HTTP request end to end: give it an id, ask the live deployment
//! which service answers, hand it to that service's world, and log and
//! count the result. Never fails: every problem becomes an HTTP response.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use opentelemetry::trace::SpanContext;
use serde_json::json;

use super::body::{HttpBody, HttpResponse};
use super::listener::Peer;
use super::problem::{FailedWith, close_if_unread, problem};
use super::{Front, auth, hive_world, request_span, spin_headers, wasi_http};
use crate::config::auth::CLAIMS_HEADER;
use crate::digest::short;
use crate::logging::{escape, request_line};
use crate::runtime::failure_mark::FailureMark;
use crate::runtime::service::Service;
use crate::runtime::world::World;
use crate::trace::HostSpan;

/// Response header carrying the request id, on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The service and route that handled a request, and for a streamed
/// (`wasi:http`) response the mark that says whether it failed later.
struct Served {
    service: Arc<Service>,
    route: Arc<str>,
    streamed: Option<FailureMark>,
}

/// Handles one request, logs one line for it and records its span.
pub async fn handle(front: Arc<Front>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let started = Instant::now();
    let request_id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
    // Method and path outlive the request only for the log line.
    let log_request = request_line::enabled();
    let method_path = log_request.then(|| (req.method().clone(), req.uri().path().to_string()));
    let span = front
        .host
        .runtime
        .tracing()
        .map(|tracing| request_span::start(tracing, &req, &request_id));

    let context = span.as_ref().map(HostSpan::context);
    let method = span.as_ref().map(|_| req.method().clone());
    let (mut response, served) = route_and_call(&front, req, &request_id, context).await;
    let metrics = front.host.metrics();
    metrics.request(
        served
            .as_ref()
            .map(|served| served.service.metrics(metrics)),
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    let span = span.map(|mut span| {
        let route = served
            .as_ref()
            .map(|served| (&*served.service, &served.route));
        if let Some(method) = &method {
            let failed = response.extensions().get::<FailedWith>();
            request_span::answered(&mut span, method, route, status, failed);
        }
        span
    });
    let line = method_path.map(|(method, path)| RequestLine {
        request_id,
        method,
        path,
        status,
        route: served
            .as_ref()
            .map(|served| (served.service.clone(), served.route.clone())),
        started,
    });
    let done = Done { line, span };
    if done.line.is_none() && done.span.is_none() {
        return Ok(response);
    }
    match served.and_then(|served| served.streamed) {
        // A streamed body may still fail after its head: its line is
        // written, and its span ended, once the body is done.
        Some(mark) => Ok(response.map(|body| {
            LoggedBody {
                inner: body,
                done: Some(done),
                mark,
            }
            .boxed_unsync()
        })),
        None => {
            done.finish(None);
            Ok(response)
        }
    }
}

/// What is left to do once a response is sent: its log line and its span.
struct Done {
    line: Option<RequestLine>,
    span: Option<HostSpan>,
}

impl Done {
    /// Writes the line and ends the span; `failure` is the kind of a
    /// failure that came after the response head.
    fn finish(self, failure: Option<&str>) {
        if let Some(line) = &self.line {
            line.write(failure);
        }
        if let (Some(mut span), Some(kind)) = (self.span, failure) {
            span.fail(kind, "failed after the response head was sent");
        }
    }
}

/// Returns the response, plus what served it, if anything did.
async fn route_and_call(
    front: &Front,
    mut req: Request<Incoming>,
    request_id: &Arc<str>,
    trace: Option<SpanContext>,
) -> (HttpResponse, Option<Served>) {
    // Only the host sets the claims header, after verifying a token.
    auth::strip_claims(&mut req);
    let host = &front.host;
    let deployment = host.registry.current();
    let Some(found) = deployment.router.lookup(req.uri().path()) else {
        let response = problem(
            StatusCode::NOT_FOUND,
            Some(request_id),
            "no service answers this path",
            json!({ "path": req.uri().path() }),
        );
        return (close_if_unread(response, !req.body().is_end_stream()), None);
    };
    let service = found.target.clone();
    let route = found.pattern.shared();
    let params = found.params;
    // Release the snapshot: the request keeps only the service it needs.
    drop(deployment);
    if let Err(refused) = admit(&service, &route, &mut req, request_id) {
        let served = Served {
            service,
            route,
            streamed: None,
        };
        return (*refused, Some(served));
    }

    // The guest reads its trace context as this host's request span, and
    // the call path finds it in the request's extensions.
    if let Some(trace) = trace {
        request_span::hand_on(&mut req, trace);
    }

    // The calls are boxed: their futures hold wasmtime's call state (several
    // KiB), which would otherwise be copied each time hyper or Tokio moves
    // this request's future.
    let (response, streamed) = match service.entry.world() {
        World::Proxy | World::P3 => {
            let peer = req.extensions().get::<Peer>().map(|peer| peer.0);
            let params = params.as_deref().unwrap_or_default();
            if service.built_for_spin {
                spin_headers::set(&mut req, &route, params, peer);
            } else {
                // Whatever a client sent under Spin's names never reaches
                // a component as if the host had set it.
                spin_headers::strip(req.headers_mut());
            }
            let (response, mark) =
                Box::pin(wasi_http::serve(host, &service, req, request_id)).await;
            (response, Some(mark))
        }
        // A worker has no routes, so no request reaches it.
        World::Service | World::Worker => {
            let response = Box::pin(hive_world::serve(
                front, &service, req, &route, params, request_id,
            ))
            .await;
            (response, None)
        }
    };
    let served = Served {
        service,
        route,
        streamed,
    };
    (response, Some(served))
}

/// The service's own front-door checks: its `[auth]` (a verified token's
/// claims are added to the request) and its rate limit.
fn admit(
    service: &Service,
    route: &str,
    req: &mut Request<Incoming>,
    request_id: &str,
) -> Result<(), Box<HttpResponse>> {
    let access = &service.access;
    let unread = !req.body().is_end_stream();
    let mut claims = None;
    if let Some(policy) = &access.auth
        && !policy.is_public(req.method().as_str(), route)
    {
        match auth::verify(policy, req.headers()) {
            Ok(verified) => {
                if let Some(value) = auth::claims_header(&verified) {
                    req.headers_mut().insert(CLAIMS_HEADER, value);
                }
                claims = Some(verified);
            }
            Err(reason) => {
                tracing::info!(
                    request_id,
                    component = %service.name(),
                    "refused: {}",
                    escape(&reason)
                );
                return Err(Box::new(auth::unauthorized(request_id, &reason, unread)));
            }
        }
    }
    if let Some(gate) = &access.rate {
        let peer = req.extensions().get::<Peer>().map(|p| p.0);
        let key = auth::rate_key(&gate.key, peer, claims.as_ref());
        if let Err(wait) = gate.check(&key) {
            return Err(Box::new(auth::too_many(service, request_id, wait, unread)));
        }
    }
    Ok(())
}

/// The one log line of a request.
struct RequestLine {
    request_id: Arc<str>,
    method: Method,
    path: String,
    status: u16,
    route: Option<(Arc<Service>, Arc<str>)>,
    started: Instant,
}

impl RequestLine {
    /// Writes the line; `failure` is the kind of a failure that came after
    /// the response head (the status then is the one already sent).
    fn write(&self, failure: Option<&str>) {
        let (component, digest, route) = match &self.route {
            Some((service, route)) => (service.name(), short(service.digest()), &**route),
            None => ("-", "-", "-"),
        };
        request_line::write(&request_line::RequestLine {
            request_id: &self.request_id,
            method: self.method.as_str(),
            path: &self.path,
            component,
            digest,
            route,
            status: self.status,
            failure: failure.unwrap_or("-"),
            duration_us: self.started.elapsed().as_micros() as u64,
        });
    }
}

/// A streamed response body that writes its request's log line when it is
/// done (ended, broken off, or dropped by a client that went away).
struct LoggedBody {
    inner: HttpBody,
    done: Option<Done>,
    mark: FailureMark,
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done.finish(self.mark.kind().map(|kind| kind.name()));
        }
    }
}
