//! What the operator console shows of the log: the lines of each recent
//! request (by its request id), and the last failed requests, kept in
//! memory, bounded, as the log goes by. A `tracing` layer beside the one
//! that writes the log.
//!
//! Every line of every request passes through here, so each is kept as one
//! JSON text written in a single pass over the event's fields (one
//! allocation, not one per field); it is read back as JSON only when the
//! console asks, or when a request failed. The requests are spread over
//! [`SHARDS`] shards by their id, each under its own lock, so requests
//! finishing on different threads do not queue for one.
//!
//! The capture keeps the last [`REQUESTS`] requests: at 40,000 requests a
//! second that is 50 ms of them, each overwritten before anyone could ask
//! for it, and keeping them cost about 7% of a reused `hello-http`'s
//! throughput. So new requests come in at a capped rate
//! ([`DEFAULT_REQUESTS_PER_SECOND`] unless set): a host below it keeps
//! every request as before, a busier one keeps a steady sample that stays
//! readable for seconds. Warnings, errors and failures are kept whatever
//! the rate, and so is every later line of a request already kept.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota};
use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use serde::Serialize;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::request_line;

/// Requests whose lines are kept (over all shards).
pub const REQUESTS: usize = 2000;

/// New requests a second whose lines are kept, unless set otherwise
/// (`--log-capture-rate`): every request of a host below it, and at least
/// two seconds of requests in [`REQUESTS`] above it.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 1000;

/// Shards the kept requests are spread over; each keeps its share of
/// [`REQUESTS`] and [`BYTES`] and forgets its own oldest first.
const SHARDS: usize = 16;

/// Lines kept per request.
const LINES_PER_REQUEST: usize = 64;

/// Failed requests kept.
const FAILURES: usize = 100;

/// Bytes of captured text kept in all, whatever the lines hold: the oldest
/// requests' lines go first.
const BYTES: usize = 16 * 1024 * 1024;

/// Longest message or field value kept, in bytes.
const MAX_VALUE: usize = 2048;

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

/// One request's kept lines: their JSON texts, each ending in a newline
/// (escaped JSON holds none), in one string, so a request costs one
/// allocation however many lines it logs.
#[derive(Default)]
struct Kept {
    lines: usize,
    text: String,
}

impl Kept {
    /// What the request's lines cost against [`BYTES`].
    fn size(&self) -> usize {
        self.text.len() + LINE_OVERHEAD * self.lines
    }
}

/// Bytes reserved for a request's first kept line.
const FIRST_LINE: usize = 384;

/// What one kept line costs against [`BYTES`] beyond its text.
const LINE_OVERHEAD: usize = 32;

/// A kept request: its id and lines.
struct Request {
    id: Arc<str>,
    kept: Kept,
}

/// One shard's requests. An id is hashed once per line: the hash picks
/// the shard, finds the request in it, and stays beside the id in `order`
/// so forgetting the oldest request hashes nothing and compares pointers,
/// not ids (hashing and forgetting were half of the capture's cost in a
/// profile of reused `hello-http`).
#[derive(Default)]
struct Shard {
    /// Each kept request, by its id's hash. hashbrown's fast (seeded) hash
    /// will do: a client choosing ids can only crowd its own shard, which
    /// stays bounded.
    requests: HashTable<Request>,
    /// The requests in `requests`, oldest first: their hashes and (the
    /// same shared) ids.
    order: VecDeque<(u64, Arc<str>)>,
    /// What `requests` holds, by [`Kept::size`].
    bytes: usize,
    /// The hashes of the last requests the cap kept out, so their later
    /// lines stay out too even if the cap has room again by then: a
    /// request's lines are kept whole or not at all.
    refused: Refused,
}

/// The hashes of the last [`REFUSED`] requests a shard kept out.
struct Refused {
    hashes: [u64; REFUSED],
    next: usize,
}

/// Requests a shard remembers keeping out: far more than are in flight
/// at once, so a request's lines, which come within its call, all find
/// it.
const REFUSED: usize = 64;

impl Default for Refused {
    fn default() -> Self {
        Refused {
            hashes: [0; REFUSED],
            next: 0,
        }
    }
}

