//! Error responses the host itself produces: a status and a small JSON body
//! that carries the request id, so a client's report can be matched to the
//! host's log line.

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::dispatch::{HttpResponse, full_body};

/// A JSON error response: `{"error": message, "status": n, "request_id": id}`
/// plus any extra fields given as a JSON object.
pub fn problem(status: StatusCode, request_id: &str, message: &str, extra: Value) -> HttpResponse {
    let mut body = json!({
        "error": message,
        "status": status.as_u16(),
        "request_id": request_id,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut response = Response::new(full_body(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
