//! The host's recent spans, kept in a ring: what the console draws as a
//! request's waterfall, what `hive trace` prints, and where the service
//! graph's edges get their latencies, with no collector anywhere.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;
use serde::Serialize;

/// How many finished spans a host keeps.
pub const KEPT_SPANS: usize = 20_000;

/// The attribute naming the Hive request a span serves.
pub const REQUEST_ID: &str = "hive.request.id";
/// On a call's client span: the calling service.
pub const CALLER: &str = "hive.caller";
/// On a call's client span: the service called.
pub const CALLEE: &str = "hive.callee";
/// On a call's client span: the interface, or `services.call`.
pub const VIA: &str = "rpc.service";

/// The last [`KEPT_SPANS`] spans, oldest first.
pub struct Recent {
    spans: Mutex<VecDeque<SpanData>>,
    cap: usize,
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
            spans: Mutex::new(VecDeque::with_capacity(cap.min(1024))),
            cap,
        }
    }

    /// Keeps `span`, forgetting the oldest when full.
    pub fn push(&self, span: SpanData) {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if spans.len() >= self.cap {
            spans.pop_front();
        }
        spans.push_back(span);
    }

    /// The trace of the request `request_id`, if this host kept a span of it.
    pub fn trace_of_request(&self, request_id: &str) -> Option<TraceView> {
        let spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        let trace_id = spans
            .iter()
            .find(|span| attribute(span, REQUEST_ID).as_deref() == Some(request_id))?
            .span_context
            .trace_id();
        let mut trace: Vec<&SpanData> = spans
            .iter()
            .filter(|span| span.span_context.trace_id() == trace_id)
            .collect();
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
        let spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        let mut edges: BTreeMap<(String, String, String), Vec<(u64, Option<String>)>> =
            BTreeMap::new();
        for span in spans.iter().filter(|s| s.span_kind == SpanKind::Client) {
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
        drop(spans);
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

fn attribute(span: &SpanData, key: &str) -> Option<String> {
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

fn micros(span: &SpanData) -> u64 {
    span.end_time
        .duration_since(span.start_time)
        .map_or(0, |d| d.as_micros() as u64)
}

fn view(span: &SpanData, origin: SystemTime) -> SpanView {
    let (status, status_message) = match &span.status {
        Status::Ok => ("ok", None),
        Status::Error { description } => ("error", Some(description.to_string())),
        Status::Unset => ("unset", None),
    };
    let parent = span.parent_span_id;
    SpanView {
        span_id: span.span_context.span_id().to_string(),
        parent_span_id: (parent != opentelemetry::trace::SpanId::INVALID)
            .then(|| parent.to_string()),
        name: span.name.to_string(),
        kind: match span.span_kind {
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
        events: span.events.iter().map(|e| e.name.to_string()).collect(),
    }
}