impl Refused {
    fn contains(&self, hash: u64) -> bool {
        self.hashes.contains(&hash)
    }

    fn add(&mut self, hash: u64) {
        self.hashes[self.next] = hash;
        self.next = (self.next + 1) % REFUSED;
    }
}

/// The captured lines and failures.
#[derive(Default)]
pub struct Capture {
    shards: [Mutex<Shard>; SHARDS],
    /// Failed requests, newest last; locked for failures only.
    failures: Mutex<VecDeque<FailedRequest>>,
    /// Picks a request's shard (seeded per process).
    hasher: DefaultHashBuilder,
    /// The new requests still let in; `None` (the default) lets in all.
    new_requests: Option<DefaultDirectRateLimiter>,
    /// The cap's rate, to name it when a request is not kept.
    per_second: Option<NonZeroU32>,
}

/// What a line is, for the cap on new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    /// An ordinary line: it starts a new request only within the cap.
    Plain,
    /// A warning or an error: kept whatever the cap.
    Notable,
    /// A request line saying its request failed: kept, and listed.
    Failed,
}

static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();

/// The process's capture, once logging is set up.
pub fn capture() -> Option<&'static Capture> {
    CAPTURE.get().copied()
}

/// The layer that fills the process's capture, which lets in at most
/// `per_second` new requests a second (0: every request).
pub fn layer(per_second: u32) -> CaptureLayer {
    let capture: &'static Capture = CAPTURE.get_or_init(|| {
        let per_second = NonZeroU32::new(per_second);
        Box::leak(Box::new(Capture {
            per_second,
            ..Capture::capped(per_second.map(Quota::per_second))
        }))
    });
    CaptureLayer { capture }
}

/// The shard of a request id's hash: bits the shard's table does not use
/// to place it (the lowest ones pick its bucket, the top seven its tag).
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

impl Capture {
    /// A capture that lets in the new requests `quota` allows (`None`:
    /// all of them).
    fn capped(quota: Option<Quota>) -> Capture {
        Capture {
            new_requests: quota.map(DefaultDirectRateLimiter::direct),
            ..Capture::default()
        }
    }

    /// The new requests let in a second, as set with
    /// `--log-capture-rate`; `None` when every one is.
    pub fn requests_per_second(&self) -> Option<NonZeroU32> {
        self.per_second
    }

    /// Whether one more new request may be kept now.
    fn lets_in_new_request(&self) -> bool {
        self.new_requests
            .as_ref()
            .is_none_or(|bucket| bucket.check().is_ok())
    }

