//! A flag a call raises when it fails, for whoever streams its output.
//!
//! When a `wasi:http` guest traps or times out after sending its response
//! head, its instance is dropped and `wasmtime-wasi-http` ends the body it
//! was writing as if the guest had finished it. The runtime raises this
//! mark before it drops the instance, so the response body can end in an
//! error instead of looking complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared between a call and the body it writes. Clones share the flag.
#[derive(Clone, Default, Debug)]
pub struct FailureMark(Arc<AtomicBool>);

impl FailureMark {
    /// Marks the call as failed.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the call failed.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
