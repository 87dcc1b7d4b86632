//! The shared backend: Redis, so that many hosts see one set of data.
//!
//! Per namespace (service) two keys, under one hash tag so they share a
//! cluster slot: a hash of the values (`hive:kv:{<len>:<ns>}:data`, one
//! field per key) and a sorted set of the keys (`...:keys`, all at score 0,
//! so ordered byte by byte) for prefix listing. The namespace is written
//! with its length, so no two namespaces can produce the same names. Every
//! write keeps both keys in step inside one Lua script, which Redis runs
//! atomically: `increment` and `compare-and-swap` need no locks.
//!
//! "Acknowledged" means what the server's persistence makes it mean: with
//! `appendonly yes` and `appendfsync always` Redis writes and fsyncs its log
//! before it answers, so a write that returned `ok` survives `kill -9` of
//! Redis, of any host, and a power loss; with `everysec` up to a second can
//! be lost on a machine crash; without the AOF, everything since the last
//! snapshot. The host warns at start when the server is not set to
//! `always`.
//!
//! Connection loss never hangs a guest: every operation has a deadline,
//! the connection manager reconnects with a short backoff, and a failure is
//! a `storage` error (503 to an HTTP caller), logged and counted. After a
//! timeout the outcome of a write is unknown: it may have been applied.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisError, Script};

use super::durability::Durability;
use super::redis_link::RedisLink;
use super::{KvStore, StoreError, StoreFuture, check_key, check_value, refused};

/// How long one operation may take, reconnecting included.
const DEADLINE: Duration = Duration::from_secs(5);

/// A Redis-backed [`KvStore`].
pub struct RedisStore {
    link: RedisLink,
    scripts: Arc<Scripts>,
    /// Operations that failed for want of Redis, for the metrics.
    failures: Counter,
}

/// The Lua scripts that keep a namespace's two keys in step.
struct Scripts {
    set: Script,
    delete: Script,
    compare_and_swap: Script,
    increment: Script,
}

/// The two keys of `namespace`: its values and its sorted key index.
pub fn namespace_keys(namespace: &str) -> (String, String) {
    let tag = format!("hive:kv:{{{}:{namespace}}}", namespace.len());
    (format!("{tag}:data"), format!("{tag}:keys"))
}

impl RedisStore {
    /// A store on the Redis at `url`, counting failed operations in
    /// `failures`. It connects on first use, so a host starts while Redis
    /// is down and its kv calls fail (as `storage`) until Redis is back.
    /// `durability` says when a write counts as done.
    pub fn new(url: &str, durability: Durability, failures: Counter) -> anyhow::Result<RedisStore> {
        let scripts = Scripts {
            set: Script::new(include_str!("redis_lua/set.lua")),
            delete: Script::new(include_str!("redis_lua/delete.lua")),
            compare_and_swap: Script::new(include_str!("redis_lua/cas.lua")),
            increment: Script::new(include_str!("redis_lua/incr.lua")),
        };
        Ok(RedisStore {
            link: RedisLink::new(url, true, durability)?,
            scripts: Arc::new(scripts),
            failures,
        })
    }

    /// The link to Redis, for the event store on the same server.
    pub fn link(&self) -> RedisLink {
        self.link.clone()
    }

    /// What an operation's future needs: the link, the scripts and the
    /// failure counter, all cheap clones.
    fn parts(&self) -> (RedisLink, Arc<Scripts>, Counter) {
        (
            self.link.clone(),
            self.scripts.clone(),
            self.failures.clone(),
        )
    }
}

/// `operation`, bounded by [`DEADLINE`]: no answer in time is a failure
/// like any other.
async fn within_deadline<T>(
    operation: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    match tokio::time::timeout(DEADLINE, operation).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("Redis did not answer within {DEADLINE:?}"),
        ))),
    }
}

/// The link's connection, or the storage error its absence is.
async fn connected(link: &RedisLink, failures: &Counter) -> Result<ConnectionManager, StoreError> {
    link.get().await.map_err(|err| storage(failures, err))
}

/// The link's connection for writes.
async fn writer(link: &RedisLink, failures: &Counter) -> Result<ConnectionManager, StoreError> {
    link.writer().await.map_err(|err| storage(failures, err))
}

