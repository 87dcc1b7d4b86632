//! One connection to a Redis server, made on first use and kept healthy by
//! redis-rs's connection manager (which reconnects by itself). Made lazily
//! so a host can start while Redis is down: until it answers, every use is
//! a prompt error, never a hang, and the first use after it comes back
//! connects.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};
use tokio::sync::OnceCell;

/// How long making the connection may take.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// A connection to the Redis at one URL, made when first needed.
pub struct RedisLink {
    client: Client,
    url: String,
    connection: OnceCell<ConnectionManager>,
    /// Whether to check the server's persistence settings on connecting.
    check_durability: bool,
}

impl RedisLink {
    /// A link to `url` (`redis://` or `rediss://`, with a password as
    /// `redis://:password@host:port/db`); nothing is connected yet. With
    /// `check_durability`, the first connection warns when the server would
    /// not keep an acknowledged write through a crash.
    pub fn new(url: &str, check_durability: bool) -> anyhow::Result<RedisLink> {
        let client = Client::open(url)
            .map_err(|err| anyhow::anyhow!("invalid Redis URL {}: {err}", redact(url)))?;
        Ok(RedisLink {
            client,
            url: url.to_string(),
            connection: OnceCell::new(),
            check_durability,
        })
    }

    /// The URL without its password, for messages.
    pub fn name(&self) -> String {
        redact(&self.url)
    }

    /// The connection, made now if it was not yet.
    pub async fn get(&self) -> Result<ConnectionManager, RedisError> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let made = tokio::time::timeout(
                    CONNECT_DEADLINE,
                    ConnectionManager::new_with_config(self.client.clone(), connection_config()),
                )
                .await
                .map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "no answer from Redis at {} within {CONNECT_DEADLINE:?}",
                            self.name()
                        ),
                    ))
                })?;
                let mut connection = made?;
                if self.check_durability {
                    warn_unless_durable(&mut connection).await;
                }
                Ok::<_, RedisError>(connection)
            })
            .await?;
        Ok(connection.clone())
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
        let link = RedisLink::new(&format!("redis://127.0.0.1:{port}/0"), false).unwrap();
        let started = std::time::Instant::now();
        assert!(link.get().await.is_err());
        assert!(started.elapsed() <= CONNECT_DEADLINE + Duration::from_secs(1));
        assert!(RedisLink::new("not a url", false).is_err());
    }
}
