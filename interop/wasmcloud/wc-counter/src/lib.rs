//! The key-value counter of wasmCloud's examples: each request adds one to
//! the counter named by its path, in the bucket named by `?bucket=`
//! (`default` when absent), with `wasi:keyvalue@0.2.0-draft` atomics.

use wasmcloud_component::http::{self, ErrorCode};
use wasmcloud_component::info;
use wasmcloud_component::wasi::keyvalue::{atomics, store};

struct Counter;

http::export!(Counter);

impl http::Server for Counter {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let key = request
            .uri()
            .path()
            .trim_start_matches("/wc-counter")
            .trim_start_matches('/')
            .to_string();
        if key.is_empty() {
            return Err(ErrorCode::InternalError(Some("name a counter".into())));
        }
        let bucket_name = request
            .uri()
            .query()
            .and_then(|query| query.strip_prefix("bucket="))
            .unwrap_or("default")
            .to_string();
        let bucket = match store::open(&bucket_name) {
            Ok(bucket) => bucket,
            Err(err) => {
                let mut response = http::Response::new(format!("open {bucket_name}: {err:?}\n"));
                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                return Ok(response);
            }
        };
        let count = atomics::increment(&bucket, &key, 1)
            .map_err(|err| ErrorCode::InternalError(Some(format!("{err:?}"))))?;
        info!(context: "counter", "{key} is now {count}");
        Ok(http::Response::new(format!("Counter {key}: {count}\n")))
    }
}
