//! Key-value storage behind one trait, so the embedded default can be joined
//! by other backends (Redis, say) without touching the `kv` interface.
//!
//! Every operation takes the namespace (the service's name) explicitly: the
//! host, not the guest, chooses it, which is what keeps services' data apart.

pub mod redb;
pub mod redis;
#[cfg(test)]
pub mod suite;

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

/// A durable, namespaced key-value store. Writes are durable when they
/// return `Ok`; `increment` and `compare_and_swap` are atomic.
pub trait KvStore: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` under `key`.
    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; returns whether it existed.
    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError>;
    /// Up to `limit` keys starting with `prefix`, in byte order.
    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Adds `delta` to the decimal integer under `key` (missing is 0).
    fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Sets `key` to `new` if its value equals `expected` (`None`: absent).
    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError>;
    /// The embedded store, if this is it: its writes can be awaited
    /// without holding a thread while they wait for their commit. Other
    /// backends run on the blocking pool.
    fn embedded(&self) -> Option<&redb::RedbStore> {
        None
    }
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
