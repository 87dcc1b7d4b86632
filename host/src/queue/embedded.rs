//! Topics and queues in the host's own redb file, written through the kv
//! store's group-committed writer: a publish is acknowledged once the
//! batch holding it is in the write log (fsync'ed), and a commit of kv
//! writes and publishes is one transaction and one log record, so a crash
//! keeps all of it or none.
//!
//! Layout, in namespaces no service can have (they start with `#`), with
//! `\x1f` between the parts of a key and numbers zero-padded so keys sort
//! in order:
//!
//! | namespace | key | value |
//! | --- | --- | --- |
//! | `#q.groups` | topic, group | (empty) |
//! | `#q.seq` | topic | the last message number |
//! | `#q.msg` | topic, number | the message ([`encoding`]) |
//! | `#q.refs` | topic, number | deliveries still holding it |
//! | `#q.due` | topic, group, due time, number | attempt and last failure |
//! | `#q.dead` | topic, group, number | attempts, reason, when |
//! | `#q.retried` | topic, group | retries scheduled so far |
//! | `#q.dedup` | topic, dedup key | the first message's id, until when |
//! | `#q.dedupx` | until when, topic, dedup key | (empty): expiry index |
//! | `#q.ticks` | topic, group | the last schedule tick fired |
//!
//! Leases live in memory only: this store belongs to one host, and a host
//! that stops loses its leases with it, so everything it held is due again
//! when it starts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::encoding::{decode, encode};
use super::{
    DEDUP_WINDOW, DeadLetter, Delivery, EventStore, GroupStats, Header, Message, Settle, TxOp,
    now_ms, preview,
};
use crate::kv::redb::{RedbStore, Tx};
use crate::kv::{StoreError, StoreFuture, check_key, check_value, refused};

const GROUPS: &str = "#q.groups";
const SEQ: &str = "#q.seq";
const MSG: &str = "#q.msg";
const REFS: &str = "#q.refs";
const DUE: &str = "#q.due";
const DEAD: &str = "#q.dead";
const RETRIED: &str = "#q.retried";
const DEDUP: &str = "#q.dedup";
const DEDUP_EXPIRY: &str = "#q.dedupx";
const TICKS: &str = "#q.ticks";

/// Separates the parts of a key; no topic, group or number holds it.
const SEP: char = '\x1f';

/// Most entries a scan reads at once.
const PAGE: usize = 10_000;

/// The embedded [`EventStore`].
pub struct EmbeddedQueue {
    store: Arc<RedbStore>,
    groups: GroupCache,
    /// Due keys leased and not settled, with when each lease ends.
    leases: Arc<Mutex<HashMap<String, Instant>>>,
    /// Woken on every publish, so a dispatcher waiting for work starts at
    /// once.
    published: Arc<Notify>,
}

/// What a due entry holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Due {
    attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// One step of a commit, ready for the writer.
enum Step {
    Set(String, Vec<u8>),
    Delete(String),
    Publish(Prepared),
}

/// What a dead entry holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dead {
    attempts: u32,
    reason: String,
    at: u64,
}

/// What a dedup entry holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Seen {
    id: String,
    until: u64,
}

fn key(parts: &[&str]) -> String {
    let mut key = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.push_str(part);
    }
    key
}

fn prefix(parts: &[&str]) -> String {
    let mut prefix = key(parts);
    prefix.push(SEP);
    prefix
}

fn number(n: u64) -> String {
    format!("{n:020}")
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn parse<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|err| StoreError::Storage(format!("a queue entry is not readable: {err}")))
}

