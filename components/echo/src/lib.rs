//! `echo`: shows how a service reads headers and bodies and sets its own.
//!
//! Any request to `/echo` or `/echo/...` (the default routes, as this service
//! ships no manifest) is answered with a JSON description of itself. A JSON
//! request body is embedded as JSON; any other body as text, or as a byte
//! count when it is not UTF-8. `?status=201` picks the response status, and
//! `traceparent` is the request's trace context.

wit_bindgen::generate!({
    world: "service",
    path: "../../wit",
});

use exports::hive::service::handler::Guest;
use hive::service::trace;
use hive::service::types::{Request, Response};
use serde_json::{Map, Value, json};

struct Echo;

impl Guest for Echo {
    fn handle(req: Request) -> Response {
        // A service's stderr (and stdout) lands in the host's log, tagged
        // with the service's name and the request id.
        eprintln!("echo: {} {}", req.method, req.path);
        let status = requested_status(&req).unwrap_or(200);
        let description = json!({
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "route": req.route,
            "params": pairs_to_object(&req.params),
            "headers": pairs_to_object(&req.headers),
            "body": body_to_json(&req),
            // The W3C context of this request's span, as hive:service/trace
            // gives it (the same value as the `traceparent` header).
            "traceparent": trace::traceparent(),
        });
        let body = match serde_json::to_vec_pretty(&description) {
            Ok(body) => body,
            Err(err) => return error_response(&err.to_string()),
        };
        Response {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-echo-body-length".into(), req.body.len().to_string()),
            ],
            body,
        }
    }
}

/// `?status=NNN` if present and a valid HTTP status.
fn requested_status(req: &Request) -> Option<u16> {
    req.query
        .as_deref()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("status="))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (200..=599).contains(code))
}

/// Header or param pairs as a JSON object; repeated names become arrays.
fn pairs_to_object(pairs: &[(String, String)]) -> Value {
    let mut object = Map::new();
    for (name, value) in pairs {
        match object.get_mut(name) {
            None => {
                object.insert(name.clone(), Value::String(value.clone()));
            }
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            Some(first) => {
                let first = first.take();
                object.insert(
                    name.clone(),
                    Value::Array(vec![first, Value::String(value.clone())]),
                );
            }
        }
    }
    Value::Object(object)
}

/// The body as JSON when it parses as JSON, else as text, else its length.
fn body_to_json(req: &Request) -> Value {
    if req.body.is_empty() {
        return Value::Null;
    }
    if let Ok(value) = serde_json::from_slice::<Value>(&req.body) {
        return json!({ "json": value });
    }
    match std::str::from_utf8(&req.body) {
        Ok(text) => json!({ "text": text }),
        Err(_) => json!({ "bytes": req.body.len() }),
    }
}

fn error_response(message: &str) -> Response {
    Response {
        status: 500,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: message.as_bytes().to_vec(),
    }
}

export!(Echo);