    /// The hash of `request_id`, and its shard, locked.
    fn shard(&self, request_id: &str) -> (u64, MutexGuard<'_, Shard>) {
        let hash = self.hasher.hash_one(request_id);
        let shard = self.shards[shard_of(hash)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (hash, shard)
    }

    fn failed(&self) -> MutexGuard<'_, VecDeque<FailedRequest>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every kept line of the request `request_id`, oldest first: objects
    /// with `at_ms`, `level`, `target`, `message` and `fields`.
    pub fn lines(&self, request_id: &str) -> Vec<Value> {
        let (hash, shard) = self.shard(request_id);
        let text = shard
            .requests
            .find(hash, |request| &*request.id == request_id)
            .map(|request| request.kept.text.clone())
            .unwrap_or_default();
        drop(shard);
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The failed requests kept, newest first, of `component` if given.
    pub fn failures(&self, component: Option<&str>) -> Vec<FailedRequest> {
        self.failed()
            .iter()
            .rev()
            .filter(|f| component.is_none_or(|c| f.component == c))
            .cloned()
            .collect()
    }

    /// Keeps the line `write` appends (a JSON object's text) under
    /// `request_id`, unless it is a [`LineKind::Plain`] line of a request
    /// not kept yet and the cap on new requests is reached; a
    /// [`LineKind::Failed`] request line also lists its request as a
    /// failure. `write` runs under the shard's lock, so the line is written
    /// once, where it is kept, and not at all when it is not kept.
    pub(super) fn add_with(
        &self,
        request_id: &str,
        kind: LineKind,
        write: impl FnOnce(&mut String),
    ) {
        let failed = kind == LineKind::Failed;
        let (hash, mut shard) = self.shard(request_id);
        let shard = &mut *shard;
        let entry = shard.requests.entry(
            hash,
            |request| &*request.id == request_id,
            |request| self.hasher.hash_one(&*request.id),
        );
        let kept = match entry {
            Entry::Occupied(entry) => &mut entry.into_mut().kept,
            Entry::Vacant(_) if kind == LineKind::Plain && shard.refused.contains(hash) => return,
            Entry::Vacant(_) if kind == LineKind::Plain && !self.lets_in_new_request() => {
                shard.refused.add(hash);
                return;
            }
            Entry::Vacant(entry) => {
                let id: Arc<str> = Arc::from(request_id);
                shard.order.push_back((hash, id.clone()));
                // Room for the first line (usually a request line, and
                // often the only one) without growing.
                let kept = Kept {
                    lines: 0,
                    text: String::with_capacity(FIRST_LINE),
                };
                &mut entry.insert(Request { id, kept }).into_mut().kept
            }
        };
        let failure = if kept.lines < LINES_PER_REQUEST {
            let start = kept.text.len();
            write(&mut kept.text);
            let failure =
                failed.then(|| failure_of(request_id, &kept.text[start..], &kept.text[..start]));
            kept.text.push('\n');
            kept.lines += 1;
            shard.bytes += kept.text.len() - start + LINE_OVERHEAD;
            failure
        } else if failed {
            let mut line = String::new();
            write(&mut line);
            Some(failure_of(request_id, &line, &kept.text))
        } else {
            None
        };
        // The oldest requests go; the one just written stays.
        while shard.order.len() > REQUESTS / SHARDS
            || (shard.bytes > BYTES / SHARDS && shard.order.len() > 1)
        {
            let Some((old_hash, old)) = shard.order.pop_front() else {
                break;
            };
            if let Ok(entry) = shard
                .requests
                .find_entry(old_hash, |request| Arc::ptr_eq(&request.id, &old))
            {
                let (request, _) = entry.remove();
                shard.bytes = shard.bytes.saturating_sub(request.kept.size());
            }
        }
        if let Some(failure) = failure {
            let mut failures = self.failed();
            failures.push_back(failure);
            while failures.len() > FAILURES {
                failures.pop_front();
            }
        }
    }
}

/// A failed request from its request line and the lines before it (the
/// "request failed" line says the kind, the trap and the backtrace). Read
/// back from JSON: this runs for failures only.
fn failure_of(request_id: &str, line: &str, earlier: &str) -> FailedRequest {
    let line: Value = serde_json::from_str(line).unwrap_or_default();
    let reported: Value = earlier
        .lines()
        .rev()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("request failed"))
        })
        .unwrap_or_default();
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let field = |name: &str| text(&line["fields"][name]);
    let reported_field = |name: &str| text(&reported["fields"][name]);
    let mut kind = reported_field("kind");
    if kind.is_empty() && field("failure") != "-" {
        kind = field("failure");
    }
    let mut message = text(&reported["message"]);
    for detail in [reported_field("detail"), reported_field("trap")] {
        if !detail.is_empty() {
            let _ = write!(message, ": {detail}");
        }
    }
    FailedRequest {
        at_ms: line["at_ms"].as_u64().unwrap_or_default(),
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

/// Appends text to a JSON string's inside: escaped, and cut at
/// [`MAX_VALUE`] bytes of the value (with `…`) unless made [`Self::whole`].
pub(super) struct JsonText<'a> {
    out: &'a mut String,
    /// Bytes of the value still allowed.
    left: usize,
    cut: bool,
}

impl<'a> JsonText<'a> {
    pub(super) fn new(out: &'a mut String) -> Self {
        JsonText {
            out,
            left: MAX_VALUE,
            cut: false,
        }
    }

    /// Escapes without cutting (for the log itself, which keeps all).
    pub(super) fn whole(out: &'a mut String) -> Self {
        JsonText {
            out,
            left: usize::MAX,
            cut: false,
        }
    }

