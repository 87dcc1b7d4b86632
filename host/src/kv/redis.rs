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

use std::time::Duration;

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, RedisError, Script};

use super::{KvStore, StoreError, check_key, check_value};

/// How long one operation may take, reconnecting included.
const DEADLINE: Duration = Duration::from_secs(5);

/// A Redis-backed [`KvStore`].
pub struct RedisStore {
    connection: ConnectionManager,
    runtime: tokio::runtime::Handle,
    set: Script,
    delete: Script,
    compare_and_swap: Script,
    increment: Script,
    /// Operations that failed for want of Redis, for the metrics.
    failures: Counter,
}

/// The two keys of `namespace`: its values and its sorted key index.
fn keys(namespace: &str) -> (String, String) {
    let tag = format!("hive:kv:{{{}:{namespace}}}", namespace.len());
    (format!("{tag}:data"), format!("{tag}:keys"))
}

/// How a connection to Redis is kept: a short connect timeout, a generous
/// response timeout (an fsync'ed 1 MiB value under load takes a while), and
/// few, quick reconnect attempts, so a dead server is reported in seconds.
pub fn connection_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(4)))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_exponent_base(2.0)
}

/// Opens a connection manager for `url` (`redis://` or `rediss://`, with a
/// password as `redis://:password@host:port/db`).
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = Client::open(url).with_context(|| format!("invalid Redis URL {}", redact(url)))?;
    tokio::time::timeout(
        DEADLINE,
        ConnectionManager::new_with_config(client, connection_config()),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "no answer from Redis at {} within {DEADLINE:?}",
            redact(url)
        )
    })?
    .with_context(|| format!("connecting to Redis at {}", redact(url)))
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

impl RedisStore {
    /// Connects to `url`, counting failed operations in `failures`. Must
    /// be called from a thread that may block inside the Tokio runtime (the
    /// blocking pool), as the host's start is.
    pub fn open(url: &str, failures: Counter) -> anyhow::Result<RedisStore> {
        let runtime = tokio::runtime::Handle::try_current()
            .context("the Redis store needs the async runtime")?;
        let mut connection = runtime.block_on(connect(url))?;
        warn_unless_durable(&runtime, &mut connection);
        Ok(RedisStore {
            connection,
            runtime,
            set: Script::new(include_str!("redis_lua/set.lua")),
            delete: Script::new(include_str!("redis_lua/delete.lua")),
            compare_and_swap: Script::new(include_str!("redis_lua/cas.lua")),
            increment: Script::new(include_str!("redis_lua/incr.lua")),
            failures,
        })
    }

    /// Runs `operation` to completion within [`DEADLINE`], from the
    /// blocking pool.
    fn run<T>(
        &self,
        operation: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        // The timer is made inside the runtime: the calling thread may not
        // be one of its own.
        let bounded = async { tokio::time::timeout(DEADLINE, operation).await };
        match self.runtime.block_on(bounded) {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("Redis did not answer within {DEADLINE:?}"),
            ))),
        }
    }

    /// A failed operation as a storage error, logged and counted once.
    fn storage(&self, err: RedisError) -> StoreError {
        self.failures.inc();
        tracing::warn!("key-value store (Redis) failed: {err}");
        StoreError::Storage(format!("Redis: {err}"))
    }
}

/// Says so at start when the server would not keep an acknowledged write
/// through a crash (a managed Redis may refuse `CONFIG`; that is only
/// logged).
fn warn_unless_durable(runtime: &tokio::runtime::Handle, connection: &mut ConnectionManager) {
    let asked = runtime.block_on(async {
        let appendonly: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(connection)
            .await?;
        let fsync: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query_async(connection)
            .await?;
        Ok::<_, RedisError>((appendonly.get(1).cloned(), fsync.get(1).cloned()))
    });
    match asked {
        Ok((Some(appendonly), Some(fsync))) if appendonly == "yes" && fsync == "always" => {}
        Ok((appendonly, fsync)) => tracing::warn!(
            "Redis has appendonly={} appendfsync={}: an acknowledged write can be lost in a \
             crash; run it with --appendonly yes --appendfsync always",
            appendonly.unwrap_or_default(),
            fsync.unwrap_or_default()
        ),
        Err(err) => tracing::info!("could not read Redis's persistence settings: {err}"),
    }
}

