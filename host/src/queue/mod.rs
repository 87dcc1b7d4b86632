//! Durable topics and queues behind one trait, beside the key-value store
//! whose commit path they share (so a service's kv writes and the events
//! announcing them commit as one step).
//!
//! The model, the same on every backend:
//! - A **topic** holds messages. A **group** subscribes to a topic and gets
//!   every message published to it after it first subscribed; groups live
//!   in the store, so a group whose service is gone (removed, failing,
//!   being redeployed) keeps queueing until it comes back.
//! - Within a group each message is a **delivery**: leased to one handler
//!   at a time (on any host), then settled: acked (gone), retried (due
//!   again later, attempt + 1) or dead-lettered (kept with its reason
//!   until replayed). A lease that is never settled (its host died) ends,
//!   and the delivery is due again.
//! - A **schedule** tick is claimed once per cluster and published as a
//!   message in the same step.
//!
//! The embedded backend ([`embedded`]) keeps all of this in the host's
//! redb file through the kv store's group-committed writer; the Redis
//! backend ([`redis`]) uses Redis Streams with consumer groups, `XACK`,
//! `XAUTOCLAIM` for the leases of a host that died, and sorted sets for
//! delayed messages and retries.

pub mod embedded;
pub mod encoding;
pub mod redis;
#[cfg(test)]
pub mod suite;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::kv::{StoreError, StoreFuture};

/// Largest payload a message may carry.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Longest topic name.
pub const MAX_TOPIC_LEN: usize = 128;

/// Longest delay a publish may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a dedup key is remembered.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(600);

/// Most metadata pairs, and their longest key or value.
pub const MAX_METADATA: usize = 64;
const MAX_METADATA_TEXT: usize = 4096;

/// Longest dedup key.
pub const MAX_DEDUP_KEY: usize = 256;

/// Most steps in one commit.
pub const MAX_COMMIT_OPS: usize = 256;

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The bytes delivered.
    pub payload: Vec<u8>,
    /// How to read them.
    pub content_type: Option<String>,
    /// Pairs delivered with them.
    pub metadata: Vec<(String, String)>,
    /// Not to be delivered before this long after the publish.
    pub delay: Option<Duration>,
    /// Publishes with the same key within [`DEDUP_WINDOW`] are one.
    pub dedup_key: Option<String>,
}

/// What is stored of a published message besides its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Its id, as `publish` returned it.
    pub id: String,
    /// Its content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Its metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<(String, String)>,
    /// When it was published (Unix milliseconds).
    pub published_at_ms: u64,
}

impl Header {
    /// A header for `message`, published now with a new id.
    pub fn new(message: &Message) -> Header {
        Header {
            id: uuid::Uuid::new_v4().simple().to_string(),
            content_type: message.content_type.clone(),
            metadata: message.metadata.clone(),
            published_at_ms: now_ms(),
        }
    }
}

/// One message leased to one handler of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic it was published to.
    pub topic: String,
    /// The group it is delivered to.
    pub group: String,
    /// Its header: id, content type, metadata, publish time.
    pub header: Header,
    /// Its payload.
    pub payload: Vec<u8>,
    /// 1 on the first delivery to this group, then 2, 3, ...
    pub attempt: u32,
    /// The backend's handle on this delivery, for settling it.
    pub token: String,
}

/// How a delivery ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Handled: gone from the group's queue.
    Ack,
    /// Due again after `delay`, with `reason` kept as its last failure.
    Retry {
        /// How long until it is due.
        delay: Duration,
        /// Why it was not handled.
        reason: String,
    },
    /// Into the group's dead-letter queue with `reason`.
    Dead {
        /// Why it will not be handled.
        reason: String,
    },
}

/// One step of a commit: a kv write in the service's namespace, or a
/// publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOp {
    /// Store a value.
    Set(String, Vec<u8>),
    /// Remove a key.
    Delete(String),
    /// Publish a message.
    Publish(String, Message),
}

/// A message in a group's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The message's header.
    pub header: Header,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, or the handler's reason.
    pub reason: String,
    /// When it was dead-lettered (Unix milliseconds).
    pub dead_at_ms: u64,
    /// Its payload, as text where it is UTF-8 (up to 1 KiB).
    pub preview: String,
}

/// How a topic's group stands, for the console, the CLI and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupStats {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// Messages waiting (due now or later), not counting those leased.
    pub depth: u64,
    /// Age of the oldest waiting message, in milliseconds.
    pub oldest_age_ms: Option<u64>,
    /// Leased and not yet settled.
    pub in_flight: u64,
    /// Retries scheduled since the group began.
    pub retried: u64,
    /// Messages in the dead-letter queue now.
    pub dead: u64,
}

