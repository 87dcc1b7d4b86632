//! What the operator console shows of the log: the lines of each recent
//! request (by its request id), and the last failed requests, kept in
//! memory, bounded, as the log goes by. A `tracing` layer beside the one
//! that writes the log, so nothing is parsed back out of text.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// Requests whose lines are kept.
const REQUESTS: usize = 2000;

/// Lines kept per request.
const LINES_PER_REQUEST: usize = 64;

/// Failed requests kept.
const FAILURES: usize = 100;

/// Bytes of captured text kept in all, whatever the lines hold: the oldest
/// requests' lines go first.
const BYTES: usize = 16 * 1024 * 1024;

/// Longest message or field value kept, in bytes.
const MAX_VALUE: usize = 2048;

/// One captured log line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// `INFO`, `WARN`, ...
    pub level: String,
    /// Where it came from (`guest`, `hive::request`, ...).
    pub target: String,
    /// The message.
    pub message: String,
    /// Its other fields.
    pub fields: BTreeMap<String, String>,
}

/// One failed request, as the console lists it.
#[derive(Debug, Clone, Serialize)]
pub struct FailedRequest {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// The request id (also the error id in its JSON body).
    pub request_id: String,
    /// The component that served it.
    pub component: String,
    /// The route it matched.
    pub route: String,
    /// Method and path.
    pub method: String,
    /// Its path.
    pub path: String,
    /// The status sent.
    pub status: u16,
    /// The failure kind (`trap`, `timeout`, ...), when the host knew one.
    pub kind: String,
    /// What went wrong, in a line.
    pub message: String,
    /// The guest's backtrace, innermost first, when it trapped.
    pub backtrace: String,
}

#[derive(Default)]
struct Inner {
    lines: HashMap<String, Vec<Line>>,
    order: VecDeque<String>,
    failures: VecDeque<FailedRequest>,
    /// Text held in `lines`, roughly.
    bytes: usize,
}

impl Line {
    fn size(&self) -> usize {
        let fields: usize = self.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.message.len() + self.target.len() + fields + 64
    }
}

/// `text` cut to [`MAX_VALUE`] bytes on a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_VALUE {
        let mut end = MAX_VALUE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The captured lines and failures.
#[derive(Default)]
pub struct Capture {
    inner: Mutex<Inner>,
}

static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();

/// The process's capture, once logging is set up.
pub fn capture() -> Option<&'static Capture> {
    CAPTURE.get().copied()
}

/// The layer that fills the process's capture.
pub fn layer() -> CaptureLayer {
    let capture: &'static Capture = CAPTURE.get_or_init(|| Box::leak(Box::default()));
    CaptureLayer { capture }
}

impl Capture {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every kept line of the request `request_id`.
    pub fn lines(&self, request_id: &str) -> Vec<Line> {
        self.lock()
            .lines
            .get(request_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The failed requests kept, newest first, of `component` if given.
    pub fn failures(&self, component: Option<&str>) -> Vec<FailedRequest> {
        self.lock()
            .failures
            .iter()
            .rev()
            .filter(|f| component.is_none_or(|c| f.component == c))
            .cloned()
            .collect()
    }

    fn add(&self, request_id: String, line: Line) {
        let mut inner = self.lock();
        let is_request_line = line.target == "hive::request";
        let failed = is_request_line
            && (line
                .fields
                .get("status")
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0)
                >= 500
                || line.fields.get("failure").is_some_and(|f| f != "-"));
        if failed {
            let entry = failure_of(&request_id, &line, inner.lines.get(&request_id));
            inner.failures.push_back(entry);
            while inner.failures.len() > FAILURES {
                inner.failures.pop_front();
            }
        }
        if !inner.lines.contains_key(&request_id) {
            inner.order.push_back(request_id.clone());
        }
        let size = line.size();
        let lines = inner.lines.entry(request_id.clone()).or_default();
        if lines.len() < LINES_PER_REQUEST {
            lines.push(line);
            inner.bytes += size;
        }
        // The oldest requests go; the one just written stays.
        while inner.order.len() > REQUESTS || (inner.bytes > BYTES && inner.order.len() > 1) {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(lines) = inner.lines.remove(&old) {
                let freed: usize = lines.iter().map(Line::size).sum();
                inner.bytes = inner.bytes.saturating_sub(freed);
            }
        }
    }
}

/// A failed request from its request line and the lines before it (the
/// "request failed" line says the kind, the trap and the backtrace).
fn failure_of(request_id: &str, line: &Line, earlier: Option<&Vec<Line>>) -> FailedRequest {
    let field = |name: &str| line.fields.get(name).cloned().unwrap_or_default();
    let reported = earlier.and_then(|lines| {
        lines
            .iter()
            .rev()
            .find(|l| l.message.starts_with("request failed"))
    });
    let reported_field = |name: &str| {
        reported
            .and_then(|l| l.fields.get(name))
            .cloned()
            .unwrap_or_default()
    };
    let mut kind = reported_field("kind");
    if kind.is_empty() && field("failure") != "-" {
        kind = field("failure");
    }
    let mut message = reported.map(|l| l.message.clone()).unwrap_or_default();
    for detail in [reported_field("detail"), reported_field("trap")] {
        if !detail.is_empty() {
            let _ = write!(message, ": {detail}");
        }
    }
    FailedRequest {
        at_ms: line.at_ms,
        request_id: request_id.to_string(),
        component: field("component"),
        route: field("route"),
        method: field("method"),
        path: field("path"),
        status: field("status").parse().unwrap_or(0),
        kind,
        message,
        backtrace: reported_field("backtrace"),
    }
}

/// Collects an event's fields as text.
#[derive(Default)]
struct Fields {
    message: String,
    fields: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, text: String) {
        let text = bounded(text);
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().to_string(), text);
        }
    }
}

