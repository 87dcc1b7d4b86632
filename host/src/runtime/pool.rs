//! Instances kept between requests, for services that opt into reuse
//! (`instance-reuse` above 1). Isolation per request is the default; reuse
//! trades it for speed, so an instance goes back only after a call that
//! ended well, and only until it has served its quota.

use std::sync::{Mutex, PoisonError};

use wasmtime::Store;

use super::state::InstanceState;
use super::world::Live;

/// An idle instance with its store, and how many calls it has served.
pub(crate) struct Warm {
    pub store: Store<InstanceState>,
    pub live: Live,
    pub uses: u32,
}

/// A service's idle instances. Last in, first out, so the instance whose
/// memory is most likely still in cache goes next.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Warm>>,
}

impl Pool {
    /// An idle instance, if there is one.
    pub fn take(&self) -> Option<Warm> {
        self.lock().pop()
    }

    /// Keeps `warm` for a later call.
    pub fn put(&self, warm: Warm) {
        self.lock().push(warm);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        // A poisoned lock only means a panic elsewhere; the list is intact.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
