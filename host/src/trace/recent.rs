//! The host's recent spans, kept in a ring: what the console draws as a
//! request's waterfall, what `hive trace` prints, and where the service
//! graph's edges get their latencies, with no collector anywhere.
//!
//! A busy host turns its ring over in seconds, and the traces worth
//! looking at are the failed ones: spans of a trace with an error in it
//! move, when the ring lets go of them, into a second ring of their own.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde::Serialize;

/// How many finished spans a host keeps.
pub const KEPT_SPANS: usize = 8192;
/// How many spans of failed traces it keeps besides.
const KEPT_FAILED_SPANS: usize = 4096;
/// How many failed traces it remembers to keep.
const FAILED_TRACES: usize = 256;

/// The attribute naming the Hive request a span serves.
pub const REQUEST_ID: &str = "hive.request.id";
/// On a call's client span: the calling service.
pub const CALLER: &str = "hive.caller";
/// On a call's client span: the service called.
pub const CALLEE: &str = "hive.callee";
/// On a call's client span: the interface, or `services.call`.
pub const VIA: &str = "rpc.service";

/// The last [`KEPT_SPANS`] spans, oldest first, and spans of recent
/// failed traces.
pub struct Recent {
    rings: Mutex<Rings>,
    cap: usize,
}

struct Rings {
    all: VecDeque<Kept>,
    failed: VecDeque<Kept>,
    /// Traces with an error span, oldest first, and the same as a set.
    failed_traces: VecDeque<TraceId>,
    failed_set: HashSet<TraceId>,
}

/// What is kept of a span: what the views need, moved out of its data.
struct Kept {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: SpanId,
    name: Cow<'static, str>,
    kind: SpanKind,
    start_time: SystemTime,
    end_time: SystemTime,
    status: Status,
    attributes: Vec<KeyValue>,
    events: Vec<Cow<'static, str>>,
}

impl From<SpanData> for Kept {
    fn from(span: SpanData) -> Kept {
        Kept {
            trace_id: span.span_context.trace_id(),
            span_id: span.span_context.span_id(),
            parent_span_id: span.parent_span_id,
            name: span.name,
            kind: span.span_kind,
            start_time: span.start_time,
            end_time: span.end_time,
            status: span.status,
            attributes: span.attributes,
            events: span.events.events.into_iter().map(|e| e.name).collect(),
        }
    }
}

/// One trace, as the console and `hive trace` show it.
#[derive(Debug, Serialize)]
pub struct TraceView {
    /// The request asked for.
    pub request_id: String,
    /// Its trace.
    pub trace_id: String,
    /// The trace's spans this host kept, by start time.
    pub spans: Vec<SpanView>,
}

/// One span of a [`TraceView`].
#[derive(Debug, Serialize)]
pub struct SpanView {
    /// Its id.
    pub span_id: String,
    /// Its parent's, when it has one (possibly on another host or client).
    pub parent_span_id: Option<String>,
    /// What it is.
    pub name: String,
    /// `server`, `client`, `internal`, `producer` or `consumer`.
    pub kind: &'static str,
    /// Microseconds after the trace's first span here started.
    pub start_us: u64,
    /// How long it took, in microseconds.
    pub duration_us: u64,
    /// `ok`, `error` or `unset`.
    pub status: &'static str,
    /// Why it failed.
    pub status_message: Option<String>,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
    /// Its events' names (failures are `exception`).
    pub events: Vec<String>,
}

/// Latencies of one service-graph edge, from its calls' client spans.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EdgeLatency {
    /// The caller.
    pub from: String,
    /// The callee.
    pub to: String,
    /// The interface, or `services.call`.
    pub via: String,
    /// Calls among the kept spans.
    pub count: usize,
    /// Their median, in milliseconds.
    pub p50_ms: f64,
    /// Their 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// The slowest of them, for a link to its waterfall.
    pub slowest_request: Option<String>,
}

impl Recent {
    /// A ring of at most `cap` spans.
    pub fn new(cap: usize) -> Recent {
        Recent {
            rings: Mutex::new(Rings {
                all: VecDeque::with_capacity(cap),
                failed: VecDeque::new(),
                failed_traces: VecDeque::new(),
                failed_set: HashSet::new(),
            }),
            cap,
        }
    }

    /// Keeps `span`, letting go of the oldest when full (into the failed
    /// ring, if its trace failed).
    pub fn push(&self, span: SpanData) {
        let span = Kept::from(span);
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(span.status, Status::Error { .. }) && !rings.failed_set.contains(&span.trace_id)
        {
            rings.failed_set.insert(span.trace_id);
            rings.failed_traces.push_back(span.trace_id);
            if rings.failed_traces.len() > FAILED_TRACES
                && let Some(old) = rings.failed_traces.pop_front()
            {
                rings.failed_set.remove(&old);
            }
        }
        if rings.all.len() >= self.cap
            && let Some(old) = rings.all.pop_front()
            && rings.failed_set.contains(&old.trace_id)
        {
            if rings.failed.len() >= KEPT_FAILED_SPANS {
                rings.failed.pop_front();
            }
            rings.failed.push_back(old);
        }
        rings.all.push_back(span);
    }

