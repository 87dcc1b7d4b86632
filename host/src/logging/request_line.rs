//! The request line: one per request, the bulk of the log. Its fields are
//! known, so once logging is set up ([`install`]) it is written here in one
//! pass, straight into the batched log and the console's capture, in the
//! same text or JSON shape `tracing_subscriber` gives every other line.
//! Going through `tracing` cost each request an event dispatch, a field
//! visitor per layer with a `Display` call per field, and a timestamp
//! formatted in full: with the capture's copy, about a tenth of a reused
//! `hello-http`'s throughput (docs/benchmarks.md, "The request line
//! written directly"). Without
//! [`install`] (the host embedded in another program) the line is an
//! ordinary `tracing` event, as before.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::LogFormat;
use super::batch_writer::BatchWriter;
use super::capture::{self, Capture, JsonText, LineKind};
use super::escape;

/// The `tracing` target the line is logged under: `RUST_LOG` filters it.
pub const TARGET: &str = "hive::request";

/// One request's line.
pub struct RequestLine<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub component: &'a str,
    pub digest: &'a str,
    pub route: &'a str,
    pub status: u16,
    /// The failure kind, `-` for none.
    pub failure: &'a str,
    pub duration_us: u64,
}

/// A field's value: text or a number (JSON keeps the difference).
enum Value<'a> {
    Text(&'a str),
    Number(u64),
}

impl RequestLine<'_> {
    /// The fields in the order they are written.
    fn fields<'s>(&'s self, path: &'s str) -> [(&'static str, Value<'s>); 9] {
        [
            ("request_id", Value::Text(self.request_id)),
            ("method", Value::Text(self.method)),
            ("path", Value::Text(path)),
            ("component", Value::Text(self.component)),
            ("digest", Value::Text(self.digest)),
            ("route", Value::Text(self.route)),
            ("status", Value::Number(u64::from(self.status))),
            ("failure", Value::Text(self.failure)),
            ("duration_us", Value::Number(self.duration_us)),
        ]
    }

    /// Whether the console lists the request as failed.
    fn failed(&self) -> bool {
        self.status >= 500 || self.failure != "-"
    }
}

/// Where installed lines go.
struct Sink {
    writer: BatchWriter,
    format: LogFormat,
    ansi: bool,
    capture: Option<&'static Capture>,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sends request lines to `writer` in `format` (with terminal colours when
/// `ansi`), and to the console's capture. Called once, by [`super::init`].
pub(super) fn install(writer: BatchWriter, format: LogFormat, ansi: bool) {
    let _ = SINK.set(Sink {
        writer,
        format,
        ansi,
        capture: capture::capture(),
    });
}

/// Whether request lines are logged at all (`RUST_LOG` lets `hive::request`
/// through at `info`).
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// A thread's buffers, reused from line to line.
#[derive(Default)]
struct Scratch {
    out: String,
    /// The timestamp's text up to its seconds, and the second it is for:
    /// formatted once a second, not once a line.
    second: u64,
    stamp: String,
}

impl Scratch {
    /// Appends `now` as RFC 3339 with microseconds, as `tracing_subscriber`
    /// writes it.
    fn push_stamp(&mut self, now: SystemTime) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.stamp.is_empty() || self.second != since.as_secs() {
            self.second = since.as_secs();
            self.stamp.clear();
            let whole = UNIX_EPOCH + Duration::from_secs(self.second);
            let _ = write!(self.stamp, "{}", humantime::format_rfc3339_seconds(whole));
            self.stamp.pop(); // its 'Z'
            self.stamp.push('.');
        }
        self.out.push_str(&self.stamp);
        let micros = since.subsec_micros();
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(micros);
        for _ in digits.len()..6 {
            self.out.push('0');
        }
        self.out.push_str(digits);
        self.out.push('Z');
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Logs `line` (the caller checked [`enabled`]).
pub fn write(line: &RequestLine<'_>) {
    let Some(sink) = SINK.get() else {
        emit_event(line);
        return;
    };
    let now = SystemTime::now();
    let path = escape(line.path);
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => sink.write(line, &path, now, &mut scratch),
        Err(_) => sink.write(line, &path, now, &mut Scratch::default()),
    });
}