/// A durable store of topics, groups and deliveries. Every write is
/// durable when its future resolves to `Ok`.
pub trait EventStore: Send + Sync {
    /// Stores `message` on `topic` for every group subscribed to it;
    /// resolves to its id (for a dedup key seen within the window, the
    /// first publish's id, storing nothing).
    fn publish(&self, topic: &str, message: Message) -> StoreFuture<String>;
    /// Applies `ops` in the kv namespace `namespace` (kv writes) and as
    /// publishes, all or none; resolves to the publishes' ids in order.
    fn commit(&self, namespace: &str, ops: Vec<TxOp>) -> StoreFuture<Vec<String>>;
    /// Makes `group` a subscriber of `topic` (nothing if it already is).
    fn subscribe(&self, topic: &str, group: &str) -> StoreFuture<()>;
    /// Leases up to `max` deliveries of `group` on `topic` that are due,
    /// each for `lease` (after which, unsettled, it is due again).
    fn lease(
        &self,
        topic: &str,
        group: &str,
        max: usize,
        lease: Duration,
    ) -> StoreFuture<Vec<Delivery>>;
    /// Settles a leased delivery.
    fn settle(&self, delivery: &Delivery, outcome: Settle) -> StoreFuture<()>;
    /// Every group's standing.
    fn stats(&self) -> StoreFuture<Vec<GroupStats>>;
    /// Up to `limit` of `group`'s dead letters on `topic`, oldest first.
    fn dead_letters(&self, topic: &str, group: &str, limit: usize) -> StoreFuture<Vec<DeadLetter>>;
    /// Makes every dead letter of `group` on `topic` due again (attempts
    /// start over); resolves to how many.
    fn replay(&self, topic: &str, group: &str) -> StoreFuture<u64>;
    /// Claims the tick at `tick_ms` of the schedule delivered on `topic` to
    /// `group` and, if no host claimed it before, publishes `message` for
    /// it in the same step; resolves to whether this call fired it.
    fn fire(&self, topic: &str, group: &str, tick_ms: u64, message: Message) -> StoreFuture<bool>;
    /// Woken whenever a message is published through this host, so a
    /// dispatcher waiting for work starts at once.
    fn published(&self) -> Arc<Notify>;
    /// Housekeeping for `topic` that any host may do now and then (Redis:
    /// dropping stream entries no group needs).
    fn maintain(&self, topic: &str) -> StoreFuture<()>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Why `topic` is not a valid topic name, if it is not: letters, digits,
/// `.`, `-` and `_`, 1 to [`MAX_TOPIC_LEN`] of them. (`schedule:` topics
/// are the host's own; no publisher can name one.)
pub fn topic_problem(topic: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN || !topic.chars().all(allowed) {
        return Some(format!(
            "invalid topic {:?}: use 1 to {MAX_TOPIC_LEN} letters, digits, '.', '-' or '_'",
            crate::logging::escape(topic)
        ));
    }
    None
}

/// Why `message` cannot be published, if it cannot (the payload's size
/// comes back as [`StoreError::ValueTooLarge`]).
pub fn check_message(message: &Message) -> Result<(), StoreError> {
    if message.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(StoreError::ValueTooLarge(message.payload.len() as u64));
    }
    if message.delay.is_some_and(|delay| delay > MAX_DELAY) {
        return Err(StoreError::InvalidKey(format!(
            "a delay is at most {} days",
            MAX_DELAY.as_secs() / 86400
        )));
    }
    if let Some(key) = &message.dedup_key
        && (key.is_empty() || key.len() > MAX_DEDUP_KEY)
    {
        return Err(StoreError::InvalidKey(format!(
            "a dedup key is 1 to {MAX_DEDUP_KEY} bytes"
        )));
    }
    if message.metadata.len() > MAX_METADATA {
        return Err(StoreError::InvalidKey(format!(
            "at most {MAX_METADATA} metadata pairs"
        )));
    }
    if let Some(text) = message
        .metadata
        .iter()
        .flat_map(|(key, value)| [key, value])
        .chain(message.content_type.as_ref())
        .find(|text| text.len() > MAX_METADATA_TEXT)
    {
        return Err(StoreError::InvalidKey(format!(
            "a metadata key, value or content type of {} bytes is over {MAX_METADATA_TEXT}",
            text.len()
        )));
    }
    Ok(())
}

/// The payload as text for a dead letter's preview.
pub fn preview(payload: &[u8]) -> String {
    let cut = &payload[..payload.len().min(1024)];
    match std::str::from_utf8(cut) {
        Ok(text) => text.to_string(),
        Err(_) => format!("({} bytes, not UTF-8)", payload.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_plain_names() {
        for good in ["order.placed", "a", "A-b_c.9"] {
            assert!(topic_problem(good).is_none(), "{good}");
        }
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        for bad in ["", "schedule:x", "a b", "a/b", long.as_str(), "é"] {
            assert!(topic_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn messages_are_bounded() {
        let ok = Message {
            payload: vec![0; MAX_PAYLOAD_BYTES],
            ..Message::default()
        };
        assert!(check_message(&ok).is_ok());
        let big = Message {
            payload: vec![0; MAX_PAYLOAD_BYTES + 1],
            ..Message::default()
        };
        assert!(matches!(
            check_message(&big),
            Err(StoreError::ValueTooLarge(_))
        ));
        let late = Message {
            delay: Some(MAX_DELAY + Duration::from_secs(1)),
            ..Message::default()
        };
        assert!(check_message(&late).is_err());
        let empty_key = Message {
            dedup_key: Some(String::new()),
            ..Message::default()
        };
        assert!(check_message(&empty_key).is_err());
    }
}