/// `value`, the outcome of a write made on `connection`, once the write is
/// acknowledged as the durability setting asks.
async fn acknowledged<T>(
    link: &RedisLink,
    connection: &mut ConnectionManager,
    failures: &Counter,
    value: T,
) -> Result<T, StoreError> {
    within_deadline(link.acknowledge(connection))
        .await
        .map_err(|err| storage(failures, err))?;
    Ok(value)
}

/// A failed operation as a storage error, logged and counted once.
fn storage(failures: &Counter, err: RedisError) -> StoreError {
    failures.inc();
    tracing::warn!("key-value store (Redis) failed: {err}");
    StoreError::Storage(format!("Redis: {err}"))
}

impl KvStore for RedisStore {
    fn get(&self, namespace: &str, key: &str) -> StoreFuture<Option<Vec<u8>>> {
        if let Err(err) = check_key(key) {
            return refused(err);
        }
        let (data, _) = namespace_keys(namespace);
        let key = key.to_owned();
        let (link, _, failures) = self.parts();
        Box::pin(async move {
            let mut connection = connected(&link, &failures).await?;
            within_deadline(connection.hget(data, key))
                .await
                .map_err(|err| storage(&failures, err))
        })
    }

    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> StoreFuture<()> {
        if let Err(err) = check_key(key).and_then(|()| check_value(value)) {
            return refused(err);
        }
        let (data, index) = namespace_keys(namespace);
        let (key, value) = (key.to_owned(), value.to_vec());
        let (link, scripts, failures) = self.parts();
        Box::pin(async move {
            let mut connection = writer(&link, &failures).await?;
            let mut invocation = scripts.set.key(&data);
            invocation.key(&index).arg(key).arg(value);
            within_deadline(invocation.invoke_async::<i64>(&mut connection))
                .await
                .map_err(|err| storage(&failures, err))?;
            acknowledged(&link, &mut connection, &failures, ()).await
        })
    }

    fn delete(&self, namespace: &str, key: &str) -> StoreFuture<bool> {
        if let Err(err) = check_key(key) {
            return refused(err);
        }
        let (data, index) = namespace_keys(namespace);
        let key = key.to_owned();
        let (link, scripts, failures) = self.parts();
        Box::pin(async move {
            let mut connection = writer(&link, &failures).await?;
            let mut invocation = scripts.delete.key(&data);
            invocation.key(&index).arg(key);
            let existed = within_deadline(invocation.invoke_async::<i64>(&mut connection))
                .await
                .map_err(|err| storage(&failures, err))?;
            acknowledged(&link, &mut connection, &failures, existed == 1).await
        })
    }

