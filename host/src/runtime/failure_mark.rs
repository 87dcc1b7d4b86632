//! A flag a call raises when it fails, for whoever streams its output.
//!
//! When a `wasi:http` guest traps or times out after sending its response
//! head, its instance is dropped and `wasmtime-wasi-http` ends the body it
//! was writing as if the guest had finished it. The runtime raises this
//! mark, with the failure's kind, before it drops the instance, so the
//! response body can end in an error instead of looking complete. The
//! front door raises it too when it cuts a request body at its limit:
//! whatever the guest does next, its response must not look whole.

use std::sync::{Arc, OnceLock};

use super::failure::FailureKind;

/// Shared between a call and the body it writes. Clones share the flag;
/// the first kind raised stays.
#[derive(Clone, Default, Debug)]
pub struct FailureMark(Arc<OnceLock<FailureKind>>);

impl FailureMark {
    /// Marks the call as failed with `kind` (unless it already was).
    pub fn set(&self, kind: FailureKind) {
        let _ = self.0.set(kind);
    }

    /// Whether the call failed.
    pub fn is_set(&self) -> bool {
        self.0.get().is_some()
    }

    /// Whether a clone other than this one still exists: someone (the
    /// response body, the request's log line) still watches the call.
    pub fn is_watched(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// How it failed, if it did.
    pub fn kind(&self) -> Option<FailureKind> {
        self.0.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_kind_raised_stays() {
        let mark = FailureMark::default();
        let seen_by_body = mark.clone();
        assert!(!seen_by_body.is_set());
        mark.set(FailureKind::RequestTooLarge);
        mark.set(FailureKind::Trap);
        assert_eq!(seen_by_body.kind(), Some(FailureKind::RequestTooLarge));
    }
}