impl Sink {
    fn write(&self, line: &RequestLine<'_>, path: &str, now: SystemTime, scratch: &mut Scratch) {
        scratch.out.clear();
        match self.format {
            LogFormat::Text => text(line, path, now, self.ansi, scratch),
            LogFormat::Json => json(line, path, now, scratch),
        }
        self.writer.write_request_line(scratch.out.as_bytes());
        if let Some(capture) = self.capture {
            let kind = if line.failed() {
                LineKind::Failed
            } else {
                LineKind::Plain
            };
            capture.add_with(line.request_id, kind, |out| {
                kept(line, path, now, out);
            });
        }
    }
}

fn push_number(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `tracing_subscriber`'s full text format (with its colours on a terminal).
fn text(line: &RequestLine<'_>, path: &str, now: SystemTime, ansi: bool, scratch: &mut Scratch) {
    if ansi {
        scratch.out.push_str("\x1b[2m");
        scratch.push_stamp(now);
        scratch.out.push_str(
            "\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mhive::request\x1b[0m\x1b[2m:\x1b[0m request",
        );
    } else {
        scratch.push_stamp(now);
        scratch.out.push_str("  INFO hive::request: request");
    }
    let out = &mut scratch.out;
    for (name, value) in line.fields(path) {
        if ansi {
            out.push_str(" \x1b[3m");
            out.push_str(name);
            out.push_str("\x1b[0m\x1b[2m=\x1b[0m");
        } else {
            out.push(' ');
            out.push_str(name);
            out.push('=');
        }
        match value {
            Value::Text(text) => out.push_str(text),
            Value::Number(n) => push_number(out, n),
        }
    }
    out.push('\n');
}

/// `tracing_subscriber`'s JSON format with the event's fields flattened.
fn json(line: &RequestLine<'_>, path: &str, now: SystemTime, scratch: &mut Scratch) {
    scratch.out.push_str("{\"timestamp\":\"");
    scratch.push_stamp(now);
    let out = &mut scratch.out;
    out.push_str("\",\"level\":\"INFO\",\"message\":\"request\"");
    for (name, value) in line.fields(path) {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        match value {
            Value::Text(text) => {
                out.push('"');
                let _ = JsonText::whole(out).write_str(text);
                out.push('"');
            }
            Value::Number(n) => push_number(out, n),
        }
    }
    out.push_str(",\"target\":\"hive::request\"}\n");
}

/// The console's copy: the shape [`capture`] keeps every line in, every
/// value as text.
fn kept(line: &RequestLine<'_>, path: &str, now: SystemTime, out: &mut String) {
    let at_ms = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    out.push_str("{\"at_ms\":");
    push_number(out, at_ms);
    out.push_str(
        ",\"level\":\"INFO\",\"target\":\"hive::request\",\"message\":\"request\",\"fields\":{",
    );
    for (i, (name, value)) in line.fields(path).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":\"");
        match value {
            Value::Text(value) => {
                let mut text = JsonText::new(out);
                let _ = text.write_str(value);
                text.finish();
            }
            Value::Number(n) => push_number(out, n),
        }
        out.push('"');
    }
    out.push_str("}}");
}