impl KvStore for RedisStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let (data, _) = keys(namespace);
        let mut connection = self.connection.clone();
        self.run(async move { connection.hget(data, key).await })
            .map_err(|err| self.storage(err))
    }

    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        check_value(value)?;
        let (data, index) = keys(namespace);
        let mut connection = self.connection.clone();
        let script = &self.set;
        self.run(async move {
            let mut invocation = script.key(&data);
            invocation.key(&index).arg(key).arg(value);
            invocation.invoke_async::<i64>(&mut connection).await
        })
        .map(|_| ())
        .map_err(|err| self.storage(err))
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let (data, index) = keys(namespace);
        let mut connection = self.connection.clone();
        let script = &self.delete;
        self.run(async move {
            let mut invocation = script.key(&data);
            invocation.key(&index).arg(key);
            invocation.invoke_async::<i64>(&mut connection).await
        })
        .map(|existed| existed == 1)
        .map_err(|err| self.storage(err))
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        // Redis reads `LIMIT 0 0` as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (_, index) = keys(namespace);
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
        let mut connection = self.connection.clone();
        self.run(async move {
            connection
                .zrangebylex_limit(index, min, max, 0, count)
                .await
        })
        .map_err(|err| self.storage(err))
    }

    fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        check_key(key)?;
        let (data, index) = keys(namespace);
        let mut connection = self.connection.clone();
        let script = &self.increment;
        let text: String = self
            .run(async move {
                let mut invocation = script.key(&data);
                invocation.key(&index).arg(key).arg(delta.to_string());
                invocation.invoke_async(&mut connection).await
            })
            .map_err(|err| match err.code() {
                Some("HIVE_NAN") => StoreError::NotANumber,
                Some("HIVE_OVERFLOW") => StoreError::Storage("increment overflows i64".into()),
                _ => self.storage(err),
            })?;
        text.parse()
            .map_err(|_| StoreError::Storage(format!("Redis answered {text:?} to an increment")))
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        check_key(key)?;
        check_value(new)?;
        let (data, index) = keys(namespace);
        let (expect_present, expected) = match expected {
            None => ("0", &b""[..]),
            Some(value) => ("1", value),
        };
        let mut connection = self.connection.clone();
        let script = &self.compare_and_swap;
        self.run(async move {
            let mut invocation = script.key(&data);
            invocation
                .key(&index)
                .arg(key)
                .arg(new)
                .arg(expect_present)
                .arg(expected);
            invocation.invoke_async::<i64>(&mut connection).await
        })
        .map(|swapped| swapped == 1)
        .map_err(|err| self.storage(err))
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
        _runtime: tokio::runtime::Runtime,
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
    fn store() -> (TestRedis, RedisStore) {
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
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let url = format!("redis://127.0.0.1:{port}/0");
        let _entered = runtime.enter();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let store = loop {
            match RedisStore::open(&url, Counter::default()) {
                Ok(store) => break store,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(err) => panic!("redis-server did not come up: {err:#}"),
            }
        };
        let server = TestRedis {
            process,
            _dir: dir,
            _runtime: runtime,
        };
        (server, store)
    }

    crate::kv::suite::kv_suite!(store());

    #[test]
    fn a_dead_server_is_a_storage_error_within_the_deadline_and_counted() {
        let (server, kv) = store();
        kv.set("s", "k", b"v").unwrap();
        drop(server);
        let started = std::time::Instant::now();
        assert!(matches!(kv.get("s", "k"), Err(StoreError::Storage(_))));
        assert!(started.elapsed() <= DEADLINE + Duration::from_secs(1));
        assert!(kv.failures.get() >= 1);
    }

    #[test]
    fn namespaces_cannot_share_key_names() {
        // "a}:data" would otherwise let one namespace reach into another.
        assert_ne!(keys("ab").0, keys("a").0);
        assert_ne!(keys("a}:data").0, keys("a").0);
        assert_eq!(keys("users").0, "hive:kv:{5:users}:data");
    }

    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(
            redact("redis://:s3cret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
