//! The front door's checks before a service runs: a JWT bearer token
//! verified against the service's `[auth]` policy (its claims then reach
//! the service in [`CLAIMS_HEADER`], which no client can set), and the
//! service's rate limit.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::body::HttpResponse;
use super::problem::{close_if_unread, problem};
use crate::config::RateKey;
use crate::config::auth::{AuthPolicy, CLAIMS_HEADER};
use crate::runtime::service::Service;

/// Verifies the bearer token of a request with `policy`; returns the
/// token's claims, or why it is refused (never the token itself).
pub fn verify(policy: &AuthPolicy, headers: &HeaderMap) -> Result<Value, String> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err("no bearer token".to_string());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the Authorization header is not `Bearer <token>`".to_string())?;
    let header =
        jsonwebtoken::decode_header(token).map_err(|err| format!("malformed token: {err}"))?;
    if !policy.validation.algorithms.contains(&header.alg) {
        return Err(format!("algorithm {:?} is not accepted", header.alg));
    }
    // A key with the token's `kid` first; without one, each key in turn.
    let mut candidates: Vec<&jsonwebtoken::DecodingKey> = match &header.kid {
        Some(kid) => policy
            .keys
            .iter()
            .filter(|(id, _)| id.as_deref() == Some(kid.as_str()))
            .map(|(_, key)| key)
            .collect(),
        None => Vec::new(),
    };
    if candidates.is_empty() {
        candidates = policy.keys.iter().map(|(_, key)| key).collect();
    }
    let mut last = "no key to verify with".to_string();
    for key in candidates {
        match jsonwebtoken::decode::<Value>(token, key, &policy.validation) {
            Ok(data) => return Ok(data.claims),
            Err(err) => last = describe(&err),
        }
    }
    Err(last)
}

/// A verification error in words a client may see.
fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAudience => "the token is for another audience".into(),
        ErrorKind::InvalidIssuer => "the token is from another issuer".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        _ => format!("the token is not valid: {err}"),
    }
}

/// The 401 a refused token gets.
pub fn unauthorized(request_id: &str, reason: &str, unread: bool) -> HttpResponse {
    let mut response = problem(
        StatusCode::UNAUTHORIZED,
        Some(request_id),
        "authentication failed",
        json!({ "reason": reason }),
    );
    let challenge = format!(
        "Bearer realm=\"hive\", error=\"invalid_token\", error_description=\"{}\"",
        reason.replace(['"', '\\'], "'")
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    close_if_unread(response, unread)
}

/// `claims` as the header value a service reads: JSON in ASCII (anything
/// else escaped as `\uXXXX`), so every world passes it unchanged.
pub fn claims_header(claims: &Value) -> Option<HeaderValue> {
    let text = serde_json::to_string(claims).ok()?;
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    HeaderValue::from_str(&ascii).ok()
}

/// Removes the claims header a client sent, so only the host sets it.
pub fn strip_claims<B>(req: &mut Request<B>) {
    req.headers_mut().remove(CLAIMS_HEADER);
}

/// What the service's rate limit counts this request as.
pub fn rate_key(key: &RateKey, peer: Option<SocketAddr>, claims: Option<&Value>) -> String {
    match key {
        RateKey::Service => String::new(),
        RateKey::Client => peer.map(|p| p.ip().to_string()).unwrap_or_default(),
        RateKey::Claim(name) => match claims.and_then(|c| c.get(name)) {
            Some(Value::String(value)) => value.clone(),
            Some(value) => value.to_string(),
            None => String::new(),
        },
    }
}

/// The 429 a request over the service's rate gets.
pub fn too_many(service: &Service, request_id: &str, wait: Duration, unread: bool) -> HttpResponse {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        Some(request_id),
        "the service's rate limit is reached; retry later",
        json!({ "component": service.name(), "retry_after_seconds": seconds }),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    close_if_unread(response, unread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_travel_as_ascii_json() {
        let value = claims_header(&json!({"sub": "ana", "name": "Zoë ✓"})).unwrap();
        let text = value.to_str().unwrap();
        assert!(text.is_ascii());
        let back: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back["name"], "Zoë ✓");
    }
}
