//! `wasi:http` for guests: the context every instance carries, and the
//! policy for outgoing requests, which go only to the origins a service's
//! manifest lists. Serving `wasi:http/proxy` components is the front
//! door's business, not this file's.

use std::sync::Arc;

use http::HeaderValue;
use opentelemetry::trace::SpanKind;
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
};

use super::request_id::RequestId;
use crate::config::Origin;
use crate::trace::{HostSpan, SpanScope, traceparent};

/// Per-instance `wasi:http` state: the context and the outbound policy.
pub struct HttpCtx {
    ctx: WasiHttpCtx,
    policy: OutboundPolicy,
}

impl HttpCtx {
    /// State for an instance of `component`, which may reach `allowed`.
    /// Each outbound request is a span below `trace`'s current one and
    /// carries its `traceparent`.
    pub fn new(
        component: Arc<str>,
        request_id: RequestId,
        allowed: Arc<[Origin]>,
        trace: SpanScope,
    ) -> HttpCtx {
        HttpCtx {
            ctx: WasiHttpCtx::new(),
            policy: OutboundPolicy {
                component,
                request_id,
                allowed,
                trace,
            },
        }
    }

    /// The view `wasmtime-wasi-http` works through, over the instance's
    /// resource `table`.
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            hooks: &mut self.policy,
            table,
            ctx: &mut self.ctx,
        }
    }
}

/// Lets a request through only to an allowed origin; anything else gets
/// `HTTP-request-denied` in the guest and a log line in the host.
struct OutboundPolicy {
    component: Arc<str>,
    request_id: RequestId,
    allowed: Arc<[Origin]>,
    trace: SpanScope,
}

/// Most of a denied request's body the host reads before refusing it.
const DRAIN_LIMIT: usize = 1 << 20;

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl OutboundPolicy {
    /// The client span of `request`, its `traceparent` set on the request
    /// (replacing any the guest set); the trace's context travels even when
    /// the span is not recorded.
    fn outbound_span(&self, request: &mut http::Request<WasiBody>) -> Option<HostSpan> {
        let parent = self.trace.current()?;
        let span = self
            .trace
            .child(request.method().to_string(), SpanKind::Client);
        let context = span.as_ref().map_or(parent, HostSpan::context);
        for (name, value) in traceparent(&context) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                request.headers_mut().insert(name, value);
            }
        }
        let mut span = span?;
        span.set("http.request.method", request.method().to_string());
        // Without credentials or the query, which may carry secrets.
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http");
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
        span.set("url.full", format!("{scheme}://{host}{port}{}", uri.path()));
        span.set("server.address", host.to_string());
        Some(span)
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let origin = Origin::of(request.uri());
        let allowed = origin
            .as_ref()
            .is_some_and(|origin| self.allowed.contains(origin));
        let mut span = self.outbound_span(&mut request);
        if !allowed {
            if let Some(span) = &mut span {
                span.fail("denied", "not in the manifest's allowed-outbound");
            }
            tracing::warn!(
                component = %self.component,
                request_id = %self.request_id.get(),
                "outbound request to {} denied: not in the manifest's allowed-outbound",
                request.uri()
            );
            // Take (a bounded amount of) the body first: guests typically send
            // the body and await the response together, and a body stream
            // that dies first would hide the real error behind a reset.
            return Box::new(async move {
                use http_body_util::{BodyExt, Limited};
                let _ = Limited::new(request.into_body(), DRAIN_LIMIT)
                    .collect()
                    .await;
                Err(Error::HttpRequestDenied)
            });
        }
        tracing::debug!(
            component = %self.component,
            request_id = %self.request_id.get(),
            "outbound request to {}",
            request.uri()
        );
        Box::new(async move {
            use http_body_util::BodyExt;
            let sent = wasmtime_wasi_http::default_send_request(request, options).await;
            if let Some(span) = &mut span {
                match &sent {
                    Ok((response, _)) => {
                        let status = response.status().as_u16();
                        span.set("http.response.status_code", i64::from(status));
                        if status >= 500 {
                            span.fail(&status.to_string(), format!("answered {status}"));
                        }
                    }
                    Err(err) => span.fail("send", err.to_string()),
                }
            }
            drop(span);
            let (response, io) = sent?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
