//! Topics and queues in Redis, shared by every host of a cluster: a
//! message published through one host is handled on any.
//!
//! Per topic `T` (its keys carry `{T}` as their hash tag):
//! - `hive:ev:{T}:s`, a stream with one entry per message (field `m`: the
//!   [`encoding`] of header and payload), and one consumer group per Hive
//!   group, created at the stream's end when the group subscribes;
//! - `hive:ev:{T}:delayed`, a sorted set of messages by due time, moved
//!   into the stream when due;
//! - `hive:ev:{T}:dedup:<key>`, the id first published with a dedup key,
//!   expiring with the window.
//!
//! Per group `G` of the topic (`hive:ev:{T}:g:G:*`): `retry` (stream ids
//! by due time), `inflight` (retries leased, by lease end), `held` (the
//! message of each delivery that left the stream's pending list for a
//! retry or the dead-letter queue), `attempts`, `dead` (reason, attempts,
//! when) and `stats`. `hive:ev:groups` lists every `T\x1fG`.
//!
//! A first delivery is read with `XREADGROUP` and stays in the group's
//! pending list until settled; a host that died leaves its entries there,
//! and after the lease they are taken over with `XAUTOCLAIM`. Settling,
//! publishing (alone, with kv writes, or for a schedule's tick) and taking
//! due retries are Lua scripts, so each is one atomic step. Scripts name
//! keys they compute (a standalone or Sentinel-managed Redis; not Redis
//! Cluster).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoGroupsReply,
    StreamPendingCountReply, StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, RedisError, Script, Value};
use tokio::sync::Notify;

use super::encoding::{decode, encode};
use super::{
    DEDUP_WINDOW, DeadLetter, Delivery, EventStore, GroupStats, Header, Message, Settle, TxOp,
    check_message, now_ms, preview,
};
use crate::kv::redis::namespace_keys;
use crate::kv::redis_link::RedisLink;
use crate::kv::{StoreError, StoreFuture, check_key, check_value, refused};

/// How long one operation may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// Every group, as `topic \x1f group`.
const GROUPS: &str = "hive:ev:groups";

fn topic_key(topic: &str, suffix: &str) -> String {
    format!("hive:ev:{{{topic}}}:{suffix}")
}

fn group_key(topic: &str, group: &str, suffix: &str) -> String {
    format!("hive:ev:{{{topic}}}:g:{group}:{suffix}")
}

/// The scripts, each with the shared functions before it.
struct Scripts {
    publish: Script,
    commit: Script,
    fire: Script,
    take: Script,
    settle: Script,
    replay: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_common =
            |body: &str| Script::new(&format!("{}\n{body}", include_str!("redis_lua/common.lua")));
        Scripts {
            publish: with_common(include_str!("redis_lua/publish.lua")),
            commit: with_common(include_str!("redis_lua/commit.lua")),
            fire: with_common(include_str!("redis_lua/fire.lua")),
            take: with_common(include_str!("redis_lua/take.lua")),
            settle: with_common(include_str!("redis_lua/settle.lua")),
            replay: with_common(include_str!("redis_lua/replay.lua")),
        }
    }
}

/// The Redis [`EventStore`].
pub struct RedisQueue {
    link: RedisLink,
    scripts: Arc<Scripts>,
    /// This host's name as a consumer of the groups' streams.
    consumer: String,
    failures: Counter,
    /// Woken when this host publishes, so its own dispatchers start at once
    /// (other hosts' publishes are found by polling).
    published: Arc<Notify>,
}

/// `operation`, bounded by [`DEADLINE`].
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

fn storage(failures: &Counter, err: RedisError) -> StoreError {
    failures.inc();
    tracing::warn!("event store (Redis) failed: {err}");
    StoreError::Storage(format!("Redis: {err}"))
}

/// The message of a stream entry.
fn entry_message(entry: &StreamId) -> Option<(Header, Vec<u8>)> {
    let bytes: Vec<u8> = entry.get("m")?;
    decode(&bytes)
}

