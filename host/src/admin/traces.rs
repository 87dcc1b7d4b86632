//! `GET /requests/<id>/trace`: a request's trace from the host's own
//! recent spans, for the console's waterfall and `hive trace`.

use hyper::StatusCode;

use super::error;
use crate::host::Host;
use crate::http::body::HttpResponse;
use crate::http::problem::json_response;

/// The trace of request `id`, or why there is none.
pub fn trace(host: &Host, id: &str) -> HttpResponse {
    let Some(tracing) = host.runtime.tracing() else {
        return error(
            StatusCode::NOT_FOUND,
            "traces are off on this host (--traces=false, [traces] enabled = false or OTEL_SDK_DISABLED)",
        );
    };
    match tracing.recent().trace_of_request(id) {
        Some(view) => match serde_json::to_value(view) {
            Ok(value) => json_response(StatusCode::OK, &value),
            Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
        },
        None => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no span of request {id} is kept here: it was not sampled (by its caller, or \
                 past the sampler's rate of new traces a second, --trace-sampler-arg), it was \
                 served by another host, or it is older than the last {} spans",
                crate::trace::KEPT_SPANS
            ),
        ),
    }
}
