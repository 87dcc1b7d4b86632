//! The connection to a Redis server, made on first use and kept healthy by
//! redis-rs's connection manager (which reconnects by itself). Made lazily
//! so a host can start while Redis is down: until it answers, every use is
//! a prompt error, never a hang, and the first use after it comes back
//! connects.
//!
//! Behind a `redis+sentinel://` URL the server is whichever the sentinels
//! name as primary: asked on connecting and then every
//! [`SENTINEL_POLL`], so after a failover the link moves to the promoted
//! replica by itself. With [`Durability::Replicated`] writes go over
//! connections of their own and each waits (`WAIT`) for a replica; Redis
//! holds a client's later commands while it waits, so reads keep a
//! connection that never waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

use super::durability::Durability;
use super::redis_sentinel::{SentinelUrl, Sentinels};

/// How long making the connection may take.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// How often the sentinels are asked whether the primary moved.
pub const SENTINEL_POLL: Duration = Duration::from_millis(500);

/// Connections for replicated writes, per server.
const REPLICATED_WRITERS: usize = 8;

/// How long a replicated write waits for a replica to confirm it.
const REPLICA_DEADLINE_MS: u64 = 1000;

/// A link to the Redis at one URL; cheap to clone, all clones share the
/// connections.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    source: Source,
    durability: Durability,
    /// Whether to check the server's persistence settings on connecting.
    check_durability: bool,
    current: ArcSwapOption<Connected>,
    /// One connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
}

/// Where the server is.
enum Source {
    /// At the URL's address.
    Fixed(Client),
    /// Wherever the sentinels say the primary is.
    Sentinel(Sentinels),
}

/// The connections to one server.
struct Connected {
    /// `host:port`, or the URL for a fixed server.
    address: String,
    main: ConnectionManager,
    /// The connections replicated writes (and their `WAIT`) use, taken in
    /// turn: Redis holds a connection's next command while it waits, so
    /// one would let a single write go to the replica at a time.
    writers: Vec<ConnectionManager>,
    next_writer: AtomicUsize,
}

