//! `GET /stats`: requests/s, errors/s, p50 and p99 latency in 5 s buckets
//! over the last 15 minutes, host-wide and per component, for the status
//! page's charts, `hive top` and any other tool.

use serde_json::{Value, json};

use crate::host::Host;
use crate::metrics::window::{BUCKET_SECONDS, BUCKETS};

/// The host's recent requests as JSON.
pub fn stats(host: &Host) -> Value {
    let (all, components) = host.metrics().recent();
    json!({
        "bucket_seconds": BUCKET_SECONDS,
        "window_seconds": BUCKET_SECONDS * BUCKETS as u64,
        "host": all,
        "components": components,
    })
}
