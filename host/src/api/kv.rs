//! `hive:service/kv`: each service's private key-value store. The namespace
//! is the calling service's name, chosen by the host, so a service cannot
//! name another's data. Storage work runs on the blocking pool.

use std::sync::Arc;

use crate::bindings::hive::service::kv::{Error, Host};
use crate::state::InstanceState;
use crate::store::{KvStore, StoreError};

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

impl InstanceState {
    /// Runs `op` against the store, in this service's namespace, off the
    /// async workers.
    /// (The future borrows nothing from `self`: instance state is not
    /// `Sync`, and the future must be `Send`.)
    fn with_store<R: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn KvStore, &str) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, Error>> + Send + 'static {
        let store: Arc<dyn KvStore> = self.host.kv.clone();
        let namespace = self.service.name.clone();
        async move {
            match tokio::task::spawn_blocking(move || op(store.as_ref(), &namespace)).await {
                Ok(result) => result.map_err(Error::from),
                Err(err) => Err(Error::Storage(format!("storage task failed: {err}"))),
            }
        }
    }
}

impl Host for InstanceState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.with_store(move |store, ns| store.get(ns, &key)).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.with_store(move |store, ns| store.set(ns, &key, &value))
            .await
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        self.with_store(move |store, ns| store.delete(ns, &key))
            .await
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, Error> {
        self.with_store(move |store, ns| store.list_keys(ns, &prefix, limit as usize))
            .await
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        self.with_store(move |store, ns| store.increment(ns, &key, delta))
            .await
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, Error> {
        self.with_store(move |store, ns| {
            store.compare_and_swap(ns, &key, expected.as_deref(), &new)
        })
        .await
    }
}
