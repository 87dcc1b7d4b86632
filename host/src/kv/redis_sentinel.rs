//! Finding the Redis primary through Sentinel.
//!
//! A `redis+sentinel://[user:password@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`
//! URL names the sentinels that watch one primary (`SERVICE`, the name in
//! their `sentinel monitor` line). The host asks them which server is the
//! primary now, the first sentinel that answers deciding; the password is
//! the Redis servers', the sentinels are asked without one.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Client, RedisError};
use tokio::sync::Mutex;

/// The scheme of a Sentinel URL.
pub const SCHEME: &str = "redis+sentinel://";

/// The port a sentinel listens on unless told otherwise.
const DEFAULT_PORT: u16 = 26379;

/// How long one sentinel may take to connect or answer before the next is
/// asked.
const ASK_DEADLINE: Duration = Duration::from_secs(1);

/// A parsed Sentinel URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// `host:port` of each sentinel, in the order given.
    pub sentinels: Vec<String>,
    /// The monitored primary's name.
    pub service: String,
    pub db: u32,
    /// `user:password` (or `:password`) as written, still percent-encoded.
    pub credentials: Option<String>,
}

impl SentinelUrl {
    /// `url` if it is a Sentinel URL, `Ok(None)` if it is another kind.
    pub fn parse(url: &str) -> anyhow::Result<Option<SentinelUrl>> {
        let Some(rest) = url.strip_prefix(SCHEME) else {
            return Ok(None);
        };
        let shape = "expected redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]";
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("no service name: {shape}"))?;
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials.to_string()), hosts),
            None => (None, authority),
        };
        let mut sentinels = Vec::new();
        for host in hosts.split(',') {
            sentinels.push(host_port(host).ok_or_else(|| {
                anyhow::anyhow!("sentinel address {host:?} is not HOST[:PORT]: {shape}")
            })?);
        }
        let mut parts = path.trim_end_matches('/').split('/');
        let service = parts.next().unwrap_or_default();
        if service.is_empty() {
            anyhow::bail!("no service name: {shape}");
        }
        let db = match parts.next() {
            None => 0,
            Some(db) => db
                .parse()
                .map_err(|_| anyhow::anyhow!("database {db:?} is not a number: {shape}"))?,
        };
        if parts.next().is_some() {
            anyhow::bail!("too many path parts: {shape}");
        }
        Ok(Some(SentinelUrl {
            sentinels,
            service: service.to_string(),
            db,
            credentials,
        }))
    }

    /// A plain `redis://` URL for the server at `address`, with this URL's
    /// credentials and database.
    pub fn server_url(&self, address: &str) -> String {
        match &self.credentials {
            Some(credentials) => format!("redis://{credentials}@{address}/{}", self.db),
            None => format!("redis://{address}/{}", self.db),
        }
    }
}

/// `host[:port]` (IPv6 in brackets) as `host:port`.
fn host_port(text: &str) -> Option<String> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return None,
        };
        (format!("[{host}]"), port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().ok()?),
            None => (text.to_string(), DEFAULT_PORT),
        }
    };
    (!host.is_empty()).then(|| format!("{host}:{port}"))
}

/// The sentinels of one URL, each with a connection kept between questions.
pub struct Sentinels {
    url: SentinelUrl,
    connections: Mutex<Vec<Option<MultiplexedConnection>>>,
}

impl Sentinels {
    pub fn new(url: SentinelUrl) -> Sentinels {
        let connections = Mutex::new(vec![None; url.sentinels.len()]);
        Sentinels { url, connections }
    }

    pub fn url(&self) -> &SentinelUrl {
        &self.url
    }

    /// `host:port` of the primary as the first sentinel that answers names
    /// it; an error naming every sentinel's failure when none can.
    pub async fn primary(&self) -> Result<String, RedisError> {
        let mut connections = self.connections.lock().await;
        let mut failures = Vec::new();
        for (address, cached) in self.url.sentinels.iter().zip(connections.iter_mut()) {
            match ask(address, cached, &self.url.service).await {
                Ok(Some(primary)) => return Ok(primary),
                Ok(None) => {
                    failures.push(format!("{address} does not know {:?}", self.url.service))
                }
                Err(err) => failures.push(format!("{address}: {err}")),
            }
        }
        Err(RedisError::from(std::io::Error::other(format!(
            "no sentinel named the primary of {:?} ({})",
            self.url.service,
            failures.join("; ")
        ))))
    }
}

/// Asks the sentinel at `address` for the primary of `service`.
async fn ask(
    address: &str,
    cached: &mut Option<MultiplexedConnection>,
    service: &str,
) -> Result<Option<String>, RedisError> {
    let timed_out = || {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {ASK_DEADLINE:?}"),
        ))
    };
    let mut connection = match cached.take() {
        Some(connection) => connection,
        None => {
            let client = Client::open(format!("redis://{address}"))?;
            tokio::time::timeout(ASK_DEADLINE, client.get_multiplexed_async_connection())
                .await
                .map_err(|_| timed_out())??
        }
    };
    let answer: Option<(String, u16)> = tokio::time::timeout(
        ASK_DEADLINE,
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(service)
            .query_async(&mut connection),
    )
    .await
    .map_err(|_| timed_out())??;
    // Kept only after an answer: a failed connection is made anew.
    *cached = Some(connection);
    Ok(answer.map(|(host, port)| match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_are_read_and_checked() {
        let url = SentinelUrl::parse(
            "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380,[::1]:26381/mymaster/2",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            url.sentinels,
            ["127.0.0.1:26379", "127.0.0.1:26380", "[::1]:26381"]
        );
        assert_eq!(url.service, "mymaster");
        assert_eq!(url.db, 2);
        assert_eq!(url.server_url("10.0.0.5:6379"), "redis://10.0.0.5:6379/2");

        let url = SentinelUrl::parse("redis+sentinel://:s3cret@sentinel/shop")
            .unwrap()
            .unwrap();
        assert_eq!(url.sentinels, ["sentinel:26379"]);
        assert_eq!(url.db, 0);
        assert_eq!(url.server_url("h:1"), "redis://:s3cret@h:1/0");

        assert_eq!(SentinelUrl::parse("redis://127.0.0.1/0").unwrap(), None);
        for bad in [
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel://127.0.0.1:26379/",
            "redis+sentinel://127.0.0.1:x/mymaster",
            "redis+sentinel://a,,b/mymaster",
            "redis+sentinel://127.0.0.1/mymaster/zero",
            "redis+sentinel://127.0.0.1/mymaster/0/extra",
        ] {
            assert!(SentinelUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
