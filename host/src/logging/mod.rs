//! Log setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`),
//! as human-readable lines or as JSON objects for log collectors (request
//! lines written in batches, the rest at once: [`batch_writer`]); and the
//! same events kept in memory per request for the operator console
//! ([`capture`]). The request line skips `tracing`'s formatting and goes
//! to both directly ([`request_line`]).

pub mod batch_writer;
pub mod capture;
pub mod request_line;

pub use batch_writer::LogGuard;

use std::borrow::Cow;
use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, every field a key.
    Json,
}

/// Installs the global subscriber: the log on stderr, and the capture,
/// which keeps the lines of at most `capture_per_second` new requests a
/// second (0: of every request; see [`capture`]). Keep the guard until
/// the process ends: dropping it writes out the lines still buffered.
#[must_use = "lines still buffered are lost unless the guard is kept until exit"]
pub fn init(format: LogFormat, capture_per_second: u32) -> LogGuard {
    let (batches, guard) = batch_writer::batch_writer();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(capture::layer(capture_per_second));
    let ansi = format == LogFormat::Text && std::io::stderr().is_terminal();
    request_line::install(batches.clone(), format, ansi);
    let writer = tracing_subscriber::fmt::layer().with_writer(batches);
    match format {
        LogFormat::Text => registry.with(writer.with_ansi(ansi)).init(),
        LogFormat::Json => registry.with(writer.json().flatten_event(true)).init(),
    }
    guard
}

/// `text` with control characters escaped (`\n`, `\r`, `\t`, `\u{1b}`, ...),
/// for any log field a guest or a client controls: a raw newline would let
/// them start a fake log line, an escape sequence would rewrite a terminal.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_control() => escaped.push_str(&c.escape_unicode().to_string()),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// A guest's text for a log line's message: [`escape`]d, and quoted (with
/// `"` and `\` escaped inside) when it holds `=` or starts with a quote.
/// In the text format the message comes before the host's own fields, so
/// unquoted `component=evil request_id=...` would read as real fields.
pub fn guest_text(text: &str) -> Cow<'_, str> {
    let escaped = escape(text);
    if !escaped.contains('=') && !escaped.starts_with('"') {
        return escaped;
    }
    let mut quoted = String::with_capacity(escaped.len() + 8);
    quoted.push('"');
    for c in escaped.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Cow::Owned(quoted)
}

#[cfg(test)]
mod tests {
    use super::{escape, guest_text};

    #[test]
    fn field_like_guest_text_is_quoted() {
        assert_eq!(guest_text("order 7 stored"), "order 7 stored");
        assert_eq!(
            guest_text("ok component=evil request_id=x"),
            "\"ok component=evil request_id=x\""
        );
        assert_eq!(guest_text("\"a\" = \\"), "\"\\\"a\\\" = \\\\\"");
        assert_eq!(guest_text("x\ncomponent=evil"), r#""x\\ncomponent=evil""#);
    }

    #[test]
    fn control_characters_cannot_start_a_line_or_drive_a_terminal() {
        assert_eq!(escape("plain text, é"), "plain text, é");
        assert_eq!(
            escape("x\n2026-11-26T00:00:00Z  INFO hive: forged\r"),
            "x\\n2026-11-26T00:00:00Z  INFO hive: forged\\r"
        );
        assert_eq!(escape("\u{1b}[31mred\u{7f}"), "\\u{1b}[31mred\\u{7f}");
        assert!(!escape("a\u{85}b").contains('\u{85}'));
    }
}
