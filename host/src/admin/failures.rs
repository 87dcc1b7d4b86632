//! `GET /failures` (the last failed requests, of one component with
//! `?component=`) and `GET /requests/<id>/logs` (every kept log line of one
//! request), from the in-memory capture of the log.

use serde_json::{Value, json};

use crate::logging::capture::capture;

/// The recent failures, newest first.
pub fn failures(component: Option<&str>) -> Value {
    let failures = capture()
        .map(|capture| capture.failures(component))
        .unwrap_or_default();
    json!({ "failures": failures })
}

/// The kept log lines of `request_id`, oldest first.
pub fn request_logs(request_id: &str) -> Value {
    let lines = capture()
        .map(|capture| capture.lines(request_id))
        .unwrap_or_default();
    json!({ "request_id": request_id, "lines": lines })
}
