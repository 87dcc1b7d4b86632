//! `kvtool`: a thin HTTP front for the `kv` interface, so the host's tests
//! can drive a service's key-value store over HTTP.
//!
//! The key is the last path segment (percent-decoded), whatever the service
//! is deployed as; the method picks the operation:
//!
//! | request                     | operation          | answer                       |
//! | --------------------------- | ------------------ | ---------------------------- |
//! | `PUT .../<key>` + body      | `kv.set`           | 204                          |
//! | `GET .../<key>`             | `kv.get`           | 200 with the bytes, or 404   |
//! | `DELETE .../<key>`          | `kv.delete`        | 200 `true` / `false`         |
//! | `POST .../<key>?delta=N`    | `kv.increment`     | 200 with the new value       |
//! | `GET .../_keys?prefix=P`    | `kv.list-keys`     | 200, keys one per line       |
//!
//! `delta` defaults to 1. A store error answers 400 with the error's debug
//! form as text, e.g. `ValueTooLarge(1048577)`.

wit_bindgen::generate!({
    world: "service",
    path: "../../wit",
});

use exports::hive::service::handler::Guest;
use hive::service::kv;
use hive::service::types::{Request, Response};

/// Most keys a `_keys` listing returns.
const LIST_LIMIT: u32 = 1000;

struct KvTool;

impl Guest for KvTool {
    fn handle(req: Request) -> Response {
        let Some(key) = key_of(&req.path) else {
            return text(400, "no key in path".into());
        };
        match (req.method.as_str(), key.as_str()) {
            ("GET", "_keys") => list(&query_param(&req, "prefix").unwrap_or_default()),
            ("GET", _) => get(&key),
            ("PUT", _) => set(&key, &req.body),
            ("DELETE", _) => delete(&key),
            ("POST", _) => match query_param(&req, "delta").map(|d| d.parse::<i64>()) {
                None => increment(&key, 1),
                Some(Ok(delta)) => increment(&key, delta),
                Some(Err(_)) => text(400, "delta is not a 64-bit integer".into()),
            },
            (method, _) => text(405, format!("method {method} not supported")),
        }
    }
}

fn get(key: &str) -> Response {
    match kv::get(key) {
        Ok(Some(value)) => bytes(200, value),
        Ok(None) => text(404, format!("no value for {key:?}")),
        Err(err) => store_error(err),
    }
}

fn set(key: &str, value: &[u8]) -> Response {
    match kv::set(key, value) {
        Ok(()) => Response {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        },
        Err(err) => store_error(err),
    }
}

fn delete(key: &str) -> Response {
    match kv::delete(key) {
        Ok(existed) => text(200, existed.to_string()),
        Err(err) => store_error(err),
    }
}

fn increment(key: &str, delta: i64) -> Response {
    match kv::increment(key, delta) {
        Ok(value) => text(200, value.to_string()),
        Err(err) => store_error(err),
    }
}

fn list(prefix: &str) -> Response {
    match kv::list_keys(prefix, LIST_LIMIT) {
        Ok(keys) => text(200, keys.join("\n")),
        Err(err) => store_error(err),
    }
}

/// 400 with the error's debug form, without the generated `Error::` prefix,
/// so it reads like a derived `Debug`: `ValueTooLarge(1048577)`.
fn store_error(err: kv::Error) -> Response {
    let debug = format!("{err:?}");
    let body = debug.strip_prefix("Error::").unwrap_or(&debug).to_string();
    text(400, body)
}

/// The percent-decoded last segment of a path with at least two segments
/// (`/kvtool/<key>`); `None` for the bare `/kvtool`.
fn key_of(path: &str) -> Option<String> {
    let (_service, rest) = path.trim_start_matches('/').split_once('/')?;
    let last = rest.rsplit('/').next().unwrap_or(rest);
    Some(percent_decode(last, false))
}

/// The form-decoded value of `name` in the query string, if present.
fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query
        .as_deref()?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode(key, true) == name)
        .map(|(_, value)| percent_decode(value, true))
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); bytes
/// that do not form UTF-8 become U+FFFD, malformed escapes stay as they are.
fn percent_decode(input: &str, plus_is_space: bool) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match (byte, hex_byte(tail)) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                rest = &tail[2..];
            }
            (b'+', _) if plus_is_space => out.push(b' '),
            _ => out.push(byte),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte spelled by the first two hex digits of `bytes`, if they are.
fn hex_byte(bytes: &[u8]) -> Option<u8> {
    let [high, low, ..] = bytes else {
        return None;
    };
    let digit = |b: &u8| char::from(*b).to_digit(16);
    u8::try_from(digit(high)? * 16 + digit(low)?).ok()
}

fn text(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.into_bytes(),
    }
}

fn bytes(status: u16, body: Vec<u8>) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body,
    }
}

export!(KvTool);
