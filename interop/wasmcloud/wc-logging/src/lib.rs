//! Logs through `wasi:logging/logging@0.1.0-draft` with wasmCloud's
//! macros: one line at each level, with a context, carrying the request's
//! `?note=`.

use wasmcloud_component::http;
use wasmcloud_component::{critical, debug, error, info, trace, warn};

struct Logging;

http::export!(Logging);

impl http::Server for Logging {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let note = request
            .uri()
            .query()
            .and_then(|query| query.strip_prefix("note="))
            .unwrap_or("none")
            .to_string();
        trace!(context: "audit", "trace {note}");
        debug!(context: "audit", "debug {note}");
        info!(context: "audit", "info {note}");
        warn!(context: "audit", "warn {note}");
        error!(context: "audit", "error {note}");
        critical!(context: "audit", "critical {note}");
        info!("no context {note}");
        Ok(http::Response::new(format!("logged {note}\n")))
    }
}
