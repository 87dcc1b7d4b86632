//! `hive:service/kv`: each service's private key-value store. The namespace
//! is the calling service's name, chosen by the host, so a service cannot
//! name another's data. Each call awaits the store's own future (see
//! [`crate::kv::StoreFuture`]): no thread of ours waits on a write.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::kv::{self, Error};
use crate::kv::{KvStore, StoreError, StoreFuture};
use crate::trace::SpanScope;

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
    trace: SpanScope,
}

impl KvCtx {
    /// Access to `store` within `namespace` only, each operation a span
    /// below `trace`'s current one.
    pub fn new(store: Arc<dyn KvStore>, namespace: Arc<str>, trace: SpanScope) -> KvCtx {
        KvCtx {
            store,
            namespace,
            trace,
        }
    }

    async fn traced<T>(&self, op: Op, operation: StoreFuture<T>) -> Result<T, Error> {
        Ok(traced(&self.trace, &self.namespace, op, operation).await?)
    }
}

/// Awaits `operation`, the store's future for `op` in `namespace`, in a
/// span below `trace`'s current one that names the namespace and the
/// operation, never a key or a value. Every key-value interface's
/// operations go through here.
pub(crate) async fn traced<T>(
    trace: &SpanScope,
    namespace: &Arc<str>,
    op: Op,
    operation: StoreFuture<T>,
) -> Result<T, StoreError> {
    let mut span = trace.child(op.span_name(), SpanKind::Client);
    if let Some(span) = &mut span {
        span.set_all([
            KeyValue::new("db.system.name", "hive.kv"),
            KeyValue::new("db.namespace", namespace.clone()),
            KeyValue::new("db.operation.name", op.name()),
        ]);
    }
    let result = operation.await;
    if let (Some(span), Err(err)) = (&mut span, &result) {
        span.fail(store_error_kind(err), err.to_string());
    }
    result
}

/// The store's operations, as spans name them.
#[derive(Clone, Copy)]
pub(crate) enum Op {
    Get,
    Set,
    Delete,
    ListKeys,
    Increment,
    CompareAndSwap,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Delete => "delete",
            Op::ListKeys => "list-keys",
            Op::Increment => "increment",
            Op::CompareAndSwap => "compare-and-swap",
        }
    }

    fn span_name(self) -> &'static str {
        match self {
            Op::Get => "kv get",
            Op::Set => "kv set",
            Op::Delete => "kv delete",
            Op::ListKeys => "kv list-keys",
            Op::Increment => "kv increment",
            Op::CompareAndSwap => "kv compare-and-swap",
        }
    }
}

/// `error.type` of a store failure.
pub fn store_error_kind(err: &StoreError) -> &'static str {
    match err {
        StoreError::InvalidKey(_) => "invalid-key",
        StoreError::ValueTooLarge(_) => "value-too-large",
        StoreError::NotANumber => "not-a-number",
        StoreError::Storage(_) => "storage",
    }
}

impl kv::Host for KvCtx {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.traced(Op::Get, self.store.get(&self.namespace, &key))
            .await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.traced(Op::Set, self.store.set(&self.namespace, &key, &value))
            .await
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        self.traced(Op::Delete, self.store.delete(&self.namespace, &key))
            .await
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, Error> {
        let limit = limit as usize;
        let list = self.store.list_keys(&self.namespace, &prefix, limit);
        self.traced(Op::ListKeys, list).await
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        let increment = self.store.increment(&self.namespace, &key, delta);
        self.traced(Op::Increment, increment).await
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
        self.traced(Op::CompareAndSwap, swap).await
    }
}

/// Links `hive:service/kv` to the [`KvCtx`] that `get` finds in `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvCtx,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, HasSelf<KvCtx>>(linker, get)
}
