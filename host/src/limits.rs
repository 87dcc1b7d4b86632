//! Resource limits applied to each request a service handles.

use std::time::Duration;

/// Limits for one service's instances. Host-wide defaults today; later a
/// manifest may override them per service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// Wall-clock time one request may take, guest code and host calls.
    pub timeout: Duration,
    /// Largest request body accepted; larger ones get 413.
    pub max_request_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory_bytes: 64 << 20,
            timeout: Duration::from_secs(10),
            max_request_body_bytes: 16 << 20,
        }
    }
}
