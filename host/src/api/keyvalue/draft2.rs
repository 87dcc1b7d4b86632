//! `wasi:keyvalue@0.2.0-draft2` as Spin vendors it: string cursors, a
//! signed increment, compare-and-swap through a `cas` resource, and a
//! `get-many` that answers every key asked. A bucket it may not open is
//! `access-denied`, as on Spin.

use wasmtime::component::{Linker, Resource};

use super::{Bucket, Cas, HasKeyValue, KeyValueView, other};
use crate::api::bindings::kv_draft2::{self, Error, KeyResponse};
use crate::api::bindings::kv_draft2_atomics::{self, CasError};
use crate::api::bindings::kv_draft2_batch;
use crate::api::kv::{Op, traced};
use crate::api::lost;

impl kv_draft2::Host for KeyValueView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        Ok(self.open_bucket(&identifier)?.ok_or(Error::AccessDenied))
    }
}

impl kv_draft2::HostBucket for KeyValueView<'_> {
    bucket_basics!(Error);

    /// The cursor is the last key of the page before.
    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let after = cursor.unwrap_or_default();
        Ok(match self.page(&bucket, &after).await? {
            Ok((keys, more)) => {
                let cursor = more.then(|| keys.last().cloned()).flatten();
                Ok(KeyResponse { keys, cursor })
            }
            Err(err) => Err(Error::Other(err)),
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.close(bucket)
    }
}

impl kv_draft2_atomics::HostCas for KeyValueView<'_> {
    /// Reads the key's value now: the swap succeeds only if it still holds
    /// it then.
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        let namespace = self.namespace(&bucket)?;
        let get = self.ctx.store.get(&namespace, &key);
        let seen = match traced(&self.ctx.trace, &namespace, Op::Get, get).await {
            Ok(seen) => seen,
            Err(err) => return Ok(Err(Error::Other(other(err)))),
        };
        Ok(Ok(self.table.push(Cas {
            namespace,
            key,
            seen,
        })?))
    }

    /// Reads the value again; the swap then compares against this one.
    async fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (namespace, key) = {
            let cas = self.table.get(&cas).map_err(|_| lost("cas"))?;
            (cas.namespace.clone(), cas.key.clone())
        };
        let get = self.ctx.store.get(&namespace, &key);
        let seen = match traced(&self.ctx.trace, &namespace, Op::Get, get).await {
            Ok(seen) => seen,
            Err(err) => return Ok(Err(Error::Other(other(err)))),
        };
        self.table.get_mut(&cas).map_err(|_| lost("cas"))?.seen = seen.clone();
        Ok(Ok(seen))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas).map_err(|_| lost("cas"))?;
        Ok(())
    }
}

impl kv_draft2_atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        Ok(self.add(&bucket, &key, delta).await?.map_err(Error::Other))
    }

    /// Atomic in the store: the value is replaced only if it is still the
    /// one the `cas` read. On a lost race the guest gets its `cas` back to
    /// read again and retry.
    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), CasError>> {
        let taken = self.table.delete(cas).map_err(|_| lost("cas"))?;
        let swap = self.ctx.store.compare_and_swap(
            &taken.namespace,
            &taken.key,
            taken.seen.as_deref(),
            &value,
        );
        Ok(
            match traced(&self.ctx.trace, &taken.namespace, Op::CompareAndSwap, swap).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(CasError::CasFailed(self.table.push(taken)?)),
                Err(err) => Err(CasError::StoreError(Error::Other(other(err)))),
            },
        )
    }
}

impl kv_draft2_batch::Host for KeyValueView<'_> {
    batch_writes!(Error);

    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        Ok(self.read_many(&bucket, keys).await?.map_err(Error::Other))
    }
}

/// Links draft2's store, atomics and batch.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    kv_draft2::add_to_linker::<T, HasKeyValue>(linker, get)?;
    kv_draft2_atomics::add_to_linker::<T, HasKeyValue>(linker, get)?;
    kv_draft2_batch::add_to_linker::<T, HasKeyValue>(linker, get)
}
