//! The behaviour every event backend must have, as one suite of checks
//! run against each backend's own tests (`queue_suite!`), so the embedded
//! store and Redis Streams are held to the same semantics.

use std::time::Duration;

use super::{EventStore, Message, Settle, TxOp};
use crate::kv::KvStore;

const LEASE: Duration = Duration::from_secs(30);

fn message(payload: &str) -> Message {
    Message {
        payload: payload.as_bytes().to_vec(),
        content_type: Some("text/plain".into()),
        metadata: vec![("k".into(), "v".into())],
        ..Message::default()
    }
}

pub async fn a_message_is_leased_once_and_gone_once_acked(q: &dyn EventStore, _: &dyn KvStore) {
    q.subscribe("t", "g").await.unwrap();
    let id = q.publish("t", message("hello")).await.unwrap();
    let leased = q.lease("t", "g", 10, LEASE).await.unwrap();
    assert_eq!(leased.len(), 1);
    let delivery = &leased[0];
    assert_eq!(delivery.header.id, id);
    assert_eq!(delivery.payload, b"hello");
    assert_eq!(delivery.attempt, 1);
    assert_eq!(delivery.header.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        delivery.header.metadata,
        vec![("k".to_string(), "v".to_string())]
    );
    assert!(delivery.header.published_at_ms > 0);
    // Leased: nobody else gets it.
    assert!(q.lease("t", "g", 10, LEASE).await.unwrap().is_empty());
    let stats = q.stats().await.unwrap();
    let group = stats
        .iter()
        .find(|s| s.topic == "t" && s.group == "g")
        .unwrap();
    assert_eq!((group.depth, group.in_flight), (0, 1));
    q.settle(delivery, Settle::Ack).await.unwrap();
    assert!(q.lease("t", "g", 10, LEASE).await.unwrap().is_empty());
    let stats = q.stats().await.unwrap();
    let group = stats
        .iter()
        .find(|s| s.topic == "t" && s.group == "g")
        .unwrap();
    assert_eq!((group.depth, group.in_flight, group.dead), (0, 0, 0));
}

pub async fn every_group_gets_every_message_published_after_it_subscribed(
    q: &dyn EventStore,
    _: &dyn KvStore,
) {
    q.publish("t", message("before anyone")).await.unwrap();
    q.subscribe("t", "a").await.unwrap();
    q.subscribe("t", "b").await.unwrap();
    q.subscribe("t", "a").await.unwrap();
    for i in 0..3 {
        q.publish("t", message(&i.to_string())).await.unwrap();
    }
    for group in ["a", "b"] {
        let leased = q.lease("t", group, 10, LEASE).await.unwrap();
        let payloads: Vec<&[u8]> = leased.iter().map(|d| d.payload.as_slice()).collect();
        assert_eq!(payloads, [b"0", b"1", b"2"], "{group}");
        for delivery in &leased {
            q.settle(delivery, Settle::Ack).await.unwrap();
        }
    }
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.iter().filter(|s| s.topic == "t").count(), 2);
}

pub async fn a_retry_comes_back_after_its_delay_as_the_next_attempt(
    q: &dyn EventStore,
    _: &dyn KvStore,
) {
    q.subscribe("t", "g").await.unwrap();
    q.publish("t", message("again")).await.unwrap();
    let first = q.lease("t", "g", 10, LEASE).await.unwrap().remove(0);
    let retry = Settle::Retry {
        delay: Duration::from_millis(300),
        reason: "busy".into(),
    };
    q.settle(&first, retry).await.unwrap();
    assert!(q.lease("t", "g", 10, LEASE).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = q.lease("t", "g", 10, LEASE).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempt, 2);
    assert_eq!(second[0].header.id, first.header.id);
    assert_eq!(second[0].payload, b"again");
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.iter().find(|s| s.group == "g").unwrap().retried, 1);
    q.settle(&second[0], Settle::Ack).await.unwrap();
}

pub async fn dead_letters_keep_their_reason_and_replay_brings_them_back(
    q: &dyn EventStore,
    _: &dyn KvStore,
) {
    q.subscribe("t", "g").await.unwrap();
    q.publish("t", message("poison")).await.unwrap();
    let delivery = q.lease("t", "g", 10, LEASE).await.unwrap().remove(0);
    let dead = Settle::Dead {
        reason: "cannot parse".into(),
    };
    q.settle(&delivery, dead).await.unwrap();
    assert!(q.lease("t", "g", 10, LEASE).await.unwrap().is_empty());
    let letters = q.dead_letters("t", "g", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "cannot parse");
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].preview, "poison");
    assert_eq!(letters[0].header.id, delivery.header.id);
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.iter().find(|s| s.group == "g").unwrap().dead, 1);
    assert_eq!(q.replay("t", "g").await.unwrap(), 1);
    assert!(q.dead_letters("t", "g", 10).await.unwrap().is_empty());
    let again = q.lease("t", "g", 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1);
    assert_eq!(again[0].payload, b"poison");
}

