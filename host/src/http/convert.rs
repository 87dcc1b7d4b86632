//! Conversions between hyper's HTTP types and the WIT `request` and
//! `response` records of the `hive:service` world. Nothing else in the host
//! knows both sides.

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::{HttpResponse, full_body};
use crate::api::bindings;

/// Headers the host manages itself; a guest's values for them are dropped.
const HOST_MANAGED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
];

/// The WIT request for an HTTP request head and its complete body.
pub fn to_wit_request(
    parts: &http::request::Parts,
    body: Bytes,
    route: &str,
    params: Vec<(String, String)>,
) -> bindings::Request {
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    bindings::Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers,
        route: route.to_string(),
        params,
        body: body.into(),
    }
}

/// The HTTP response for a guest's WIT response, or why HTTP cannot carry
/// it (an invalid status, header name or value).
pub fn to_http_response(response: bindings::Response) -> Result<HttpResponse, String> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| format!("status {} is not a valid HTTP status", response.status))?;
    let mut http = Response::new(full_body(Bytes::from(response.body)));
    *http.status_mut() = status;
    for (name, value) in response.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not valid"))?;
        if HOST_MANAGED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("header {name} has an invalid value"))?;
        http.headers_mut().append(name, value);
    }
    Ok(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_method_path_query_headers_and_body() {
        let request = http::Request::post("/a/b?x=1")
            .header("X-Custom", "v")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let wit = to_wit_request(&parts, Bytes::from_static(b"hi"), "/a/...", vec![]);
        assert_eq!(wit.method, "POST");
        assert_eq!(wit.path, "/a/b");
        assert_eq!(wit.query.as_deref(), Some("x=1"));
        assert_eq!(wit.headers, vec![("x-custom".to_string(), "v".to_string())]);
        assert_eq!(wit.route, "/a/...");
        assert_eq!(wit.body, b"hi");
    }

    #[test]
    fn responses_drop_host_managed_headers_and_reject_invalid_ones() {
        let ok = to_http_response(bindings::Response {
            status: 201,
            headers: vec![
                ("x-a".into(), "1".into()),
                ("content-length".into(), "999".into()),
            ],
            body: b"body".to_vec(),
        })
        .unwrap();
        assert_eq!(ok.status(), 201);
        assert_eq!(ok.headers()["x-a"], "1");
        assert!(!ok.headers().contains_key("content-length"));

        let bad_status = to_http_response(bindings::Response {
            status: 42,
            headers: vec![],
            body: vec![],
        });
        assert!(bad_status.unwrap_err().contains("status 42"));
        let bad_name = to_http_response(bindings::Response {
            status: 200,
            headers: vec![("bad name".into(), "x".into())],
            body: vec![],
        });
        assert!(bad_name.unwrap_err().contains("bad name"));
        let bad_value = to_http_response(bindings::Response {
            status: 200,
            headers: vec![("x".into(), "line\nbreak".into())],
            body: vec![],
        });
        assert!(bad_value.unwrap_err().contains("invalid value"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn requests_keep_their_headers_and_body(
                headers in proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", "[ -~]{0,30}"), 0..8),
                body in proptest::collection::vec(any::<u8>(), 0..2048),
                path in "/[a-z0-9/]{0,20}",
            ) {
                let mut builder = http::Request::post(path.as_str());
                for (name, value) in &headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                let (parts, ()) = builder.body(()).unwrap().into_parts();
                let wit = to_wit_request(&parts, Bytes::from(body.clone()), "/...", vec![]);
                prop_assert_eq!(wit.body, body);
                prop_assert_eq!(wit.headers.len(), headers.len());
                prop_assert_eq!(wit.path, path);
            }

            #[test]
            fn any_guest_response_converts_or_is_refused_without_panicking(
                status in any::<u16>(),
                headers in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,20}"), 0..6),
                body in proptest::collection::vec(any::<u8>(), 0..512),
            ) {
                let converted = to_http_response(bindings::Response { status, headers, body });
                if let Ok(response) = converted {
                    prop_assert!((100..=999).contains(&response.status().as_u16()));
                    prop_assert!(!response.headers().contains_key("content-length"));
                }
            }
        }
    }
}