impl RedisQueue {
    /// A queue on `link`, reading as the consumer `consumer` (unique to
    /// this host's process).
    pub fn new(link: RedisLink, consumer: String, failures: Counter) -> RedisQueue {
        RedisQueue {
            link,
            scripts: Arc::new(Scripts::new()),
            consumer,
            failures,
            published: Arc::new(Notify::new()),
        }
    }

    fn parts(&self) -> Parts {
        Parts {
            link: self.link.clone(),
            scripts: self.scripts.clone(),
            failures: self.failures.clone(),
            consumer: self.consumer.clone(),
            published: self.published.clone(),
        }
    }
}

/// What an operation's future needs, all cheap clones.
struct Parts {
    link: RedisLink,
    scripts: Arc<Scripts>,
    failures: Counter,
    consumer: String,
    published: Arc<Notify>,
}

impl Parts {
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.link
            .get()
            .await
            .map_err(|err| storage(&self.failures, err))
    }

    async fn writer(&self) -> Result<ConnectionManager, StoreError> {
        self.link
            .writer()
            .await
            .map_err(|err| storage(&self.failures, err))
    }

    /// Waits until a write made on `connection` (from [`writer`](Self::writer))
    /// is as durable as the link's setting asks.
    async fn acknowledge(&self, connection: &mut ConnectionManager) -> Result<(), StoreError> {
        within_deadline(self.link.acknowledge(connection))
            .await
            .map_err(|err| self.fail(err))
    }

    fn fail(&self, err: RedisError) -> StoreError {
        storage(&self.failures, err)
    }
}

/// The publish arguments of one message: id, header, payload, delay ms,
/// dedup key.
fn publish_args(message: &Message) -> (String, Vec<u8>, Vec<u8>, u64, String) {
    let header = Header::new(message);
    let header_json = serde_json::to_vec(&header).unwrap_or_default();
    (
        header.id,
        header_json,
        message.payload.clone(),
        message.delay.map_or(0, |d| d.as_millis() as u64),
        message.dedup_key.clone().unwrap_or_default(),
    )
}