fn decimal(bytes: Option<Vec<u8>>) -> u64 {
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// The groups subscribed to `topic`.
fn groups_of(
    read: impl Fn(&str, &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>,
    topic: &str,
) -> Result<Vec<String>, StoreError> {
    let prefix = prefix(&[topic]);
    Ok(read(GROUPS, &prefix)?
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(&prefix).map(str::to_string))
        .collect())
}

/// A message ready to be written: everything that does not need the
/// store (its id, its encoding) is done before it reaches the writer
/// thread, which every write of the host shares.
pub(super) struct Prepared {
    topic: String,
    id: String,
    encoded: Vec<u8>,
    delay_ms: u64,
    dedup: Option<String>,
}

impl Prepared {
    fn new(topic: &str, message: &Message) -> Prepared {
        let header = Header::new(message);
        Prepared {
            topic: topic.to_string(),
            encoded: encode(&header, &message.payload),
            id: header.id,
            delay_ms: message.delay.map_or(0, |d| d.as_millis() as u64),
            dedup: message.dedup_key.clone(),
        }
    }
}

/// The groups of each topic, read once from the store and kept in step by
/// `subscribe`, which changes them inside the writer as well.
type GroupCache = Arc<Mutex<HashMap<String, Arc<Vec<String>>>>>;

/// The groups subscribed to `topic`, from the cache or the store.
fn groups_in(
    tx: &Tx<'_, '_>,
    cache: &GroupCache,
    topic: &str,
) -> Result<Arc<Vec<String>>, StoreError> {
    if let Some(groups) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(topic)
    {
        return Ok(groups.clone());
    }
    let groups = Arc::new(groups_of(|ns, p| tx.scan(ns, p, p, PAGE), topic)?);
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(topic.to_string(), groups.clone());
    Ok(groups)
}

/// Publishes inside `tx`: for each group of the topic, a due entry; the
/// message itself only if some group will read it.
fn publish_in(
    tx: &mut Tx<'_, '_>,
    cache: &GroupCache,
    message: &Prepared,
    now: u64,
) -> Result<String, StoreError> {
    let topic = message.topic.as_str();
    if let Some(dedup) = &message.dedup {
        let seen_key = key(&[topic, dedup]);
        if let Some(seen) = tx.get(DEDUP, &seen_key)? {
            let seen: Seen = parse(&seen)?;
            if seen.until > now {
                return Ok(seen.id);
            }
        }
    }
    let groups = groups_in(tx, cache, topic)?;
    if !groups.is_empty() {
        let seq = decimal(tx.get(SEQ, topic)?) + 1;
        tx.set(SEQ, topic, seq.to_string().as_bytes())?;
        let seq = number(seq);
        tx.set(MSG, &key(&[topic, &seq]), &message.encoded)?;
        tx.set(
            REFS,
            &key(&[topic, &seq]),
            groups.len().to_string().as_bytes(),
        )?;
        let due = number(now + message.delay_ms);
        let entry = json(&Due {
            attempt: 1,
            reason: None,
        });
        for group in groups.iter() {
            tx.set(DUE, &key(&[topic, group, &due, &seq]), &entry)?;
        }
    }
    if let Some(dedup) = &message.dedup {
        let until = now + DEDUP_WINDOW.as_millis() as u64;
        let seen = Seen {
            id: message.id.clone(),
            until,
        };
        tx.set(DEDUP, &key(&[topic, dedup]), &json(&seen))?;
        tx.set(DEDUP_EXPIRY, &key(&[&number(until), topic, dedup]), b"")?;
        forget_expired_dedup(tx, now)?;
    }
    Ok(message.id.clone())
}

/// Drops a few dedup keys past their window, so they do not pile up.
fn forget_expired_dedup(tx: &mut Tx<'_, '_>, now: u64) -> Result<(), StoreError> {
    for (index, _) in tx.scan(DEDUP_EXPIRY, "", "", 16)? {
        let mut parts = index.splitn(3, SEP);
        let (Some(until), Some(topic), Some(dedup)) = (parts.next(), parts.next(), parts.next())
        else {
            tx.delete(DEDUP_EXPIRY, &index)?;
            continue;
        };
        if until.parse::<u64>().unwrap_or(0) > now {
            break;
        }
        let seen_key = key(&[topic, dedup]);
        // A newer publish with the key may have renewed it.
        let renewed = match tx.get(DEDUP, &seen_key)? {
            Some(seen) => parse::<Seen>(&seen)?.until > now,
            None => false,
        };
        if !renewed {
            tx.delete(DEDUP, &seen_key)?;
        }
        tx.delete(DEDUP_EXPIRY, &index)?;
    }
    Ok(())
}

/// One delivery fewer holds message `seq` of `topic`; the last one lets it go.
fn release(tx: &mut Tx<'_, '_>, topic: &str, seq: &str) -> Result<(), StoreError> {
    let refs_key = key(&[topic, seq]);
    let refs = decimal(tx.get(REFS, &refs_key)?);
    if refs <= 1 {
        tx.delete(REFS, &refs_key)?;
        tx.delete(MSG, &refs_key)?;
    } else {
        tx.set(REFS, &refs_key, (refs - 1).to_string().as_bytes())?;
    }
    Ok(())
}

/// The parts of a due key after topic and group: due time and number.
fn due_parts<'k>(due_key: &'k str, group_prefix: &str) -> Option<(u64, &'k str)> {
    let rest = due_key.strip_prefix(group_prefix)?;
    let (due, seq) = rest.split_once(SEP)?;
    Some((due.parse().ok()?, seq))
}

