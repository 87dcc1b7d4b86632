//! `wasi:http` for guests: the context every instance carries, and the
//! policy for outgoing requests, which go only to the origins a service's
//! manifest lists. Serving `wasi:http/proxy` components is the front
//! door's business, not this file's.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
};

use super::request_id::RequestId;
use crate::config::Origin;

/// Per-instance `wasi:http` state: the context and the outbound policy.
pub struct HttpCtx {
    ctx: WasiHttpCtx,
    policy: OutboundPolicy,
}

impl HttpCtx {
    /// State for an instance of `component`, which may reach `allowed`.
    pub fn new(component: Arc<str>, request_id: RequestId, allowed: Arc<[Origin]>) -> HttpCtx {
        HttpCtx {
            ctx: WasiHttpCtx::new(),
            policy: OutboundPolicy {
                component,
                request_id,
                allowed,
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

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let origin = Origin::of(request.uri());
        let allowed = origin
            .as_ref()
            .is_some_and(|origin| self.allowed.contains(origin));
        if !allowed {
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
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
