//! `hive:service/kv`: each service's private key-value store. The namespace
//! is the calling service's name, chosen by the host, so a service cannot
//! name another's data. Reads, and every call to a backend other than the
//! embedded store, run on the blocking pool; the embedded store's writes
//! are awaited directly (they wait on its writer thread, not on a thread
//! of ours).

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::kv::{self, Error};
use crate::kv::{KvStore, StoreError};

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        match err {
            StoreError::InvalidKey(reason) => Error::InvalidKey(reason),
            StoreError::ValueTooLarge(size) => Error::ValueTooLarge(size),
            StoreError::NotANumber => Error::NotANumber,
            StoreError::Storage(reason) => Error::Storage(reason),
        }
    }
}

/// One service's view of the store: the store and its namespace.
pub struct KvCtx {
    store: Arc<dyn KvStore>,
    namespace: Arc<str>,
}

impl KvCtx {
    /// Access to `store` within `namespace` only.
    pub fn new(store: Arc<dyn KvStore>, namespace: Arc<str>) -> KvCtx {
        KvCtx { store, namespace }
    }

    /// Runs `op` against the store, in this service's namespace, off the
    /// async workers. The future borrows nothing from `self`, so it is
    /// `Send` while instance state is not `Sync`.
    fn run<R: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn KvStore, &str) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, Error>> + Send + 'static {
        let store = self.store.clone();
        let namespace = self.namespace.clone();
        async move {
            match tokio::task::spawn_blocking(move || op(store.as_ref(), &namespace)).await {
                Ok(result) => result.map_err(Error::from),
                Err(err) => Err(Error::Storage(format!("storage task failed: {err}"))),
            }
        }
    }
}

impl kv::Host for KvCtx {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.run(move |store, ns| store.get(ns, &key)).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        if let Some(embedded) = self.store.embedded() {
            let write = embedded.set_async(&self.namespace, &key, &value);
            return write.await.map_err(Error::from);
        }
        self.run(move |store, ns| store.set(ns, &key, &value)).await
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        if let Some(embedded) = self.store.embedded() {
            let write = embedded.delete_async(&self.namespace, &key);
            return write.await.map_err(Error::from);
        }
        self.run(move |store, ns| store.delete(ns, &key)).await
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, Error> {
        self.run(move |store, ns| store.list_keys(ns, &prefix, limit as usize))
            .await
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        if let Some(embedded) = self.store.embedded() {
            let write = embedded.increment_async(&self.namespace, &key, delta);
            return write.await.map_err(Error::from);
        }
        self.run(move |store, ns| store.increment(ns, &key, delta))
            .await
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, Error> {
        if let Some(embedded) = self.store.embedded() {
            let write =
                embedded.compare_and_swap_async(&self.namespace, &key, expected.as_deref(), &new);
            return write.await.map_err(Error::from);
        }
        self.run(move |store, ns| store.compare_and_swap(ns, &key, expected.as_deref(), &new))
            .await
    }
}

/// Links `hive:service/kv` to the [`KvCtx`] that `get` finds in `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvCtx,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, HasSelf<KvCtx>>(linker, get)
}