    /// The trace of the request `request_id`, if this host kept a span of it.
    pub fn trace_of_request(&self, request_id: &str) -> Option<TraceView> {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let spans = || rings.failed.iter().chain(rings.all.iter());
        let trace_id = spans()
            .find(|span| attribute(span, REQUEST_ID).as_deref() == Some(request_id))?
            .trace_id;
        let mut trace: Vec<&Kept> = spans().filter(|span| span.trace_id == trace_id).collect();
        trace.sort_by_key(|span| span.start_time);
        let origin = trace
            .first()
            .map_or(SystemTime::UNIX_EPOCH, |s| s.start_time);
        Some(TraceView {
            request_id: request_id.to_string(),
            trace_id: trace_id.to_string(),
            spans: trace.into_iter().map(|span| view(span, origin)).collect(),
        })
    }

    /// p50 and p99 of each edge's calls among the kept spans.
    pub fn edge_latencies(&self) -> Vec<EdgeLatency> {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let mut edges: BTreeMap<Edge, Vec<Call>> = BTreeMap::new();
        for span in rings.all.iter().filter(|s| s.kind == SpanKind::Client) {
            let (Some(from), Some(to), Some(via)) = (
                attribute(span, CALLER),
                attribute(span, CALLEE),
                attribute(span, VIA),
            ) else {
                continue;
            };
            edges
                .entry((from, to, via))
                .or_default()
                .push((micros(span), attribute(span, REQUEST_ID)));
        }
        drop(rings);
        edges
            .into_iter()
            .map(|((from, to, via), mut calls)| {
                calls.sort_by_key(|(us, _)| *us);
                let at = |q: f64| {
                    let index = ((calls.len() as f64 - 1.0) * q).round() as usize;
                    calls[index.min(calls.len() - 1)].0 as f64 / 1000.0
                };
                EdgeLatency {
                    from,
                    to,
                    via,
                    count: calls.len(),
                    p50_ms: at(0.5),
                    p99_ms: at(0.99),
                    slowest_request: calls.last().and_then(|(_, id)| id.clone()),
                }
            })
            .collect()
    }
}

/// An edge: caller, callee, interface.
type Edge = (String, String, String);
/// One call along it: microseconds, and its request.
type Call = (u64, Option<String>);

fn attribute(span: &Kept, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| text(&kv.value))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.as_str().to_string(),
        other => other.to_string(),
    }
}

fn micros(span: &Kept) -> u64 {
    span.end_time
        .duration_since(span.start_time)
        .map_or(0, |d| d.as_micros() as u64)
}

fn view(span: &Kept, origin: SystemTime) -> SpanView {
    let (status, status_message) = match &span.status {
        Status::Ok => ("ok", None),
        Status::Error { description } => ("error", Some(description.to_string())),
        Status::Unset => ("unset", None),
    };
    let parent = span.parent_span_id;
    SpanView {
        span_id: span.span_id.to_string(),
        parent_span_id: (parent != SpanId::INVALID).then(|| parent.to_string()),
        name: span.name.to_string(),
        kind: match span.kind {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
            SpanKind::Internal => "internal",
        },
        start_us: span
            .start_time
            .duration_since(origin)
            .map_or(0, |d| d.as_micros() as u64),
        duration_us: micros(span),
        status,
        status_message,
        attributes: span
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str().to_string(), text(&kv.value)))
            .collect(),
        events: span.events.iter().map(|e| e.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::Duration;

    fn span(trace: u128, id: u64, request: &str, failed: bool) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "GET /hello".into(),
            start_time: start,
            end_time: start + Duration::from_micros(1500),
            attributes: vec![KeyValue::new(REQUEST_ID, request.to_string())],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if failed {
                Status::error("trap")
            } else {
                Status::Unset
            },
            instrumentation_scope: InstrumentationScope::default(),
        }
    }

    #[test]
    fn a_failed_trace_outlives_the_ring_and_a_fine_one_does_not() {
        let recent = Recent::new(4);
        recent.push(span(1, 1, "failed", true));
        recent.push(span(2, 2, "fine", false));
        for n in 3..20 {
            recent.push(span(u128::from(n), n, "later", false));
        }
        let kept = recent
            .trace_of_request("failed")
            .expect("the failed trace is kept");
        assert_eq!(kept.spans.len(), 1);
        assert_eq!(kept.spans[0].status, "error");
        assert_eq!(kept.spans[0].duration_us, 1500);
        assert!(recent.trace_of_request("fine").is_none());
        assert!(recent.trace_of_request("later").is_some());
    }
}