    /// Ends the value: marks a cut one.
    pub(super) fn finish(self) {
        if self.cut {
            self.out.push('…');
        }
    }
}

impl fmt::Write for JsonText<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Most text needs no escape and fits: copied whole.
        if !self.cut
            && text.len() <= self.left
            && !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
        {
            self.left -= text.len();
            self.out.push_str(text);
            return Ok(());
        }
        for c in text.chars() {
            if self.cut {
                break;
            }
            if c.len_utf8() > self.left {
                self.cut = true;
                break;
            }
            self.left -= c.len_utf8();
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        Ok(())
    }
}

/// An event's message and fields, written as JSON as they are visited,
/// with the few values the capture itself needs.
#[derive(Default)]
struct Fields {
    /// The message's JSON string (quoted).
    message: String,
    /// The fields' JSON object members, comma-separated.
    fields: String,
    /// `request_id`, or else `error_id`, as written into the JSON (the
    /// host's ids are plain hex, so the same text).
    request_id: String,
    status: u64,
    /// `failure` when it is not `-`.
    failure: bool,
}

impl Fields {
    fn clear(&mut self) {
        self.message.clear();
        self.fields.clear();
        self.request_id.clear();
        self.status = 0;
        self.failure = false;
    }

    /// Writes `field` with the text `value` makes.
    fn record_with(&mut self, field: &Field, value: impl fmt::Display) {
        let name = field.name();
        let out = if name == "message" {
            self.message.clear();
            &mut self.message
        } else {
            if !self.fields.is_empty() {
                self.fields.push(',');
            }
            self.fields.push('"');
            let _ = JsonText::new(&mut self.fields).write_str(name);
            self.fields.push_str("\":");
            &mut self.fields
        };
        let start = out.len() + 1;
        out.push('"');
        let mut text = JsonText::new(out);
        let _ = write!(text, "{value}");
        text.finish();
        let written = &out[start..];
        match name {
            "request_id" => {
                self.request_id.clear();
                self.request_id.push_str(written);
            }
            "error_id" if self.request_id.is_empty() => self.request_id.push_str(written),
            "failure" => self.failure = written != "-",
            _ => {}
        }
        out.push('"');
    }
}

/// `Debug` shown as text: what a `%value` or `?value` field writes.
struct AsDebug<'a>(&'a dyn fmt::Debug);

impl fmt::Display for AsDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_with(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.status = value;
        }
        self.record_with(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "status" {
            self.status = u64::try_from(value).unwrap_or_default();
        }
        self.record_with(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_with(field, AsDebug(value));
    }
}

thread_local! {
    /// Each thread's buffers for the event being captured, reused.
    static SCRATCH: RefCell<Fields> = RefCell::default();
}

/// Keeps each event that names a request (`request_id` or `error_id`).
pub struct CaptureLayer {
    capture: &'static Capture,
}

impl CaptureLayer {
    /// A layer filling `capture` (the process's own is [`layer`]'s).
    #[cfg(test)]
    pub(super) fn new(capture: &'static Capture) -> Self {
        CaptureLayer { capture }
    }