impl EventStore for RedisQueue {
    fn publish(&self, topic: &str, message: Message) -> StoreFuture<String> {
        if let Err(err) = check_message(&message) {
            return refused(err);
        }
        let topic = topic.to_string();
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.writer().await?;
            let (id, header, payload, delay, dedup) = publish_args(&message);
            let mut invocation = parts.scripts.publish.prepare_invoke();
            invocation
                .arg(&topic)
                .arg(&id)
                .arg(header)
                .arg(payload)
                .arg(delay)
                .arg(dedup)
                .arg(now_ms())
                .arg(DEDUP_WINDOW.as_millis() as u64);
            let id: String = within_deadline(invocation.invoke_async(&mut connection))
                .await
                .map_err(|err| parts.fail(err))?;
            parts.published.notify_waiters();
            parts.acknowledge(&mut connection).await?;
            Ok(id)
        })
    }

    fn commit(&self, namespace: &str, ops: Vec<TxOp>) -> StoreFuture<Vec<String>> {
        for op in &ops {
            let checked = match op {
                TxOp::Set(key, value) => check_key(key).and_then(|()| check_value(value)),
                TxOp::Delete(key) => check_key(key),
                TxOp::Publish(_, message) => check_message(message),
            };
            if let Err(err) = checked {
                return refused(err);
            }
        }
        let (data, index) = namespace_keys(namespace);
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.writer().await?;
            let mut invocation = parts.scripts.commit.key(&data);
            invocation
                .key(&index)
                .arg(now_ms())
                .arg(DEDUP_WINDOW.as_millis() as u64);
            for op in &ops {
                match op {
                    TxOp::Set(key, value) => {
                        invocation.arg("set").arg(key).arg(value.as_slice());
                    }
                    TxOp::Delete(key) => {
                        invocation.arg("del").arg(key);
                    }
                    TxOp::Publish(topic, message) => {
                        let (id, header, payload, delay, dedup) = publish_args(message);
                        invocation
                            .arg("pub")
                            .arg(topic)
                            .arg(id)
                            .arg(header)
                            .arg(payload)
                            .arg(delay)
                            .arg(dedup);
                    }
                }
            }
            let ids: Vec<String> = within_deadline(invocation.invoke_async(&mut connection))
                .await
                .map_err(|err| parts.fail(err))?;
            parts.published.notify_waiters();
            parts.acknowledge(&mut connection).await?;
            Ok(ids)
        })
    }

    fn subscribe(&self, topic: &str, group: &str) -> StoreFuture<()> {
        let (topic, group) = (topic.to_string(), group.to_string());
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.connection().await?;
            let created: Result<(), RedisError> = within_deadline(
                connection.xgroup_create_mkstream(topic_key(&topic, "s"), &group, "$"),
            )
            .await;
            match created {
                Ok(()) => {}
                Err(err) if err.code() == Some("BUSYGROUP") => {}
                Err(err) => return Err(parts.fail(err)),
            }
            let _: () = within_deadline(connection.sadd(GROUPS, format!("{topic}\x1f{group}")))
                .await
                .map_err(|err| parts.fail(err))?;
            Ok(())
        })
    }

    fn lease(
        &self,
        topic: &str,
        group: &str,
        max: usize,
        lease: Duration,
    ) -> StoreFuture<Vec<Delivery>> {
        let (topic, group) = (topic.to_string(), group.to_string());
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.connection().await?;
            let mut taken = Vec::new();
            let lease_ms = lease.as_millis() as u64;
            // Due retries (and the housekeeping before them).
            let mut invocation = parts.scripts.take.prepare_invoke();
            invocation
                .arg(&topic)
                .arg(&group)
                .arg(now_ms())
                .arg(lease_ms)
                .arg(max);
            let retries: Vec<Value> = within_deadline(invocation.invoke_async(&mut connection))
                .await
                .map_err(|err| parts.fail(err))?;
            for triple in retries.chunks(3) {
                let [id, attempt, message] = triple else {
                    continue;
                };
                let id: String =
                    redis::from_redis_value_ref(id).map_err(|e| parts.fail(e.into()))?;
                let attempt: u32 = redis::from_redis_value_ref(attempt).unwrap_or(1);
                let message: Vec<u8> = redis::from_redis_value_ref(message).unwrap_or_default();
                if let Some((header, payload)) = decode(&message) {
                    taken.push(Delivery {
                        topic: topic.clone(),
                        group: group.clone(),
                        header,
                        payload,
                        attempt,
                        token: format!("r:{id}"),
                    });
                }
            }
            let stream = topic_key(&topic, "s");
            // First deliveries a host that died was holding.
            if taken.len() < max {
                let options = StreamAutoClaimOptions::default().count(max - taken.len());
                let claimed: StreamAutoClaimReply = within_deadline(connection.xautoclaim_options(
                    &stream,
                    &group,
                    &parts.consumer,
                    lease_ms,
                    "0-0",
                    options,
                ))
                .await
                .or_else(|err| match err.code() {
                    // The stream or group is gone (not subscribed yet).
                    Some("NOGROUP") => Ok(StreamAutoClaimReply::default()),
                    _ => Err(err),
                })
                .map_err(|err| parts.fail(err))?;
                for entry in &claimed.claimed {
                    let pending: StreamPendingCountReply = within_deadline(
                        connection.xpending_count(&stream, &group, &entry.id, &entry.id, 1),
                    )
                    .await
                    .map_err(|err| parts.fail(err))?;
                    let attempt = pending.ids.first().map_or(2, |p| p.times_delivered as u32);
                    if let Some((header, payload)) = entry_message(entry) {
                        taken.push(Delivery {
                            topic: topic.clone(),
                            group: group.clone(),
                            header,
                            payload,
                            attempt,
                            token: format!("p:{}", entry.id),
                        });
                    }
                }
            }
            // New messages.
            if taken.len() < max {
                let options = StreamReadOptions::default()
                    .group(&group, &parts.consumer)
                    .count(max - taken.len());
                let read: Result<StreamReadReply, RedisError> =
                    within_deadline(connection.xread_options(&[&stream], &[">"], &options)).await;
                let read = match read {
                    Ok(read) => read,
                    Err(err) if err.code() == Some("NOGROUP") => StreamReadReply::default(),
                    Err(err) => return Err(parts.fail(err)),
                };
                for entry in read.keys.iter().flat_map(|key| &key.ids) {
                    match entry_message(entry) {
                        Some((header, payload)) => taken.push(Delivery {
                            topic: topic.clone(),
                            group: group.clone(),
                            header,
                            payload,
                            attempt: 1,
                            token: format!("p:{}", entry.id),
                        }),
                        None => {
                            // Not ours to read: let it go rather than redeliver it forever.
                            let _: Result<i64, _> =
                                connection.xack(&stream, &group, &[&entry.id]).await;
                        }
                    }
                }
            }
            Ok(taken)
        })
    }

    fn settle(&self, delivery: &Delivery, outcome: Settle) -> StoreFuture<()> {
        let Some((kind, id)) = delivery.token.split_once(':') else {
            return refused(StoreError::Storage(format!(
                "not a Redis delivery: {}",
                delivery.token
            )));
        };
        let (name, delay, reason) = match &outcome {
            Settle::Ack => ("ack", 0, String::new()),
            Settle::Retry { delay, reason } => ("retry", delay.as_millis() as u64, reason.clone()),
            Settle::Dead { reason } => ("dead", 0, reason.clone()),
        };
        let message = match outcome {
            Settle::Ack => Vec::new(),
            _ => encode(&delivery.header, &delivery.payload),
        };
        let (topic, group) = (delivery.topic.clone(), delivery.group.clone());
        let (kind, id, attempt) = (kind.to_string(), id.to_string(), delivery.attempt);
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.connection().await?;
            let mut invocation = parts.scripts.settle.prepare_invoke();
            invocation
                .arg(topic)
                .arg(group)
                .arg(kind)
                .arg(id)
                .arg(name)
                .arg(now_ms())
                .arg(delay)
                .arg(reason)
                .arg(attempt)
                .arg(message);
            let _: i64 = within_deadline(invocation.invoke_async(&mut connection))
                .await
                .map_err(|err| parts.fail(err))?;
            Ok(())
        })
    }

    fn stats(&self) -> StoreFuture<Vec<GroupStats>> {
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.connection().await?;
            let fail = |err| parts.fail(err);
            let mut names: Vec<String> = within_deadline(connection.smembers(GROUPS))
                .await
                .map_err(fail)?;
            names.sort();
            let now = now_ms();
            let mut by_topic: BTreeMap<String, StreamInfoGroupsReply> = BTreeMap::new();
            let mut all = Vec::new();
            for name in names {
                let Some((topic, group)) = name.split_once('\x1f') else {
                    continue;
                };
                if !by_topic.contains_key(topic) {
                    let info: StreamInfoGroupsReply =
                        within_deadline(connection.xinfo_groups(topic_key(topic, "s")))
                            .await
                            .unwrap_or_default();
                    by_topic.insert(topic.to_string(), info);
                }
                let info = by_topic
                    .get(topic)
                    .and_then(|info| info.groups.iter().find(|g| g.name == group));
                let (retry, inflight, dead, delayed, retried): (u64, u64, u64, u64, Option<u64>) =
                    within_deadline(
                        redis::pipe()
                            .zcard(group_key(topic, group, "retry"))
                            .zcard(group_key(topic, group, "inflight"))
                            .hlen(group_key(topic, group, "dead"))
                            .zcard(topic_key(topic, "delayed"))
                            .hget(group_key(topic, group, "stats"), "retried")
                            .query_async(&mut connection),
                    )
                    .await
                    .map_err(fail)?;
                let lag = info.and_then(|g| g.lag).unwrap_or(0) as u64;
                let pending = info.map_or(0, |g| g.pending) as u64;
                // The oldest waiting message: the first one the group has
                // not read, or the earliest retry.
                let mut oldest: Option<u64> = None;
                if let Some(info) = info
                    && lag > 0
                {
                    let next: Vec<(String, BTreeMap<String, Value>)> = within_deadline(
                        redis::cmd("XRANGE")
                            .arg(topic_key(topic, "s"))
                            .arg(format!("({}", info.last_delivered_id))
                            .arg("+")
                            .arg("COUNT")
                            .arg(1)
                            .query_async(&mut connection),
                    )
                    .await
                    .unwrap_or_default();
                    oldest = next.first().and_then(|(id, _)| id_ms(id));
                }
                let first_retry: Vec<String> =
                    within_deadline(connection.zrange(group_key(topic, group, "retry"), 0, 0))
                        .await
                        .unwrap_or_default();
                if let Some(ms) = first_retry.first().and_then(|id| id_ms(id)) {
                    oldest = Some(oldest.map_or(ms, |o| o.min(ms)));
                }
                all.push(GroupStats {
                    topic: topic.to_string(),
                    group: group.to_string(),
                    depth: lag + retry + delayed,
                    oldest_age_ms: oldest.map(|ms| now.saturating_sub(ms)),
                    in_flight: pending + inflight,
                    retried: retried.unwrap_or(0),
                    dead,
                });
            }
            Ok(all)
        })
    }

    fn dead_letters(&self, topic: &str, group: &str, limit: usize) -> StoreFuture<Vec<DeadLetter>> {
        let (topic, group) = (topic.to_string(), group.to_string());
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.connection().await?;
            let dead: BTreeMap<String, String> =
                within_deadline(connection.hgetall(group_key(&topic, &group, "dead")))
                    .await
                    .map_err(|err| parts.fail(err))?;
            let mut letters = Vec::new();
            for (id, record) in dead.into_iter().take(limit) {
                let record: serde_json::Value = serde_json::from_str(&record).unwrap_or_default();
                let held: Option<Vec<u8>> =
                    within_deadline(connection.hget(group_key(&topic, &group, "held"), &id))
                        .await
                        .map_err(|err| parts.fail(err))?;
                let Some((header, payload)) = held.as_deref().and_then(decode) else {
                    continue;
                };
                letters.push(DeadLetter {
                    header,
                    attempts: record["attempts"].as_u64().unwrap_or(0) as u32,
                    reason: record["reason"].as_str().unwrap_or_default().to_string(),
                    dead_at_ms: record["at"].as_u64().unwrap_or(0),
                    preview: preview(&payload),
                });
            }
            letters.sort_by_key(|letter| letter.dead_at_ms);
            Ok(letters)
        })
    }

    fn replay(&self, topic: &str, group: &str) -> StoreFuture<u64> {
        let (topic, group) = (topic.to_string(), group.to_string());
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.connection().await?;
            let mut invocation = parts.scripts.replay.prepare_invoke();
            invocation.arg(topic).arg(group).arg(now_ms());
            let count: u64 = within_deadline(invocation.invoke_async(&mut connection))
                .await
                .map_err(|err| parts.fail(err))?;
            parts.published.notify_waiters();
            Ok(count)
        })
    }

    fn published(&self) -> Arc<Notify> {
        self.published.clone()
    }

    fn maintain(&self, topic: &str) -> StoreFuture<()> {
        let topic = topic.to_string();
        let parts = self.parts();
        Box::pin(async move { parts.trim(&topic).await })
    }

    fn fire(&self, topic: &str, group: &str, tick_ms: u64, message: Message) -> StoreFuture<bool> {
        let (id, header, payload, _, _) = publish_args(&message);
        let (topic, group) = (topic.to_string(), group.to_string());
        let parts = self.parts();
        Box::pin(async move {
            let mut connection = parts.connection().await?;
            let mut invocation = parts.scripts.fire.prepare_invoke();
            invocation
                .arg(topic)
                .arg(group)
                .arg(tick_ms)
                .arg(id)
                .arg(header)
                .arg(payload)
                .arg(now_ms())
                .arg(DEDUP_WINDOW.as_millis() as u64);
            let fired: i64 = within_deadline(invocation.invoke_async(&mut connection))
                .await
                .map_err(|err| parts.fail(err))?;
            if fired == 1 {
                parts.published.notify_waiters();
            }
            Ok(fired == 1)
        })
    }
}