impl RedisLink {
    /// A link to `url` (`redis://`, `rediss://`, with a password as
    /// `redis://:password@host:port/db`, or `redis+sentinel://`); nothing
    /// is connected yet. With `check_durability`, each new server connected
    /// to is checked, with a warning when it would not keep an acknowledged
    /// write through a crash.
    pub fn new(
        url: &str,
        check_durability: bool,
        durability: Durability,
    ) -> anyhow::Result<RedisLink> {
        let invalid = |err: &dyn std::fmt::Display| {
            anyhow::anyhow!("invalid Redis URL {}: {err}", redact(url))
        };
        let source = match SentinelUrl::parse(url).map_err(|err| invalid(&err))? {
            Some(sentinel) => {
                // The servers' URL must be valid too; checked once here.
                Client::open(sentinel.server_url("127.0.0.1:6379")).map_err(|err| invalid(&err))?;
                Source::Sentinel(Sentinels::new(sentinel))
            }
            None => Source::Fixed(Client::open(url).map_err(|err| invalid(&err))?),
        };
        Ok(RedisLink {
            inner: Arc::new(Inner {
                url: url.to_string(),
                source,
                durability,
                check_durability,
                current: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The URL without its password, for messages.
    pub fn name(&self) -> String {
        redact(&self.inner.url)
    }

    /// The connection for reads (and for writes unless replicated), made
    /// now if it was not yet.
    pub async fn get(&self) -> Result<ConnectionManager, RedisError> {
        Ok(self.connected().await?.main.clone())
    }

    /// The connection for a write to be followed by [`acknowledge`](Self::acknowledge).
    pub async fn writer(&self) -> Result<ConnectionManager, RedisError> {
        let connected = self.connected().await?;
        if connected.writers.is_empty() {
            return Ok(connected.main.clone());
        }
        let turn = connected.next_writer.fetch_add(1, Ordering::Relaxed);
        Ok(connected.writers[turn % connected.writers.len()].clone())
    }

    /// Completes a write made on `connection` (from [`writer`](Self::writer))
    /// as the durability setting asks: with `replicated`, once a replica
    /// has it, or an error when none confirms in time.
    pub async fn acknowledge(&self, connection: &mut ConnectionManager) -> Result<(), RedisError> {
        if self.inner.durability != Durability::Replicated {
            return Ok(());
        }
        let replicas: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(REPLICA_DEADLINE_MS)
            .query_async(connection)
            .await?;
        if replicas >= 1 {
            return Ok(());
        }
        Err(RedisError::from(std::io::Error::other(format!(
            "no replica confirmed the write within {REPLICA_DEADLINE_MS} ms \
             (kv-durability = \"replicated\"); the primary may still keep it"
        ))))
    }

    /// The current connections, made if there are none.
    async fn connected(&self) -> Result<Arc<Connected>, RedisError> {
        if let Some(connected) = self.inner.current.load_full() {
            return Ok(connected);
        }
        let _one_at_a_time = self.inner.connecting.lock().await;
        if let Some(connected) = self.inner.current.load_full() {
            return Ok(connected);
        }
        let connected = match &self.inner.source {
            Source::Fixed(client) => self.inner.connect(client.clone(), self.name()).await?,
            Source::Sentinel(sentinels) => {
                let address = sentinels.primary().await?;
                let connected = self.inner.connect_to_primary(sentinels, address).await?;
                self.follow_sentinels();
                connected
            }
        };
        self.inner.current.store(Some(connected.clone()));
        Ok(connected)
    }

    /// Starts the task that moves this link to a new primary after a
    /// failover; it ends when the last clone of the link is dropped. Called
    /// once: on the first connection, which is never undone.
    fn follow_sentinels(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(SENTINEL_POLL).await;
                let Some(inner) = weak.upgrade() else { return };
                let Source::Sentinel(sentinels) = &inner.source else {
                    return;
                };
                let moved = async {
                    let address = sentinels.primary().await?;
                    let current = inner.current.load_full();
                    if current.as_ref().is_some_and(|c| c.address == address) {
                        return Ok(None);
                    }
                    let _one_at_a_time = inner.connecting.lock().await;
                    let connected = inner.connect_to_primary(sentinels, address).await?;
                    let was = current.map(|c| c.address.clone());
                    inner.current.store(Some(connected.clone()));
                    Ok::<_, RedisError>(Some((was, connected.address.clone())))
                };
                match moved.await {
                    Ok(Some((was, now))) => {
                        failing = false;
                        tracing::warn!(
                            "Redis primary of {:?} is now {now} (was {}), as the sentinels say",
                            sentinels.url().service,
                            was.as_deref().unwrap_or("none")
                        );
                    }
                    Ok(None) if failing => {
                        failing = false;
                        tracing::info!("the sentinels answer again");
                    }
                    Ok(None) => {}
                    Err(err) if !failing => {
                        failing = true;
                        tracing::warn!("following the Redis primary: {err}");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

impl Inner {
    /// Connects to the server `client` names (`address` for messages).
    async fn connect(&self, client: Client, address: String) -> Result<Arc<Connected>, RedisError> {
        let manager = || async {
            tokio::time::timeout(
                CONNECT_DEADLINE,
                ConnectionManager::new_with_config(client.clone(), connection_config()),
            )
            .await
            .map_err(|_| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer from Redis at {address} within {CONNECT_DEADLINE:?}"),
                ))
            })?
        };
        let mut main = manager().await?;
        let mut writers = Vec::new();
        if self.durability == Durability::Replicated {
            for _ in 0..REPLICATED_WRITERS {
                writers.push(manager().await?);
            }
        }
        if self.check_durability {
            warn_unless_durable(&mut main).await;
        }
        Ok(Arc::new(Connected {
            address: address.clone(),
            main,
            writers,
            next_writer: AtomicUsize::new(0),
        }))
    }

    /// Connects to the server at `address` that the sentinels named, once it
    /// confirms it is a primary (a sentinel may be a moment behind).
    async fn connect_to_primary(
        &self,
        sentinels: &Sentinels,
        address: String,
    ) -> Result<Arc<Connected>, RedisError> {
        let client = Client::open(sentinels.url().server_url(&address))?;
        let connected = self.connect(client, address.clone()).await?;
        let mut main = connected.main.clone();
        let role: Vec<redis::Value> =
            tokio::time::timeout(CONNECT_DEADLINE, redis::cmd("ROLE").query_async(&mut main))
                .await
                .map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no ROLE from {address}"),
                    ))
                })??;
        let role = role
            .first()
            .and_then(|role| redis::from_redis_value_ref::<String>(role).ok());
        match role.as_deref() {
            Some("master") => Ok(connected),
            _ => Err(RedisError::from(std::io::Error::other(format!(
                "the sentinels name {address} as primary but it is not one (yet)"
            )))),
        }
    }
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

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Says so when the server would not keep an acknowledged write through a
/// crash (a managed Redis may refuse `CONFIG`; that is only logged).
async fn warn_unless_durable(connection: &mut ConnectionManager) {
    let asked = async {
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
    };
    match tokio::time::timeout(CONNECT_DEADLINE, asked).await {
        Ok(Ok((Some(appendonly), Some(fsync)))) if appendonly == "yes" && fsync == "always" => {}
        Ok(Ok((appendonly, fsync))) => tracing::warn!(
            "Redis has appendonly={} appendfsync={}: an acknowledged write can be lost in a \
             crash; run it with --appendonly yes --appendfsync always",
            appendonly.unwrap_or_default(),
            fsync.unwrap_or_default()
        ),
        Ok(Err(err)) => tracing::info!("could not read Redis's persistence settings: {err}"),
        Err(_) => tracing::info!("Redis did not say its persistence settings in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(
            redact("redis://:s3cret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[tokio::test]
    async fn a_link_to_a_dead_server_fails_at_once_and_is_made_later() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let link = RedisLink::new(
            &format!("redis://127.0.0.1:{port}/0"),
            false,
            Durability::Primary,
        )
        .unwrap();
        let started = std::time::Instant::now();
        assert!(link.get().await.is_err());
        assert!(started.elapsed() <= CONNECT_DEADLINE + Duration::from_secs(1));
        assert!(RedisLink::new("not a url", false, Durability::Primary).is_err());
    }
}