/// The line as a `tracing` event, for a subscriber other than Hive's.
fn emit_event(line: &RequestLine<'_>) {
    tracing::info!(
        target: TARGET,
        request_id = %line.request_id,
        method = %line.method,
        path = %escape(line.path),
        component = %line.component,
        digest = %line.digest,
        route = %line.route,
        status = line.status,
        failure = %line.failure,
        duration_us = line.duration_us,
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    const LINE: RequestLine<'static> = RequestLine {
        request_id: "0123abcd",
        method: "GET",
        path: "/hello/a\u{1b}[31m\"b\\",
        component: "hello",
        digest: "65e8528c2f42",
        route: "/hello/:name",
        status: 503,
        failure: "timeout",
        duration_us: 1234,
    };

    /// What `tracing_subscriber` writes, into memory.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Memory {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Memory {
        type Writer = Memory;
        fn make_writer(&'a self) -> Memory {
            self.clone()
        }
    }

    impl Memory {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The same line as `tracing_subscriber` formats the event.
    fn formatted(format: LogFormat, ansi: bool) -> String {
        let memory = Memory::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(memory.clone())
            .with_ansi(ansi);
        let subscriber = tracing_subscriber::registry();
        match format {
            LogFormat::Text => {
                tracing::subscriber::with_default(subscriber.with(layer), || emit_event(&LINE))
            }
            LogFormat::Json => tracing::subscriber::with_default(
                subscriber.with(layer.json().flatten_event(true)),
                || emit_event(&LINE),
            ),
        }
        memory.text()
    }

    fn ours(format: LogFormat, ansi: bool) -> String {
        let mut scratch = Scratch::default();
        let path = escape(LINE.path);
        match format {
            LogFormat::Text => text(&LINE, &path, SystemTime::now(), ansi, &mut scratch),
            LogFormat::Json => json(&LINE, &path, SystemTime::now(), &mut scratch),
        }
        scratch.out
    }

    /// The line from its level on, past the timestamp (the only part
    /// that differs between two runs).
    fn after_stamp(line: &str) -> &str {
        &line[line.find(" INFO").unwrap()..]
    }

    #[test]
    fn the_text_line_is_the_one_tracing_subscriber_writes() {
        for ansi in [false, true] {
            let theirs = formatted(LogFormat::Text, ansi);
            let ours = ours(LogFormat::Text, ansi);
            assert_eq!(after_stamp(&ours), after_stamp(&theirs), "ansi {ansi}");
            assert_eq!(ours.matches('\n').count(), 1);
        }
        let plain = ours(LogFormat::Text, false);
        assert!(humantime::parse_rfc3339(plain.split(' ').next().unwrap()).is_ok());
        assert!(!plain.contains('\u{1b}'), "{plain}");
    }

    #[test]
    fn the_timestamp_is_humantimes_whether_or_not_its_second_was_cached() {
        let mut scratch = Scratch::default();
        let base = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        for micros in [0, 42, 999_999, 1_000_000, 1_000_001, 61_500_000, 61_500_007] {
            let at = base + Duration::from_micros(micros);
            scratch.out.clear();
            scratch.push_stamp(at);
            let expected = humantime::format_rfc3339_micros(at).to_string();
            assert_eq!(scratch.out, expected, "{micros} us past the base");
        }
    }

    #[test]
    fn the_json_line_is_the_one_tracing_subscriber_writes() {
        let parse = |line: &str| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            let stamp = value["timestamp"].take();
            assert!(humantime::parse_rfc3339(stamp.as_str().unwrap()).is_ok());
            value
        };
        let ours = ours(LogFormat::Json, false);
        assert_eq!(parse(&ours), parse(&formatted(LogFormat::Json, false)));
        assert_eq!(parse(&ours)["status"], 503);
        assert!(ours.ends_with("}\n") && ours.matches('\n').count() == 1);
    }

    #[test]
    fn the_console_keeps_what_the_capture_layer_kept_for_the_event() {
        let capture: &'static Capture = Box::leak(Box::default());
        let subscriber = tracing_subscriber::registry().with(capture::CaptureLayer::new(capture));
        tracing::subscriber::with_default(subscriber, || emit_event(&LINE));
        let mut theirs = capture.lines(LINE.request_id).remove(0);
        let mut out = String::new();
        kept(&LINE, &escape(LINE.path), SystemTime::now(), &mut out);
        let mut ours: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(ours["at_ms"].take().as_u64().is_some());
        theirs["at_ms"].take();
        assert_eq!(ours, theirs);
        assert!(LINE.failed());
        assert_eq!(capture.failures(None)[0].kind, "timeout");
    }
}