impl EmbeddedQueue {
    /// The queue in `store`'s database; every lease from before this
    /// start is forgotten (its deliveries are due).
    pub fn new(store: Arc<RedbStore>) -> EmbeddedQueue {
        EmbeddedQueue {
            store,
            groups: Arc::new(Mutex::new(HashMap::new())),
            leases: Arc::new(Mutex::new(HashMap::new())),
            published: Arc::new(Notify::new()),
        }
    }

    /// Runs `write` and, once it committed, wakes the dispatchers.
    fn transact_and_wake<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Tx<'_, '_>) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let done = self.store.transact(write);
        let published = self.published.clone();
        Box::pin(async move {
            let value = done.await?;
            published.notify_waiters();
            Ok(value)
        })
    }
}

impl EventStore for EmbeddedQueue {
    fn publish(&self, topic: &str, message: Message) -> StoreFuture<String> {
        let prepared = Prepared::new(topic, &message);
        let groups = self.groups.clone();
        self.transact_and_wake(move |tx| publish_in(tx, &groups, &prepared, now_ms()))
    }

    fn commit(&self, namespace: &str, ops: Vec<TxOp>) -> StoreFuture<Vec<String>> {
        // Refused before anything is written, so no commit is half done.
        for op in &ops {
            let checked = match op {
                TxOp::Set(key, value) => check_key(key).and_then(|()| check_value(value)),
                TxOp::Delete(key) => check_key(key),
                TxOp::Publish(_, message) => super::check_message(message),
            };
            if let Err(err) = checked {
                return refused(err);
            }
        }
        let namespace = namespace.to_string();
        let steps: Vec<Step> = ops
            .into_iter()
            .map(|op| match op {
                TxOp::Set(key, value) => Step::Set(key, value),
                TxOp::Delete(key) => Step::Delete(key),
                TxOp::Publish(topic, message) => Step::Publish(Prepared::new(&topic, &message)),
            })
            .collect();
        let groups = self.groups.clone();
        self.transact_and_wake(move |tx| {
            let now = now_ms();
            let mut ids = Vec::new();
            for step in steps {
                match step {
                    Step::Set(key, value) => tx.set(&namespace, &key, &value)?,
                    Step::Delete(key) => {
                        tx.delete(&namespace, &key)?;
                    }
                    Step::Publish(message) => ids.push(publish_in(tx, &groups, &message, now)?),
                }
            }
            Ok(ids)
        })
    }