/// Keeps each event that names a request (`request_id` or `error_id`).
pub struct CaptureLayer {
    capture: &'static Capture,
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(request_id) = fields
            .fields
            .get("request_id")
            .or_else(|| fields.fields.get("error_id"))
            .cloned()
        else {
            return;
        };
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let metadata = event.metadata();
        self.capture.add(
            request_id,
            Line {
                at_ms,
                level: metadata.level().to_string(),
                target: metadata.target().to_string(),
                message: fields.message,
                fields: fields.fields,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(target: &str, message: &str, fields: &[(&str, &str)]) -> Line {
        Line {
            at_ms: 1,
            level: "INFO".into(),
            target: target.into(),
            message: message.into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_failed_request_is_listed_with_what_its_lines_said() {
        let capture = Capture::default();
        capture.add(
            "r1".into(),
            line(
                "hive::runtime::failure",
                "request failed: the component failed while handling the request",
                &[
                    ("kind", "trap"),
                    ("trap", "unreachable"),
                    ("backtrace", "f <- g"),
                ],
            ),
        );
        capture.add(
            "r1".into(),
            line(
                "hive::request",
                "request",
                &[
                    ("component", "hostile"),
                    ("status", "500"),
                    ("failure", "-"),
                    ("route", "/hostile/..."),
                ],
            ),
        );
        capture.add(
            "r2".into(),
            line(
                "hive::request",
                "request",
                &[("component", "hello"), ("status", "200"), ("failure", "-")],
            ),
        );
        let failures = capture.failures(None);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].kind, "trap");
        assert_eq!(failures[0].backtrace, "f <- g");
        assert!(failures[0].message.contains("unreachable"));
        assert!(capture.failures(Some("hello")).is_empty());
        assert_eq!(capture.lines("r1").len(), 2);
    }

    #[test]
    fn long_lines_are_cut_and_the_total_stays_bounded() {
        let capture = Capture::default();
        let long = "x".repeat(MAX_VALUE);
        let line = |i: usize| Line {
            at_ms: 1,
            level: "INFO".into(),
            target: "guest".into(),
            message: long.clone(),
            fields: [(format!("f{i}"), long.clone())].into(),
        };
        // About 27 MB of lines offered, over the 16 MiB budget.
        for i in 0..100 {
            for _ in 0..LINES_PER_REQUEST {
                capture.add(format!("r{i}"), line(i));
            }
        }
        let inner = capture.lock();
        assert!(inner.bytes <= BYTES + line(0).size(), "{}", inner.bytes);
        let kept: usize = inner.lines.values().flatten().map(Line::size).sum();
        assert_eq!(kept, inner.bytes);
        assert!(inner.lines.contains_key("r99"));
        assert!(!inner.lines.contains_key("r0"));
        assert_eq!(
            bounded("é".repeat(MAX_VALUE)).len(),
            MAX_VALUE + '…'.len_utf8()
        );
    }

    #[test]
    fn old_requests_are_forgotten() {
        let capture = Capture::default();
        for i in 0..REQUESTS + 10 {
            capture.add(format!("r{i}"), line("guest", "hi", &[]));
        }
        assert!(capture.lines("r0").is_empty());
        assert_eq!(capture.lines(&format!("r{}", REQUESTS + 9)).len(), 1);
    }
}
