//! The standard key-value interfaces on Hive's own store, so components
//! written for Spin or wasmCloud keep their data unchanged:
//! `wasi:keyvalue@0.2.0-draft` (wasmCloud) in [`draft`],
//! `wasi:keyvalue@0.2.0-draft2` as Spin vendors it in [`draft2`], and
//! Spin's `fermyon:spin/key-value` in [`spin`].
//!
//! Every bucket is private to the service that opens it. The default
//! bucket (`""` or `"default"`) is the namespace `hive:service/kv` uses, so
//! both see the same data; a bucket the manifest lists under `buckets` is
//! the namespace `<service>/<bucket>` (a service name has no `/`, so no
//! service can reach it). Any other name is refused the way the
//! component's home host refuses it. A store outage reaches the guest as
//! the interface's `other(...)`, never as a trap.

/// The bucket methods every version shares (`get`, `set`, `delete`,
/// `exists`), for an impl whose interface's error enum is `$error`, with
/// the store's failures as its `other(...)`.
macro_rules! bucket_basics {
    ($error:ident) => {
        async fn get(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
        ) -> wasmtime::Result<Result<Option<Vec<u8>>, $error>> {
            Ok(self.read(&bucket, &key).await?.map_err($error::Other))
        }

        async fn set(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
            value: Vec<u8>,
        ) -> wasmtime::Result<Result<(), $error>> {
            Ok(self
                .write(&bucket, &key, &value)
                .await?
                .map_err($error::Other))
        }

        async fn delete(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
        ) -> wasmtime::Result<Result<(), $error>> {
            Ok(self.remove(&bucket, &key).await?.map_err($error::Other))
        }

        async fn exists(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
        ) -> wasmtime::Result<Result<bool, $error>> {
            Ok(self.contains(&bucket, &key).await?.map_err($error::Other))
        }
    };
}

/// The batch writes both `wasi:keyvalue` versions share.
macro_rules! batch_writes {
    ($error:ident) => {
        async fn set_many(
            &mut self,
            bucket: Resource<Bucket>,
            key_values: Vec<(String, Vec<u8>)>,
        ) -> wasmtime::Result<Result<(), $error>> {
            Ok(self
                .write_many(&bucket, key_values)
                .await?
                .map_err($error::Other))
        }

        async fn delete_many(
            &mut self,
            bucket: Resource<Bucket>,
            keys: Vec<String>,
        ) -> wasmtime::Result<Result<(), $error>> {
            Ok(self
                .remove_many(&bucket, keys)
                .await?
                .map_err($error::Other))
        }
    };
}

pub mod draft;
pub mod draft2;
pub mod spin;

use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

use super::kv::{Op, traced};
use crate::api::lost;
use crate::kv::{KvStore, StoreError};
use crate::trace::SpanScope;

/// How many keys one `list-keys` page holds.
const PAGE: usize = 256;

/// An open bucket: the namespace its keys live in.
pub struct Bucket {
    namespace: Arc<str>,
    /// The last key of each page listed so far, for the draft's numeric
    /// cursors (cursor `n` continues after the `n`th page).
    pages: Vec<String>,
}

/// A compare-and-swap in progress (`wasi:keyvalue@0.2.0-draft2`): the key
/// and the value it held when last read.
pub struct Cas {
    namespace: Arc<str>,
    key: String,
    seen: Option<Vec<u8>>,
}

/// One service's access to its buckets.
pub struct KeyValueCtx {
    store: Arc<dyn KvStore>,
    service: Arc<str>,
    buckets: Arc<[String]>,
    /// Each operation is a span below its current one.
    trace: SpanScope,
}

impl KeyValueCtx {
    /// Buckets of `service` in `store`: its default one and the named
    /// `buckets` of its manifest.
    pub fn new(
        store: Arc<dyn KvStore>,
        service: Arc<str>,
        buckets: Arc<[String]>,
        trace: SpanScope,
    ) -> KeyValueCtx {
        KeyValueCtx {
            store,
            service,
            buckets,
            trace,
        }
    }

    /// The namespace bucket `name` maps to, or `None` if the service may
    /// not open it.
    fn namespace(&self, name: &str) -> Option<Arc<str>> {
        if name.is_empty() || name == "default" {
            return Some(self.service.clone());
        }
        self.buckets
            .iter()
            .any(|bucket| bucket == name)
            .then(|| format!("{}/{name}", self.service).into())
    }

    fn not_declared(&self, name: &str) -> String {
        format!(
            "bucket {name:?} is not declared: list it in {}.toml's buckets",
            self.service
        )
    }
}