pub async fn a_lease_never_settled_ends_and_the_message_comes_again(
    q: &dyn EventStore,
    _: &dyn KvStore,
) {
    q.subscribe("t", "g").await.unwrap();
    q.publish("t", message("lost")).await.unwrap();
    let short = Duration::from_millis(300);
    let first = q.lease("t", "g", 10, short).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(q.lease("t", "g", 10, short).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = q.lease("t", "g", 10, short).await.unwrap();
    assert_eq!(again.len(), 1, "the expired lease was not taken back");
    assert_eq!(again[0].header.id, first[0].header.id);
    assert!(again[0].attempt >= 1);
    q.settle(&again[0], Settle::Ack).await.unwrap();
}

pub async fn a_delayed_message_waits_and_a_dedup_key_publishes_once(
    q: &dyn EventStore,
    _: &dyn KvStore,
) {
    q.subscribe("t", "g").await.unwrap();
    let later = Message {
        delay: Some(Duration::from_millis(400)),
        ..message("later")
    };
    q.publish("t", later).await.unwrap();
    assert!(q.lease("t", "g", 10, LEASE).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let leased = q.lease("t", "g", 10, LEASE).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].payload, b"later");
    q.settle(&leased[0], Settle::Ack).await.unwrap();

    let once = Message {
        dedup_key: Some("order-7".into()),
        ..message("once")
    };
    let first = q.publish("t", once.clone()).await.unwrap();
    let second = q.publish("t", once).await.unwrap();
    assert_eq!(first, second);
    let leased = q.lease("t", "g", 10, LEASE).await.unwrap();
    assert_eq!(leased.len(), 1);
    q.settle(&leased[0], Settle::Ack).await.unwrap();
}

pub async fn a_commit_applies_writes_and_publishes_together_or_not_at_all(
    q: &dyn EventStore,
    kv: &dyn KvStore,
) {
    q.subscribe("placed", "g").await.unwrap();
    let ops = vec![
        TxOp::Set("order/1".into(), b"{\"id\":1}".to_vec()),
        TxOp::Publish("placed".into(), message("1")),
        TxOp::Delete("draft/1".into()),
        TxOp::Publish("placed".into(), message("2")),
    ];
    kv.set("orders", "draft/1", b"x").await.unwrap();
    let ids = q.commit("orders", ops).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(kv.get("orders", "order/1").await.unwrap().is_some());
    assert!(kv.get("orders", "draft/1").await.unwrap().is_none());
    let leased = q.lease("placed", "g", 10, LEASE).await.unwrap();
    let got: Vec<&String> = leased.iter().map(|d| &d.header.id).collect();
    assert_eq!(got, ids.iter().collect::<Vec<_>>());
    // One bad op refuses the whole commit.
    let bad = vec![
        TxOp::Set("order/2".into(), b"{}".to_vec()),
        TxOp::Publish("placed".into(), message("3")),
        TxOp::Set(String::new(), b"no key".to_vec()),
    ];
    assert!(q.commit("orders", bad).await.is_err());
    assert!(kv.get("orders", "order/2").await.unwrap().is_none());
    for delivery in &leased {
        q.settle(delivery, Settle::Ack).await.unwrap();
    }
    assert!(q.lease("placed", "g", 10, LEASE).await.unwrap().is_empty());
}

pub async fn a_schedule_tick_fires_once(q: &dyn EventStore, _: &dyn KvStore) {
    q.subscribe("schedule:svc:tick", "svc").await.unwrap();
    assert!(
        q.fire("schedule:svc:tick", "svc", 1_000, message("t1"))
            .await
            .unwrap()
    );
    assert!(
        !q.fire("schedule:svc:tick", "svc", 1_000, message("t1"))
            .await
            .unwrap()
    );
    assert!(
        !q.fire("schedule:svc:tick", "svc", 500, message("old"))
            .await
            .unwrap()
    );
    assert!(
        q.fire("schedule:svc:tick", "svc", 2_000, message("t2"))
            .await
            .unwrap()
    );
    let leased = q
        .lease("schedule:svc:tick", "svc", 10, LEASE)
        .await
        .unwrap();
    assert_eq!(leased.len(), 2);
}

macro_rules! queue_suite {
    ($open:expr) => {
        mod suite {
            use super::*;

            macro_rules! check {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        let (_guard, queue, kv) = $open;
                        crate::queue::suite::$name(&queue, &*kv).await;
                    }
                };
            }

            check!(a_message_is_leased_once_and_gone_once_acked);
            check!(every_group_gets_every_message_published_after_it_subscribed);
            check!(a_retry_comes_back_after_its_delay_as_the_next_attempt);
            check!(dead_letters_keep_their_reason_and_replay_brings_them_back);
            check!(a_lease_never_settled_ends_and_the_message_comes_again);
            check!(a_delayed_message_waits_and_a_dedup_key_publishes_once);
            check!(a_commit_applies_writes_and_publishes_together_or_not_at_all);
            check!(a_schedule_tick_fires_once);
        }
    };
}
pub(crate) use queue_suite;
