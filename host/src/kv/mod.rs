//! Key-value storage behind one trait, so the embedded default can be joined
//! by other backends (Redis, say) without touching the `kv` interface.
//!
//! Every operation takes the namespace (the service's name) explicitly: the
//! host, not the guest, chooses it, which is what keeps services' data apart.

pub mod durability;
mod log;
pub mod redb;
pub mod redis;
pub mod redis_link;
pub mod redis_sentinel;
#[cfg(test)]
pub mod suite;

use futures::future::BoxFuture;
use thiserror::Error;

/// Longest key a service may use, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Largest value a service may store, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Empty or over [`MAX_KEY_BYTES`].
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Over [`MAX_VALUE_BYTES`]; carries the offending size.
    #[error("value of {0} bytes is over the limit of {MAX_VALUE_BYTES}")]
    ValueTooLarge(u64),
    /// `increment` found a value that is not a decimal integer.
    #[error("the stored value is not a decimal 64-bit integer")]
    NotANumber,
    /// The backend failed; nothing was changed.
    #[error("storage failure: {0}")]
    Storage(String),
}

/// What a store operation gives back: a future that owns all it needs, so
/// a guest's kv call awaits it without borrowing the store or holding a
/// thread (the embedded store's writes wait on its writer, Redis on the
/// network; the embedded store's reads run on the caller's task).
pub type StoreFuture<T> = BoxFuture<'static, Result<T, StoreError>>;

/// A durable, namespaced key-value store. Writes are durable when their
/// future resolves to `Ok`; `increment` and `compare_and_swap` are atomic.
/// Arguments are checked (and copied) when the method is called, so a bad
/// key fails however late the future is polled. A write may start then
/// too: dropping its future does not undo it, it only leaves its outcome
/// unknown.
pub trait KvStore: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, namespace: &str, key: &str) -> StoreFuture<Option<Vec<u8>>>;
    /// Stores `value` under `key`.
    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> StoreFuture<()>;
    /// Removes `key`; resolves to whether it existed.
    fn delete(&self, namespace: &str, key: &str) -> StoreFuture<bool>;
    /// Up to `limit` keys starting with `prefix`, in byte order.
    fn list_keys(&self, namespace: &str, prefix: &str, limit: usize) -> StoreFuture<Vec<String>>;
    /// Up to `limit` keys that sort after `after` (all keys when it is
    /// empty), in byte order: how a caller pages through a namespace.
    fn keys_after(&self, namespace: &str, after: &str, limit: usize) -> StoreFuture<Vec<String>>;
    /// Adds `delta` to the decimal integer under `key` (missing is 0).
    fn increment(&self, namespace: &str, key: &str, delta: i64) -> StoreFuture<i64>;
    /// Sets `key` to `new` if its value equals `expected` (`None`: absent).
    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> StoreFuture<bool>;
}

/// A future that fails at once with `err`: how a method reports arguments
/// it refused before any work started.
pub fn refused<T: Send + 'static>(err: StoreError) -> StoreFuture<T> {
    Box::pin(std::future::ready(Err(err)))
}

/// Checks the limits every backend shares.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidKey("keys must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidKey(format!(
            "key of {} bytes is over the limit of {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value against [`MAX_VALUE_BYTES`].
pub fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge(value.len() as u64));
    }
    Ok(())
}

/// A stored counter as a number: decimal text, maybe signed, maybe with
/// leading zeros, maybe surrounded by ASCII whitespace (the same reading
/// the Redis backend's script makes).
pub fn parse_decimal(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0B')
        .parse()
        .ok()
}