/// The context with the instance's resource table, where buckets live.
pub struct KeyValueView<'a> {
    /// The service's context.
    pub ctx: &'a mut KeyValueCtx,
    /// The instance's resources.
    pub table: &'a mut ResourceTable,
}

/// Marks [`KeyValueView`] as the data the generated traits are given.
pub(crate) struct HasKeyValue;

impl wasmtime::component::HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// What the store's failure means to a guest of these interfaces: the
/// text for their `other(...)` variant.
fn other(err: StoreError) -> String {
    err.to_string()
}

impl KeyValueView<'_> {
    /// Opens bucket `name` as a new handle, or `None` if it may not.
    fn open_bucket(&mut self, name: &str) -> wasmtime::Result<Option<Resource<Bucket>>> {
        let Some(namespace) = self.ctx.namespace(name) else {
            tracing::debug!(component = %self.ctx.service, "{}", self.ctx.not_declared(name));
            return Ok(None);
        };
        let bucket = Bucket {
            namespace,
            pages: Vec::new(),
        };
        Ok(Some(self.table.push(bucket)?))
    }

    fn bucket(&mut self, handle: &Resource<Bucket>) -> wasmtime::Result<&mut Bucket> {
        self.table.get_mut(handle).map_err(|_| lost("bucket"))
    }

    fn namespace(&mut self, handle: &Resource<Bucket>) -> wasmtime::Result<Arc<str>> {
        Ok(self.bucket(handle)?.namespace.clone())
    }

    fn close(&mut self, handle: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(handle).map_err(|_| lost("bucket"))?;
        Ok(())
    }

    async fn read(
        &mut self,
        handle: &Resource<Bucket>,
        key: &str,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        let namespace = self.namespace(handle)?;
        let get = self.ctx.store.get(&namespace, key);
        Ok(traced(&self.ctx.trace, &namespace, Op::Get, get)
            .await
            .map_err(other))
    }

    async fn write(
        &mut self,
        handle: &Resource<Bucket>,
        key: &str,
        value: &[u8],
    ) -> wasmtime::Result<Result<(), String>> {
        let namespace = self.namespace(handle)?;
        let set = self.ctx.store.set(&namespace, key, value);
        Ok(traced(&self.ctx.trace, &namespace, Op::Set, set)
            .await
            .map_err(other))
    }

    async fn remove(
        &mut self,
        handle: &Resource<Bucket>,
        key: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        let namespace = self.namespace(handle)?;
        let delete = self.ctx.store.delete(&namespace, key);
        Ok(traced(&self.ctx.trace, &namespace, Op::Delete, delete)
            .await
            .map(|_| ())
            .map_err(other))
    }

    async fn contains(
        &mut self,
        handle: &Resource<Bucket>,
        key: &str,
    ) -> wasmtime::Result<Result<bool, String>> {
        Ok(self.read(handle, key).await?.map(|value| value.is_some()))
    }

    /// One page of keys after `after` (from the start when empty), and
    /// whether more may follow.
    async fn page(
        &mut self,
        handle: &Resource<Bucket>,
        after: &str,
    ) -> wasmtime::Result<Result<(Vec<String>, bool), String>> {
        let namespace = self.namespace(handle)?;
        let list = self.ctx.store.keys_after(&namespace, after, PAGE + 1);
        let listed = traced(&self.ctx.trace, &namespace, Op::ListKeys, list).await;
        Ok(listed.map_err(other).map(|mut keys| {
            let more = keys.len() > PAGE;
            keys.truncate(PAGE);
            (keys, more)
        }))
    }

    async fn add(
        &mut self,
        handle: &Resource<Bucket>,
        key: &str,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, String>> {
        let namespace = self.namespace(handle)?;
        let increment = self.ctx.store.increment(&namespace, key, delta);
        Ok(
            traced(&self.ctx.trace, &namespace, Op::Increment, increment)
                .await
                .map_err(other),
        )
    }

    async fn read_many(
        &mut self,
        handle: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, String>> {
        let namespace = self.namespace(handle)?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let get = self.ctx.store.get(&namespace, &key);
            match traced(&self.ctx.trace, &namespace, Op::Get, get).await {
                Ok(value) => found.push((key, value)),
                Err(err) => return Ok(Err(other(err))),
            }
        }
        Ok(Ok(found))
    }

    async fn write_many(
        &mut self,
        handle: &Resource<Bucket>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), String>> {
        let namespace = self.namespace(handle)?;
        for (key, value) in pairs {
            let set = self.ctx.store.set(&namespace, &key, &value);
            if let Err(err) = traced(&self.ctx.trace, &namespace, Op::Set, set).await {
                return Ok(Err(other(err)));
            }
        }
        Ok(Ok(()))
    }

    async fn remove_many(
        &mut self,
        handle: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        let namespace = self.namespace(handle)?;
        for key in keys {
            let delete = self.ctx.store.delete(&namespace, &key);
            if let Err(err) = traced(&self.ctx.trace, &namespace, Op::Delete, delete).await {
                return Ok(Err(other(err)));
            }
        }
        Ok(Ok(()))
    }

    /// Every key of the bucket (Spin's `get-keys`), page by page.
    async fn all_keys(
        &mut self,
        handle: &Resource<Bucket>,
    ) -> wasmtime::Result<Result<Vec<String>, String>> {
        let mut all: Vec<String> = Vec::new();
        loop {
            let after = all.last().cloned().unwrap_or_default();
            match self.page(handle, &after).await? {
                Ok((keys, more)) => {
                    all.extend(keys);
                    if !more {
                        return Ok(Ok(all));
                    }
                }
                Err(err) => return Ok(Err(err)),
            }
        }
    }
}

