//! The id of the request an instance is serving, shared by every context
//! that tags output with it (guest log calls, stdout and stderr, outbound
//! HTTP). A reused instance gets the next request's id in one place, so no
//! context can go on tagging lines with an old one.

use std::sync::{Arc, Mutex, PoisonError};

/// A shared, replaceable request id. Clones share the value.
#[derive(Clone, Debug)]
pub struct RequestId(Arc<Mutex<Arc<str>>>);

impl RequestId {
    /// A cell holding `id`.
    pub fn new(id: Arc<str>) -> RequestId {
        RequestId(Arc::new(Mutex::new(id)))
    }

    /// The current id.
    pub fn get(&self) -> Arc<str> {
        // A poisoned lock only means a panic elsewhere; the id is intact.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the id, for every clone.
    pub fn set(&self, id: Arc<str>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_see_the_new_id() {
        let id = RequestId::new(Arc::from("first"));
        let seen_by_log = id.clone();
        id.set(Arc::from("second"));
        assert_eq!(&*seen_by_log.get(), "second");
    }
}