impl Parts {
    /// Drops the stream entries of `topic` that no group can still need:
    /// those before every group's first pending entry and last read
    /// position (messages held for a retry or a dead letter were copied
    /// out). Best effort; any host may do it.
    async fn trim(&self, topic: &str) -> Result<(), StoreError> {
        let parts = self;
        let mut connection = parts.connection().await?;
        let stream = topic_key(topic, "s");
        let groups: StreamInfoGroupsReply =
            match within_deadline(connection.xinfo_groups(&stream)).await {
                Ok(groups) => groups,
                Err(_) => return Ok(()),
            };
        let mut keep_from: Option<(u64, u64)> = None;
        for group in &groups.groups {
            let mut candidate = next_id(&group.last_delivered_id);
            if group.pending > 0 {
                let first: StreamPendingCountReply =
                    within_deadline(connection.xpending_count(&stream, &group.name, "-", "+", 1))
                        .await
                        .map_err(|err| parts.fail(err))?;
                if let Some(first) = first.ids.first().and_then(|p| parse_id(&p.id)) {
                    candidate = candidate.min(first);
                }
            }
            keep_from = Some(keep_from.map_or(candidate, |k| k.min(candidate)));
        }
        if let Some((ms, seq)) = keep_from {
            let _: Result<i64, _> = within_deadline(
                redis::cmd("XTRIM")
                    .arg(&stream)
                    .arg("MINID")
                    .arg(format!("{ms}-{seq}"))
                    .query_async(&mut connection),
            )
            .await;
        }
        Ok(())
    }
}