    fn subscribe(&self, topic: &str, group: &str) -> StoreFuture<()> {
        let (topic, group_key) = (topic.to_string(), key(&[topic, group]));
        let (store, groups) = (self.store.clone(), self.groups.clone());
        Box::pin(async move {
            let known = store
                .read_with({
                    let group_key = group_key.clone();
                    move |read| read.get(GROUPS, &group_key)
                })
                .await?;
            if known.is_none() {
                store
                    .transact(move |tx| {
                        tx.set(GROUPS, &group_key, b"")?;
                        // Read again at the next publish, in this same order.
                        groups
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&topic);
                        Ok(())
                    })
                    .await?;
            }
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
        let leases = self.leases.clone();
        self.store.read_with(move |read| {
            let now = now_ms();
            let group_prefix = prefix(&[&topic, &group]);
            let mut taken = Vec::new();
            let mut from = group_prefix.clone();
            'pages: loop {
                let page = read.scan(DUE, &group_prefix, &from, 256)?;
                let last = page.len() < 256;
                for (due_key, value) in &page {
                    let Some((due, seq)) = due_parts(due_key, &group_prefix) else {
                        continue;
                    };
                    if due > now || taken.len() >= max {
                        break 'pages;
                    }
                    {
                        let mut held = leases.lock().unwrap_or_else(PoisonError::into_inner);
                        let instant = Instant::now();
                        if held.get(due_key).is_some_and(|until| *until > instant) {
                            continue;
                        }
                        held.insert(due_key.clone(), instant + lease);
                    }
                    let entry: Due = parse(value)?;
                    let Some(bytes) = read.get(MSG, &key(&[&topic, seq]))? else {
                        continue;
                    };
                    let Some((header, payload)) = decode(&bytes) else {
                        continue;
                    };
                    taken.push(Delivery {
                        topic: topic.clone(),
                        group: group.clone(),
                        header,
                        payload,
                        attempt: entry.attempt,
                        token: due_key.clone(),
                    });
                }
                match page.last() {
                    Some((key, _)) if !last => from = format!("{key}\0"),
                    _ => break,
                }
            }
            Ok(taken)
        })
    }

