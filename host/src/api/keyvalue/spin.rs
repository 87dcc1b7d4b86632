//! Spin's own `fermyon:spin/key-value@2.0.0`, which spin-sdk's
//! `key_value::Store` imports. A store it may not open is `access-denied`,
//! as on Spin for a label its manifest does not list.

use wasmtime::component::{Linker, Resource};

use super::{Bucket, HasKeyValue, KeyValueView};
use crate::api::bindings::spin_key_value::{self, Error};

impl spin_key_value::Host for KeyValueView<'_> {}

impl spin_key_value::HostStore for KeyValueView<'_> {
    bucket_basics!(Error);

    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        Ok(self.open_bucket(&label)?.ok_or(Error::AccessDenied))
    }

    async fn get_keys(
        &mut self,
        store: Resource<Bucket>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        Ok(self.all_keys(&store).await?.map_err(Error::Other))
    }

    async fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        self.close(store)
    }
}

/// Links Spin's key-value interface.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    spin_key_value::add_to_linker::<T, HasKeyValue>(linker, get)
}
