//! The two spans of a call between services: the caller's client span
//! (the edge of the service graph, with its interface and function) and
//! the callee's server span below it, which the callee's own work (its
//! instance, its kv operations, its calls) goes below.

use opentelemetry::trace::{SpanContext, SpanKind};

use super::recent::{CALLEE, CALLER, REQUEST_ID, VIA};
use super::{HostSpan, Tracing};

/// A call's client and server spans; both end when this is dropped.
pub struct CallSpans {
    // Dropped in this order: the server span ends before its client.
    server: HostSpan,
    client: HostSpan,
}

/// What a call is, for its spans.
pub struct CallSite<'a> {
    /// The calling service.
    pub caller: &'a str,
    /// The service called.
    pub callee: &'a str,
    /// The interface, or `services.call`.
    pub via: &'a str,
    /// The function, or the request's method and path.
    pub method: &'a str,
    /// The request the call serves.
    pub request_id: &'a str,
}

impl Tracing {
    /// The spans of the call `site` below `parent`; `None` when the parent
    /// is not recorded.
    pub fn call(&self, parent: Option<&SpanContext>, site: &CallSite<'_>) -> Option<CallSpans> {
        let parent = parent.filter(|parent| parent.is_sampled())?;
        let name = format!("{} {}", site.via, site.method);
        let mut client = self.child(name.clone(), SpanKind::Client, parent)?;
        client.set("rpc.system", "hive");
        client.set(VIA, site.via.to_string());
        client.set("rpc.method", site.method.to_string());
        client.set(CALLER, site.caller.to_string());
        client.set(CALLEE, site.callee.to_string());
        client.set(REQUEST_ID, site.request_id.to_string());
        let mut server = self.child(name, SpanKind::Server, &client.context())?;
        server.set("rpc.system", "hive");
        server.set(VIA, site.via.to_string());
        server.set("rpc.method", site.method.to_string());
        server.set("hive.component", site.callee.to_string());
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
