//! The two spans of a call between services: the caller's client span
//! (the edge of the service graph, with its interface and function) and
//! the callee's server span below it, which the callee's own work (its
//! instance, its kv operations, its calls) goes below.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, SpanKind};

use super::recent::{CALLEE, CALLER, REQUEST_ID, VIA};
use super::{HostSpan, Tracing};

/// A call's client and server spans; both end when this is dropped.
pub struct CallSpans {
    // Dropped in this order: the server span ends before its client.
    server: HostSpan,
    client: HostSpan,
}

/// What a call is, for its spans (shared strings: a span keeps them
/// without copying).
pub struct CallSite {
    /// The calling service.
    pub caller: Arc<str>,
    /// The service called.
    pub callee: Arc<str>,
    /// The interface, or `services.call`.
    pub via: Arc<str>,
    /// The function, or the request's method and route.
    pub method: Arc<str>,
    /// The request the call serves.
    pub request_id: Arc<str>,
}

impl Tracing {
    /// The spans of the call `site` below `parent`; `None` when the parent
    /// is not recorded (and then `site` is never made).
    pub fn call(
        &self,
        parent: Option<&SpanContext>,
        site: impl FnOnce() -> CallSite,
    ) -> Option<CallSpans> {
        let parent = parent.filter(|parent| parent.is_sampled())?;
        let site = site();
        let name = format!("{} {}", site.via, site.method);
        let mut client = self.child(name.clone(), SpanKind::Client, parent)?;
        client.set_all([
            KeyValue::new("rpc.system", "hive"),
            KeyValue::new(VIA, site.via.clone()),
            KeyValue::new("rpc.method", site.method.clone()),
            KeyValue::new(CALLER, site.caller),
            KeyValue::new(CALLEE, site.callee.clone()),
            KeyValue::new(REQUEST_ID, site.request_id),
        ]);
        let mut server = self.child(name, SpanKind::Server, &client.context())?;
        server.set_all([
            KeyValue::new("rpc.system", "hive"),
            KeyValue::new(VIA, site.via),
            KeyValue::new("rpc.method", site.method),
            KeyValue::new("hive.component", site.callee),
        ]);
        Some(CallSpans { server, client })
    }
}

impl CallSpans {
    /// The span the callee's work goes below.
    pub fn server_context(&self) -> SpanContext {
        self.server.context()
    }

    /// Marks both failed.
    pub fn fail(&mut self, kind: &str, message: &str) {
        self.server.fail(kind, message.to_string());
        self.client.fail(kind, message.to_string());
    }
}
