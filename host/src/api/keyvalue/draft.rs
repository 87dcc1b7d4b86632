//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch), as wasmCloud
//! components and wasmtime's own test programs use it. A bucket it may not
//! open is `no-such-store`, as on wasmtime's host.

use wasmtime::component::{Linker, Resource};

use super::{Bucket, HasKeyValue, KeyValueView};
use crate::api::bindings::kv_draft::{self, Error, KeyResponse};
use crate::api::bindings::{kv_draft_atomics, kv_draft_batch};

impl kv_draft::Host for KeyValueView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        Ok(self.open_bucket(&identifier)?.ok_or(Error::NoSuchStore))
    }
}

impl kv_draft::HostBucket for KeyValueView<'_> {
    bucket_basics!(Error);

    /// Cursor `n` continues after the `n`th page this handle listed; the
    /// draft's cursors are numbers, Hive's paging is by key.
    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let after = match cursor.unwrap_or(0) {
            0 => String::new(),
            n => {
                let index = usize::try_from(n - 1).unwrap_or(usize::MAX);
                match self.bucket(&bucket)?.pages.get(index) {
                    Some(last) => last.clone(),
                    None => {
                        return Ok(Err(Error::Other(format!(
                            "cursor {n} was not given by this bucket"
                        ))));
                    }
                }
            }
        };
        let (keys, more) = match self.page(&bucket, &after).await? {
            Ok(page) => page,
            Err(err) => return Ok(Err(Error::Other(err))),
        };
        let cursor = match (more, keys.last()) {
            (true, Some(last)) => {
                let pages = &mut self.bucket(&bucket)?.pages;
                pages.push(last.clone());
                Some(pages.len() as u64)
            }
            _ => None,
        };
        Ok(Ok(KeyResponse { keys, cursor }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.close(bucket)
    }
}

impl kv_draft_atomics::Host for KeyValueView<'_> {
    /// Hive's numbers are signed decimal text; the draft's are unsigned,
    /// so a delta or a total outside both is an `other` error.
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let Ok(delta) = i64::try_from(delta) else {
            return Ok(Err(Error::Other(format!(
                "delta {delta} is over the largest number Hive keeps"
            ))));
        };
        Ok(match self.add(&bucket, &key, delta).await? {
            Ok(total) => u64::try_from(total)
                .map_err(|_| Error::Other(format!("{key:?} holds {total}, below zero"))),
            Err(err) => Err(Error::Other(err)),
        })
    }
}

impl kv_draft_batch::Host for KeyValueView<'_> {
    batch_writes!(Error);

    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, Error>> {
        Ok(match self.read_many(&bucket, keys).await? {
            Ok(found) => Ok(found
                .into_iter()
                .map(|(key, value)| value.map(|value| (key, value)))
                .collect()),
            Err(err) => Err(Error::Other(err)),
        })
    }
}

/// Links the draft's store, atomics and batch.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    kv_draft::add_to_linker::<T, HasKeyValue>(linker, get)?;
    kv_draft_atomics::add_to_linker::<T, HasKeyValue>(linker, get)?;
    kv_draft_batch::add_to_linker::<T, HasKeyValue>(linker, get)
}
