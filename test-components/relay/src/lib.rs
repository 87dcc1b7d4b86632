//! `relay`: forwards a request to another service through `services.call`,
//! so the host's tests can drive service-to-service calls over HTTP.
//!
//! `/relay/<target>/<rest...>` calls service `<target>` with path
//! `/<rest...>` (just `/` when there is no rest), keeping the method, query,
//! headers and body. The callee's response comes back unchanged. A failed
//! call answers JSON `{"error": "<variant>", "detail": "<text>"}` with status
//! 404 (`not-found`), 503 (`unavailable`), 502 (`failed`) or 508
//! (`depth-exceeded`).
//!
//! Relaying to itself (`/relay/relay/relay/...`) nests calls, which is how
//! tests reach the host's call-depth bound.

wit_bindgen::generate!({
    world: "service",
    path: "../../wit",
});

use exports::hive::service::handler::Guest;
use hive::service::services::{self, CallError};
use hive::service::types::{Request, Response};

struct Relay;

impl Guest for Relay {
    fn handle(req: Request) -> Response {
        let Some((target, path)) = split_target(&req.path) else {
            return json_error(400, "bad-request", "expected /relay/<target>/<path...>");
        };
        let forwarded = Request {
            method: req.method,
            path,
            query: req.query,
            headers: req.headers,
            route: String::new(),
            params: Vec::new(),
            body: req.body,
        };
        match services::call(&target, &forwarded) {
            Ok(response) => response,
            Err(err) => call_error(&err),
        }
    }
}

/// Splits `/<self>/<target>/<rest...>` into the target's name and the path
/// `/<rest...>` to call it with; `None` when there is no target.
fn split_target(path: &str) -> Option<(String, String)> {
    let (_service, after) = path.trim_start_matches('/').split_once('/')?;
    let (target, rest) = after.split_once('/').unwrap_or((after, ""));
    if target.is_empty() {
        return None;
    }
    Some((target.to_string(), format!("/{rest}")))
}

/// Maps a failed call to its status and JSON error body.
fn call_error(err: &CallError) -> Response {
    match err {
        CallError::NotFound(detail) => json_error(404, "not-found", detail),
        CallError::Unavailable(detail) => json_error(503, "unavailable", detail),
        CallError::Failed(detail) => json_error(502, "failed", detail),
        CallError::DepthExceeded(depth) => json_error(508, "depth-exceeded", &depth.to_string()),
    }
}

fn json_error(status: u16, error: &str, detail: &str) -> Response {
    let body = format!(
        r#"{{"error": {}, "detail": {}}}"#,
        json_string(error),
        json_string(detail)
    );
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into_bytes(),
    }
}

/// `text` as a quoted JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

export!(Relay);