/// Links every key-value interface Hive serves to the view `get` makes of
/// `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    draft::add_to_linker(linker, get)?;
    draft2::add_to_linker(linker, get)?;
    spin::add_to_linker(linker, get)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wasmtime::component::ResourceTable;

    use super::{KeyValueCtx, KeyValueView, SpanScope};
    use crate::api::bindings::kv as hive_kv;
    use crate::api::kv::KvCtx;
    use crate::kv::KvStore;
    use crate::kv::redb::RedbStore;

    fn context(store: Arc<dyn KvStore>) -> KeyValueCtx {
        KeyValueCtx::new(
            store,
            "shop".into(),
            vec!["cache".to_string()].into(),
            SpanScope::default(),
        )
    }

    #[test]
    fn buckets_are_namespaces_of_the_service_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KvStore> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let ctx = context(store);
        assert_eq!(ctx.namespace("").as_deref(), Some("shop"));
        assert_eq!(ctx.namespace("default").as_deref(), Some("shop"));
        assert_eq!(ctx.namespace("cache").as_deref(), Some("shop/cache"));
        assert_eq!(ctx.namespace("other"), None);
        assert_eq!(ctx.namespace("shop"), None);
    }

    #[tokio::test]
    async fn the_default_bucket_is_what_hive_kv_sees() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KvStore> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let mut hive = KvCtx::new(store.clone(), "shop".into(), Default::default());
        hive_kv::Host::set(&mut hive, "greeting".into(), b"hej".to_vec())
            .await
            .unwrap();

        let mut ctx = context(store);
        let mut table = ResourceTable::new();
        let mut view = KeyValueView {
            ctx: &mut ctx,
            table: &mut table,
        };
        for name in ["", "default"] {
            let bucket = view.open_bucket(name).unwrap().unwrap();
            let read = view.read(&bucket, "greeting").await.unwrap();
            assert_eq!(read, Ok(Some(b"hej".to_vec())), "{name:?}");
            view.close(bucket).unwrap();
        }
        let cache = view.open_bucket("cache").unwrap().unwrap();
        assert_eq!(view.read(&cache, "greeting").await.unwrap(), Ok(None));
        assert!(view.open_bucket("elsewhere").unwrap().is_none());
    }

    #[tokio::test]
    async fn the_drafts_numeric_cursor_pages_through_every_key_once() {
        use crate::api::bindings::kv_draft::HostBucket;

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn KvStore> = Arc::new(RedbStore::open(dir.path()).unwrap());
        for i in 0..600 {
            store.set("shop", &format!("k{i:04}"), b"").await.unwrap();
        }
        let mut ctx = context(store);
        let mut table = ResourceTable::new();
        let mut view = KeyValueView {
            ctx: &mut ctx,
            table: &mut table,
        };
        let bucket = view.open_bucket("default").unwrap().unwrap();
        let (mut seen, mut cursor, mut pages) = (Vec::new(), None, 0);
        loop {
            let handle = wasmtime::component::Resource::new_borrow(bucket.rep());
            let page = view.list_keys(handle, cursor).await.unwrap().unwrap();
            pages += 1;
            seen.extend(page.keys);
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(pages, 3);
        let expected: Vec<String> = (0..600).map(|i| format!("k{i:04}")).collect();
        assert_eq!(seen, expected);
        // A cursor this handle never gave is an error, not a trap.
        let handle = wasmtime::component::Resource::new_borrow(bucket.rep());
        assert!(view.list_keys(handle, Some(9)).await.unwrap().is_err());
    }
}
