//! `GET /failures` (the last failed requests, of one component with
//! `?component=`) and `GET /requests/<id>/logs` (every kept log line of one
//! request), from the in-memory capture of the log.

use serde_json::{Value, json};

use crate::logging::capture::{REQUESTS, capture};

/// The recent failures, newest first.
pub fn failures(component: Option<&str>) -> Value {
    let failures = capture()
        .map(|capture| capture.failures(component))
        .unwrap_or_default();
    json!({ "failures": failures })
}

/// The kept log lines of `request_id`, oldest first; when there are
/// none, a `note` says why there may be none.
pub fn request_logs(request_id: &str) -> Value {
    let capture = capture();
    let lines = capture
        .map(|capture| capture.lines(request_id))
        .unwrap_or_default();
    if !lines.is_empty() {
        return json!({ "request_id": request_id, "lines": lines });
    }
    let mut note = format!(
        "no line of request {request_id} is kept here: it logged none at the level RUST_LOG \
         lets through, it was served by another host, or it is older than the last {} requests",
        REQUESTS
    );
    if let Some(rate) = capture.and_then(|capture| capture.requests_per_second()) {
        note.push_str(&format!(
            ", or it came while more than {rate} new requests a second did \
             (--log-capture-rate) and neither warned nor failed"
        ));
    }
    json!({ "request_id": request_id, "lines": lines, "note": note })
}