    fn capture(&self, event: &Event<'_>, fields: &mut Fields) {
        fields.clear();
        event.record(fields);
        if fields.request_id.is_empty() {
            return;
        }
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let metadata = event.metadata();
        let failed =
            metadata.target() == request_line::TARGET && (fields.status >= 500 || fields.failure);
        let kind = if failed {
            LineKind::Failed
        } else if *metadata.level() <= Level::WARN {
            LineKind::Notable
        } else {
            LineKind::Plain
        };
        self.capture.add_with(&fields.request_id, kind, |line| {
            let _ = write!(
                line,
                "{{\"at_ms\":{at_ms},\"level\":\"{}\",\"target\":\"",
                metadata.level().as_str()
            );
            let _ = JsonText::new(line).write_str(metadata.target());
            line.push_str("\",\"message\":");
            if fields.message.is_empty() {
                line.push_str("\"\"");
            } else {
                line.push_str(&fields.message);
            }
            line.push_str(",\"fields\":{");
            line.push_str(&fields.fields);
            line.push_str("}}");
        });
    }
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut fields) => self.capture(event, &mut fields),
            // An event logged while formatting one on this thread.
            Err(_) => self.capture(event, &mut Fields::default()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Runs `log` with a subscriber that captures into a capture of its
    /// own, which lets in every request.
    fn captured(log: impl FnOnce()) -> &'static Capture {
        captured_in(Capture::default(), log)
    }

    fn captured_in(capture: Capture, log: impl FnOnce()) -> &'static Capture {
        let capture: &'static Capture = Box::leak(Box::new(capture));
        let subscriber = tracing_subscriber::registry().with(CaptureLayer { capture });
        tracing::subscriber::with_default(subscriber, log);
        capture
    }

    /// The request line of `request_id`, of component `c`, answered with
    /// `status`.
    fn failed_request_line(request_id: &str, status: u16) {
        tracing::info!(
            target: "hive::request",
            request_id,
            component = "c",
            status,
            failure = "-",
            "request"
        );
    }

    #[test]
    fn past_the_cap_only_warnings_failures_and_kept_requests_get_in() {
        // Three new requests, and no more while the test runs.
        let quota = Quota::per_hour(NonZeroU32::new(3).unwrap());
        let capture = captured_in(Capture::capped(Some(quota)), || {
            for i in 0..5 {
                tracing::info!(request_id = %format!("r{i}"), "hi");
            }
            tracing::info!(request_id = "r0", "a kept request's next line");
            tracing::warn!(request_id = "r3", "a warning gets in");
            tracing::info!(request_id = "r3", "and the lines after it");
            failed_request_line("r9", 500);
            tracing::info!(request_id = "r10", "still capped");
        });
        let count = |id: &str| capture.lines(id).len();
        assert_eq!([count("r0"), count("r1"), count("r2")], [2, 1, 1]);
        assert_eq!([count("r4"), count("r10")], [0, 0], "past the cap");
        assert_eq!(count("r3"), 2);
        assert_eq!(count("r9"), 1);
        let failures = capture.failures(None);
        assert_eq!((failures.len(), failures[0].status), (1, 500));
    }

    #[test]
    fn a_failed_request_is_listed_with_what_its_lines_said() {
        let capture = captured(|| {
            tracing::error!(
                target: "hive::runtime::failure",
                request_id = "r1",
                kind = "trap",
                trap = "unreachable",
                backtrace = "f <- g",
                "request failed: the component failed while handling the request"
            );
            tracing::info!(
                target: "hive::request",
                request_id = %"r1",
                component = "hostile",
                status = 500u16,
                failure = %"-",
                route = "/hostile/...",
                "request"
            );
            tracing::info!(
                target: "hive::request",
                request_id = "r2",
                component = "hello",
                status = 200u16,
                failure = "-",
                "request"
            );
            tracing::info!(target: "guest", component = "hello", "a line of no request");
        });
        let failures = capture.failures(None);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].request_id, "r1");
        assert_eq!(failures[0].kind, "trap");
        assert_eq!(failures[0].status, 500);
        assert_eq!(failures[0].route, "/hostile/...");
        assert_eq!(failures[0].backtrace, "f <- g");
        assert!(failures[0].message.contains("unreachable"));
        assert!(capture.failures(Some("hello")).is_empty());
        let lines = capture.lines("r1");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["target"], "hive::request");
        assert_eq!(lines[1]["level"], "INFO");
        assert_eq!(lines[1]["fields"]["status"], "500");
        let kept: usize = capture
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().order.len())
            .sum();
        assert_eq!(kept, 2, "a line of no request is not kept");
    }

    #[test]
    fn a_request_kept_out_stays_out_when_the_cap_has_room_again() {
        // One new request a second.
        let quota = Quota::with_period(std::time::Duration::from_secs(1)).unwrap();
        let capture = captured_in(Capture::capped(Some(quota)), || {
            tracing::info!(request_id = "r0", "in");
            tracing::info!(request_id = "r1", "out");
            std::thread::sleep(std::time::Duration::from_millis(1100));
            tracing::info!(request_id = "r1", "still out");
            tracing::info!(request_id = "r2", "in, the cap has room again");
        });
        assert_eq!(capture.lines("r0").len(), 1);
        assert!(capture.lines("r1").is_empty());
        assert_eq!(capture.lines("r2").len(), 1);
    }

    #[test]
    fn any_text_is_kept_as_valid_json() {
        let hostile = "quote \" backslash \\ newline \n tab \t bell \u{7} é 🐝";
        let capture = captured(|| {
            tracing::info!(target: "guest", request_id = "r1", value = %hostile, "{hostile}");
            tracing::info!(target: "guest", error_id = "e1", n = 7i64, "no request id");
        });
        let line = &capture.lines("r1")[0];
        assert_eq!(line["message"], hostile);
        assert_eq!(line["fields"]["value"], hostile);
        assert_eq!(capture.lines("e1")[0]["fields"]["n"], "7");
    }

    #[test]
    fn long_lines_are_cut_and_the_total_stays_bounded() {
        let long = "é".repeat(MAX_VALUE);
        // About 27 MB of lines offered, over the 16 MiB budget.
        let capture = captured(|| {
            for i in 0..100 {
                for _ in 0..LINES_PER_REQUEST {
                    tracing::info!(request_id = %format!("r{i}"), f = %long, "{long}");
                }
            }
        });
        for shard in &capture.shards {
            let shard = shard.lock().unwrap();
            let kept: usize = shard.requests.iter().map(|r| r.kept.size()).sum();
            assert_eq!(kept, shard.bytes);
            // Over its share by at most the request written last.
            let one_request = LINES_PER_REQUEST * (3 * MAX_VALUE + LINE_OVERHEAD);
            assert!(
                shard.bytes <= BYTES / SHARDS + one_request,
                "{}",
                shard.bytes
            );
            assert_eq!(shard.order.len(), shard.requests.len());
        }
        assert!(
            !capture.lines("r99").is_empty(),
            "the newest request is kept"
        );
        assert_oldest_go_first(capture, 100);
        let line = &capture.lines("r99")[0];
        let message = line["message"].as_str().unwrap();
        assert_eq!(message.len(), MAX_VALUE + '…'.len_utf8());
        assert_eq!(line["fields"]["f"], message);
    }

    #[test]
    fn a_failure_is_listed_even_past_the_lines_kept_for_its_request() {
        let capture = captured(|| {
            for _ in 0..LINES_PER_REQUEST {
                tracing::info!(request_id = "r1", "busy");
            }
            failed_request_line("r1", 502);
        });
        let lines = capture.lines("r1");
        assert_eq!(lines.len(), LINES_PER_REQUEST);
        assert!(lines.iter().all(|line| line["message"] == "busy"));
        let failures = capture.failures(Some("c"));
        assert_eq!((failures.len(), failures[0].status), (1, 502));
    }

    #[test]
    fn old_requests_are_forgotten() {
        let requests = REQUESTS * 2;
        let capture = captured(|| {
            for i in 0..requests {
                tracing::info!(request_id = %format!("r{i}"), "hi");
            }
        });
        let kept = (0..requests)
            .filter(|i| !capture.lines(&format!("r{i}")).is_empty())
            .count();
        assert_eq!(kept, REQUESTS, "each shard keeps its share");
        assert!(capture.lines("r0").is_empty());
        assert_eq!(capture.lines(&format!("r{}", requests - 1)).len(), 1);
        assert_oldest_go_first(capture, requests);
    }

    /// Within each shard, a kept request means every later one is kept:
    /// the oldest went first.
    fn assert_oldest_go_first(capture: &Capture, requests: usize) {
        let mut forgotten_after_kept = [false; SHARDS];
        for i in (0..requests).rev() {
            let id = format!("r{i}");
            let shard = shard_of(capture.hasher.hash_one(id.as_str()));
            let kept = !capture.lines(&id).is_empty();
            assert!(
                !(kept && forgotten_after_kept[shard]),
                "{id} is kept though a later request of its shard was forgotten"
            );
            forgotten_after_kept[shard] |= !kept;
        }
    }
}