    fn list_keys(&self, namespace: &str, prefix: &str, limit: usize) -> StoreFuture<Vec<String>> {
        // Redis reads `LIMIT 0 0` as "no limit".
        if limit == 0 {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        let (_, index) = namespace_keys(namespace);
        // Every key starting with `prefix` lies in [prefix, prefix + 0xFF):
        // no UTF-8 text contains the byte 0xFF.
        let (min, max): (Vec<u8>, Vec<u8>) = if prefix.is_empty() {
            (b"-".to_vec(), b"+".to_vec())
        } else {
            let mut min = b"[".to_vec();
            min.extend_from_slice(prefix.as_bytes());
            let mut max = b"(".to_vec();
            max.extend_from_slice(prefix.as_bytes());
            max.push(0xff);
            (min, max)
        };
        let count = isize::try_from(limit).unwrap_or(isize::MAX);
        let (link, _, failures) = self.parts();
        Box::pin(async move {
            let mut connection = connected(&link, &failures).await?;
            within_deadline(connection.zrangebylex_limit(index, min, max, 0, count))
                .await
                .map_err(|err| storage(&failures, err))
        })
    }

    fn keys_after(&self, namespace: &str, after: &str, limit: usize) -> StoreFuture<Vec<String>> {
        if limit == 0 {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        let (_, index) = namespace_keys(namespace);
        let min = if after.is_empty() {
            b"-".to_vec()
        } else {
            let mut min = b"(".to_vec();
            min.extend_from_slice(after.as_bytes());
            min
        };
        let count = isize::try_from(limit).unwrap_or(isize::MAX);
        let (link, _, failures) = self.parts();
        Box::pin(async move {
            let mut connection = connected(&link, &failures).await?;
            within_deadline(connection.zrangebylex_limit(index, min, "+", 0, count))
                .await
                .map_err(|err| storage(&failures, err))
        })
    }

    fn increment(&self, namespace: &str, key: &str, delta: i64) -> StoreFuture<i64> {
        if let Err(err) = check_key(key) {
            return refused(err);
        }
        let (data, index) = namespace_keys(namespace);
        let key = key.to_owned();
        let (link, scripts, failures) = self.parts();
        Box::pin(async move {
            let mut connection = writer(&link, &failures).await?;
            let mut invocation = scripts.increment.key(&data);
            invocation.key(&index).arg(key).arg(delta.to_string());
            let text: String = within_deadline(invocation.invoke_async(&mut connection))
                .await
                .map_err(|err| match err.code() {
                    Some("HIVE_NAN") => StoreError::NotANumber,
                    Some("HIVE_OVERFLOW") => StoreError::Storage("increment overflows i64".into()),
                    _ => storage(&failures, err),
                })?;
            let value = text.parse().map_err(|_| {
                StoreError::Storage(format!("Redis answered {text:?} to an increment"))
            })?;
            acknowledged(&link, &mut connection, &failures, value).await
        })
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> StoreFuture<bool> {
        if let Err(err) = check_key(key).and_then(|()| check_value(new)) {
            return refused(err);
        }
        let (data, index) = namespace_keys(namespace);
        let (expect_present, expected) = match expected {
            None => ("0", Vec::new()),
            Some(value) => ("1", value.to_vec()),
        };
        let (key, new) = (key.to_owned(), new.to_vec());
        let (link, scripts, failures) = self.parts();
        Box::pin(async move {
            let mut connection = writer(&link, &failures).await?;
            let mut invocation = scripts.compare_and_swap.key(&data);
            invocation
                .key(&index)
                .arg(key)
                .arg(new)
                .arg(expect_present)
                .arg(expected);
            let swapped = within_deadline(invocation.invoke_async::<i64>(&mut connection))
                .await
                .map_err(|err| storage(&failures, err))?;
            acknowledged(&link, &mut connection, &failures, swapped == 1).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `redis-server` of this test's own on a free loopback port, with
    /// the durable settings Hive recommends; stopped when dropped.
    pub(crate) struct TestRedis {
        process: std::process::Child,
        _dir: tempfile::TempDir,
    }

    impl Drop for TestRedis {
        fn drop(&mut self) {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// A fresh server and a store on it.
    async fn store() -> (TestRedis, RedisStore) {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let process = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test: run scripts/test.sh, which installs it");
        let url = format!("redis://127.0.0.1:{port}/0");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let store = RedisStore::new(&url, Durability::Primary, Counter::default()).unwrap();
        loop {
            match store.link.get().await {
                Ok(_) => break,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => panic!("redis-server did not come up: {err:#}"),
            }
        }
        let server = TestRedis { process, _dir: dir };
        (server, store)
    }

    crate::kv::suite::kv_suite!(store().await);

    #[tokio::test]
    async fn a_dead_server_is_a_storage_error_within_the_deadline_and_counted() {
        let (server, kv) = store().await;
        kv.set("s", "k", b"v").await.unwrap();
        drop(server);
        let started = std::time::Instant::now();
        assert!(matches!(
            kv.get("s", "k").await,
            Err(StoreError::Storage(_))
        ));
        assert!(started.elapsed() <= DEADLINE + Duration::from_secs(1));
        assert!(kv.failures.get() >= 1);
    }

    #[test]
    fn namespaces_cannot_share_key_names() {
        // "a}:data" would otherwise let one namespace reach into another.
        assert_ne!(namespace_keys("ab").0, namespace_keys("a").0);
        assert_ne!(namespace_keys("a}:data").0, namespace_keys("a").0);
        assert_eq!(namespace_keys("users").0, "hive:kv:{5:users}:data");
    }
}