    fn settle(&self, delivery: &Delivery, outcome: Settle) -> StoreFuture<()> {
        let due_key = delivery.token.clone();
        let (topic, group) = (delivery.topic.clone(), delivery.group.clone());
        let attempt = delivery.attempt;
        let leases = self.leases.clone();
        let settled = self.transact_and_wake({
            let due_key = due_key.clone();
            move |tx| {
                let group_prefix = prefix(&[&topic, &group]);
                let Some((_, seq)) = due_parts(&due_key, &group_prefix) else {
                    return Ok(());
                };
                let seq = seq.to_string();
                // Replayed or settled already: nothing to do.
                if !tx.delete(DUE, &due_key)? {
                    return Ok(());
                }
                let now = now_ms();
                match outcome {
                    Settle::Ack => release(tx, &topic, &seq)?,
                    Settle::Retry { delay, reason } => {
                        let due = now + delay.as_millis() as u64;
                        let entry = Due {
                            attempt: attempt + 1,
                            reason: Some(reason),
                        };
                        tx.set(
                            DUE,
                            &key(&[&topic, &group, &number(due), &seq]),
                            &json(&entry),
                        )?;
                        let retried_key = key(&[&topic, &group]);
                        let retried = decimal(tx.get(RETRIED, &retried_key)?) + 1;
                        tx.set(RETRIED, &retried_key, retried.to_string().as_bytes())?;
                    }
                    Settle::Dead { reason } => {
                        let dead = Dead {
                            attempts: attempt,
                            reason,
                            at: now,
                        };
                        tx.set(DEAD, &key(&[&topic, &group, &seq]), &json(&dead))?;
                    }
                }
                Ok(())
            }
        });
        Box::pin(async move {
            let result = settled.await;
            leases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&due_key);
            result
        })
    }

    fn stats(&self) -> StoreFuture<Vec<GroupStats>> {
        let leases = self.leases.clone();
        self.store.read_with(move |read| {
            let now = now_ms();
            let instant = Instant::now();
            let held: Vec<String> = leases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|(_, until)| **until > instant)
                .map(|(key, _)| key.clone())
                .collect();
            let mut all = Vec::new();
            for (group_key, _) in read.scan(GROUPS, "", "", PAGE)? {
                let Some((topic, group)) = group_key.split_once(SEP) else {
                    continue;
                };
                let group_prefix = prefix(&[topic, group]);
                let mut stats = GroupStats {
                    topic: topic.to_string(),
                    group: group.to_string(),
                    ..GroupStats::default()
                };
                let mut oldest: Option<String> = None;
                for (due_key, _) in read.scan(DUE, &group_prefix, &group_prefix, usize::MAX)? {
                    if held.contains(&due_key) {
                        stats.in_flight += 1;
                        continue;
                    }
                    stats.depth += 1;
                    if let Some((_, seq)) = due_parts(&due_key, &group_prefix)
                        && oldest.as_deref().is_none_or(|o| seq < o)
                    {
                        oldest = Some(seq.to_string());
                    }
                }
                if let Some(seq) = oldest
                    && let Some(bytes) = read.get(MSG, &key(&[topic, &seq]))?
                    && let Some((header, _)) = decode(&bytes)
                {
                    stats.oldest_age_ms = Some(now.saturating_sub(header.published_at_ms));
                }
                stats.dead = read
                    .scan(DEAD, &group_prefix, &group_prefix, usize::MAX)?
                    .len() as u64;
                stats.retried = decimal(read.get(RETRIED, &group_key)?);
                all.push(stats);
            }
            Ok(all)
        })
    }

    fn dead_letters(&self, topic: &str, group: &str, limit: usize) -> StoreFuture<Vec<DeadLetter>> {
        let (topic, group) = (topic.to_string(), group.to_string());
        self.store.read_with(move |read| {
            let group_prefix = prefix(&[&topic, &group]);
            let mut letters = Vec::new();
            for (dead_key, value) in read.scan(DEAD, &group_prefix, &group_prefix, limit)? {
                let Some(seq) = dead_key.strip_prefix(&group_prefix) else {
                    continue;
                };
                let dead: Dead = parse(&value)?;
                let Some(bytes) = read.get(MSG, &key(&[&topic, seq]))? else {
                    continue;
                };
                let Some((header, payload)) = decode(&bytes) else {
                    continue;
                };
                letters.push(DeadLetter {
                    header,
                    attempts: dead.attempts,
                    reason: dead.reason,
                    dead_at_ms: dead.at,
                    preview: preview(&payload),
                });
            }
            Ok(letters)
        })
    }

    fn replay(&self, topic: &str, group: &str) -> StoreFuture<u64> {
        let (topic, group) = (topic.to_string(), group.to_string());
        self.transact_and_wake(move |tx| {
            let group_prefix = prefix(&[&topic, &group]);
            let now = number(now_ms());
            let entry = json(&Due {
                attempt: 1,
                reason: None,
            });
            let mut count = 0;
            for (dead_key, _) in tx.scan(DEAD, &group_prefix, &group_prefix, usize::MAX)? {
                let Some(seq) = dead_key.strip_prefix(&group_prefix) else {
                    continue;
                };
                tx.set(DUE, &key(&[&topic, &group, &now, seq]), &entry)?;
                tx.delete(DEAD, &dead_key)?;
                count += 1;
            }
            Ok(count)
        })
    }

    fn published(&self) -> Arc<Notify> {
        self.published.clone()
    }

    fn maintain(&self, _topic: &str) -> StoreFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn fire(&self, topic: &str, group: &str, tick_ms: u64, message: Message) -> StoreFuture<bool> {
        let (prepared, tick_key) = (Prepared::new(topic, &message), key(&[topic, group]));
        let groups = self.groups.clone();
        self.transact_and_wake(move |tx| {
            if decimal(tx.get(TICKS, &tick_key)?) >= tick_ms {
                return Ok(false);
            }
            tx.set(TICKS, &tick_key, tick_ms.to_string().as_bytes())?;
            publish_in(tx, &groups, &prepared, now_ms())?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (tempfile::TempDir, EmbeddedQueue, Arc<RedbStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        (dir, EmbeddedQueue::new(store.clone()), store)
    }

    crate::queue::suite::queue_suite!(queue());

    #[tokio::test]
    async fn a_publish_and_its_kv_writes_survive_reopening_together() {
        let dir = tempfile::tempdir().unwrap();
        {
            let queue = EmbeddedQueue::new(Arc::new(RedbStore::open(dir.path()).unwrap()));
            queue.subscribe("t", "g").await.unwrap();
            let ops = vec![
                TxOp::Set("order/1".into(), b"{}".to_vec()),
                TxOp::Publish(
                    "t".into(),
                    Message {
                        payload: b"1".to_vec(),
                        ..Message::default()
                    },
                ),
            ];
            queue.commit("orders", ops).await.unwrap();
        }
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        use crate::kv::KvStore;
        assert!(store.get("orders", "order/1").await.unwrap().is_some());
        let queue = EmbeddedQueue::new(store);
        let leased = queue
            .lease("t", "g", 10, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].payload, b"1");
    }
}
