//! W3C Trace Context in and out: `traceparent` and `tracestate` read from
//! an incoming request's headers or a delivered message's metadata, and
//! written onto outbound requests and published messages. The parsing and
//! formatting are the OpenTelemetry SDK's own propagator.

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The header (and metadata key) carrying the trace and parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The header carrying vendors' trace state.
pub const TRACESTATE: &str = "tracestate";

/// The caller's span context in `headers`, if a valid one is there.
pub fn extract(headers: &HeaderMap) -> Option<SpanContext> {
    if !headers.contains_key(TRACEPARENT) {
        return None;
    }
    valid(TraceContextPropagator::new().extract(&Headers(headers)))
}

/// The publisher's span context in a message's metadata pairs.
pub fn extract_pairs(pairs: &[(String, String)]) -> Option<SpanContext> {
    if !pairs.iter().any(|(key, _)| key == TRACEPARENT) {
        return None;
    }
    valid(TraceContextPropagator::new().extract(&Pairs(pairs)))
}

/// `traceparent` (and `tracestate`, if any) for `context`, as header or
/// metadata values.
pub fn traceparent(context: &SpanContext) -> Vec<(&'static str, String)> {
    let mut out = Written(Vec::with_capacity(2));
    let cx = Context::new().with_remote_span_context(context.clone());
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    out.0
}

/// Replaces any trace context in `pairs` with `context`'s.
pub fn inject_pairs(context: &SpanContext, pairs: &mut Vec<(String, String)>) {
    pairs.retain(|(key, _)| key != TRACEPARENT && key != TRACESTATE);
    for (key, value) in traceparent(context) {
        pairs.push((key.to_string(), value));
    }
}

fn valid(cx: Context) -> Option<SpanContext> {
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.clone())
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct Pairs<'a>(&'a [(String, String)]);

impl Extractor for Pairs<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}

struct Written(Vec<(&'static str, String)>);

impl Injector for Written {
    fn set(&mut self, key: &str, value: String) {
        let key = match key {
            TRACEPARENT => TRACEPARENT,
            // An empty trace state is not worth a header.
            TRACESTATE if !value.is_empty() => TRACESTATE,
            _ => return,
        };
        self.0.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_header_is_read_and_written_back() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, PARENT.parse().unwrap());
        let context = extract(&headers).expect("a valid traceparent");
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(
            traceparent(&context),
            vec![(TRACEPARENT, PARENT.to_string())]
        );
    }

    #[test]
    fn a_malformed_traceparent_starts_no_trace() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, "00-zz-00f067aa0ba902b7-01".parse().unwrap());
        assert!(extract(&headers).is_none());
        assert!(extract(&HeaderMap::new()).is_none());
    }

    #[test]
    fn metadata_carries_it_through_an_event() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, PARENT.parse().unwrap());
        let context = extract(&headers).unwrap();
        let mut pairs = vec![
            ("traceparent".to_string(), "stale".to_string()),
            ("kind".to_string(), "order".to_string()),
        ];
        inject_pairs(&context, &mut pairs);
        assert_eq!(pairs.len(), 2);
        assert_eq!(extract_pairs(&pairs), Some(context));
    }
}