/// A stream id as (milliseconds, sequence).
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The id right after `id`.
fn next_id(id: &str) -> (u64, u64) {
    match parse_id(id) {
        Some((ms, seq)) => (ms, seq + 1),
        None => (0, 0),
    }
}

/// The milliseconds part of a stream id: when the entry was added.
fn id_ms(id: &str) -> Option<u64> {
    parse_id(id).map(|(ms, _)| ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::redis::RedisStore;

    /// A `redis-server` of this test's own on a free loopback port,
    /// stopped when dropped.
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

    async fn queue() -> (TestRedis, RedisQueue, Arc<RedisStore>) {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test: run scripts/test.sh, which installs it");
        let url = format!("redis://127.0.0.1:{port}/0");
        let link = RedisLink::new(&url, false, crate::kv::durability::Durability::Primary).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while link.get().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let kv = Arc::new(
            RedisStore::new(
                &url,
                crate::kv::durability::Durability::Primary,
                Counter::default(),
            )
            .unwrap(),
        );
        let queue = RedisQueue::new(link, "test-host".into(), Counter::default());
        (TestRedis { process, _dir: dir }, queue, kv)
    }

    crate::queue::suite::queue_suite!(queue().await);

    #[tokio::test]
    async fn trimming_keeps_what_a_group_still_needs() {
        let (_server, q, _) = queue().await;
        q.subscribe("t", "slow").await.unwrap();
        q.subscribe("t", "fast").await.unwrap();
        for i in 0..5 {
            q.publish(
                "t",
                Message {
                    payload: vec![i],
                    ..Message::default()
                },
            )
            .await
            .unwrap();
        }
        let lease = Duration::from_secs(30);
        for delivery in q.lease("t", "fast", 10, lease).await.unwrap() {
            q.settle(&delivery, Settle::Ack).await.unwrap();
        }
        q.maintain("t").await.unwrap();
        // The slow group has read nothing yet: all five are still there.
        assert_eq!(q.lease("t", "slow", 10, lease).await.unwrap().len(), 5);
    }
}
