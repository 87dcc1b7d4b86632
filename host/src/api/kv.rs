//! `hive:service/kv`: each service's private key-value store. The namespace
//! is the calling service's name, chosen by the host, so a service cannot
//! name another's data. Each call awaits the store's own future (see
//! [`crate::kv::StoreFuture`]): no thread of ours waits on a write.

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
}

impl kv::Host for KvCtx {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.store.get(&self.namespace, &key).await?)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        Ok(self.store.set(&self.namespace, &key, &value).await?)
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        Ok(self.store.delete(&self.namespace, &key).await?)
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, Error> {
        let limit = limit as usize;
        Ok(self
            .store
            .list_keys(&self.namespace, &prefix, limit)
            .await?)
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        Ok(self.store.increment(&self.namespace, &key, delta).await?)
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, Error> {
        let swap = self
            .store
            .compare_and_swap(&self.namespace, &key, expected.as_deref(), &new);
        Ok(swap.await?)
    }
}

/// Links `hive:service/kv` to the [`KvCtx`] that `get` finds in `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvCtx,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, HasSelf<KvCtx>>(linker, get)
}
