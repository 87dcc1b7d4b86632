//! Error responses the host itself produces: a status and a small JSON body
//! (which carries the request id, so a client's report can be matched to
//! the host's log line), and the status each failure kind becomes.

use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::body::{HttpResponse, full_body};
use crate::metrics::Metrics;
use crate::runtime::failure::{Failure, FailureKind};

/// A JSON response with `body` as it is.
pub fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(full_body(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON error response: `{"error": message, "status": n, "request_id":
/// id}` (without `request_id` when there is none) plus any extra fields
/// given as a JSON object.
pub fn problem(
    status: StatusCode,
    request_id: Option<&str>,
    message: &str,
    extra: Value,
) -> HttpResponse {
    let mut body = json!({
        "error": message,
        "status": status.as_u16(),
    });
    if let Some(request_id) = request_id {
        body["request_id"] = json!(request_id);
    }
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    json_response(status, &body)
}

/// Marks `response` as the connection's last when it answers a request
/// whose body was left unread (`unread`). hyper closes such a connection
/// after the response either way; saying so keeps a keep-alive client from
/// sending its next request into a socket that is about to close.
pub fn close_if_unread(mut response: HttpResponse, unread: bool) -> HttpResponse {
    if unread {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The status the client receives for a failure of `kind`.
pub fn status_of(kind: FailureKind) -> StatusCode {
    match kind {
        FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        FailureKind::Overloaded | FailureKind::Waiting | FailureKind::CalleeUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        FailureKind::CalleeFailed => StatusCode::BAD_GATEWAY,
        FailureKind::CallDepthExceeded => StatusCode::LOOP_DETECTED,
        FailureKind::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FailureKind::OutOfMemory
        | FailureKind::StackOverflow
        | FailureKind::Trap
        | FailureKind::InvalidResponse
        | FailureKind::ResponseTooLarge => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Records a failure (metric and log line) and builds the client's
/// response. The request id doubles as the error id.
pub fn failed(
    metrics: &Metrics,
    failure: &Failure,
    component: &str,
    request_id: &str,
) -> HttpResponse {
    failure.record(metrics, component, request_id);
    failure_response(failure, component, request_id)
}

/// What failed, on a failure's response (in its extensions), so the
/// request's span can say the kind, not only the status.
#[derive(Debug, Clone)]
pub struct FailedWith {
    /// The failure kind's name (`trap`, `timeout` ...).
    pub kind: &'static str,
    /// What happened, as the log says it.
    pub message: String,
}

/// The client's response to a failure that is recorded elsewhere.
pub fn failure_response(failure: &Failure, component: &str, request_id: &str) -> HttpResponse {
    let kind = failure.kind;
    let mut extra = json!({ "error_id": request_id, "component": component, "kind": kind.name() });
    if let Some(callee) = failure.callee() {
        extra["callee"] = json!(callee.callee);
        extra["reason"] = json!(callee.reason);
    } else if let Some(detail) = failure.detail.as_deref().filter(|d| !d.is_empty()) {
        extra["reason"] = json!(detail);
    }
    let mut response = problem(status_of(kind), Some(request_id), kind.message(), extra);
    if matches!(kind, FailureKind::Overloaded | FailureKind::Waiting) {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response.extensions_mut().insert(FailedWith {
        kind: kind.name(),
        message: failure.describe(),
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_statuses() {
        assert_eq!(status_of(FailureKind::Timeout), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            status_of(FailureKind::OutOfMemory),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_of(FailureKind::Overloaded),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_of(FailureKind::CallDepthExceeded),
            StatusCode::LOOP_DETECTED
        );
    }

    #[test]
    fn overload_says_when_to_retry() {
        let response = failure_response(&Failure::new(FailureKind::Overloaded), "c", "id");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }
}
