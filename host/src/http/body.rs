//! The one body type every response of the host has, whole or streamed.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Response;

/// Response bodies: whole for Hive services and host errors, streamed for
/// `wasi:http` components.
pub type HttpBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// What every request gets back.
pub type HttpResponse = Response<HttpBody>;

/// A body that is already complete.
pub fn full_body(bytes: impl Into<Bytes>) -> HttpBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
