//! Redis high availability through Sentinel: a host given a
//! `redis+sentinel://` URL for its kv and its cluster finds the primary,
//! follows a failover by itself (no restart), and with
//! `kv-durability = "replicated"` acknowledges a write only once a replica
//! holds it, so the failover loses none.
//!
//! Needs redis-server: `scripts/test.sh` installs it.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Node, deploy, http, wait_until};
use common::sentinel::Topology;

/// PUT a user through `node`; the status (0 when the request failed).
fn put_user(http: &reqwest::blocking::Client, node: &Node, id: &str, email: &str) -> u16 {
    http.put(node.url(&format!("/users/{id}")))
        .body(format!(r#"{{"name": "{id}", "email": "{email}"}}"#))
        .send()
        .map_or(0, |r| r.status().as_u16())
}

#[test]
fn a_host_follows_a_sentinel_failover_and_loses_no_replicated_write() {
    let work = tempfile::tempdir().unwrap();
    let mut redis = Topology::start(&work.path().join("redis"));
    let http = http();
    let node = Node::new(work.path(), "a", &redis.url());
    let _host = node.start_with(&["--kv-durability", "replicated"]);
    wait_until("host ready", Duration::from_secs(120), || node.ready(&http));
    // The deployment itself goes through the sentinel-found primary.
    deploy(&http, &node, "users");
    wait_until("users deployed", Duration::from_secs(60), || {
        node.status(&http, "/users") == 200
    });

    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let id = format!("before-{i}");
        assert_eq!(put_user(&http, &node, &id, "one@example.com"), 201, "{id}");
        acknowledged.push((id, "one@example.com"));
    }

    // No replica: a replicated write cannot be acknowledged, reads go on.
    redis.kill_server(1);
    assert_eq!(
        put_user(&http, &node, "lonely", "x@example.com"),
        503,
        "a write no replica holds must not be acknowledged"
    );
    assert_eq!(node.status(&http, "/users/before-0"), 200);
    assert!(
        node.log().contains("no replica confirmed the write"),
        "{}",
        node.log()
    );
    redis.start_server(1, Some(redis.servers[0]));
    redis.wait_until_replicated();
    assert_eq!(put_user(&http, &node, "after-resync", "y@example.com"), 201);
    acknowledged.push(("after-resync".into(), "y@example.com"));

    // The primary dies; the sentinels promote the replica and the host
    // moves to it by itself: reads work again at once.
    assert_eq!(redis.primary_index(), Some(0));
    redis.kill_server(0);
    let killed = Instant::now();
    wait_until(
        "the sentinels promote the replica",
        Duration::from_secs(60),
        || redis.primary_index() == Some(1),
    );
    wait_until(
        "reads work again through the same host",
        Duration::from_secs(60),
        || node.status(&http, "/users/before-1") == 200,
    );
    eprintln!(
        "reads failed for {:?} after the primary's kill",
        killed.elapsed()
    );
    let log = node.log();
    assert!(
        log.contains(&format!("is now 127.0.0.1:{}", redis.servers[1])),
        "the host names the new primary: {log}"
    );
    // Writes wait for a replica: the old primary, back as one.
    assert_eq!(
        put_user(&http, &node, "no-replica-yet", "v@example.com"),
        503
    );
    redis.start_server(0, None);
    redis.wait_until_replicated();
    wait_until("writes work again", Duration::from_secs(60), || {
        put_user(&http, &node, "after-failover", "z@example.com") == 201
    });
    acknowledged.push(("after-failover".into(), "z@example.com"));

    // Every acknowledged write survived the failover.
    for (id, email) in &acknowledged {
        let body = http
            .get(node.url(&format!("/users/{id}")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(body.contains(email), "{id}: {body}");
    }

    // The cluster's deployment follows too: a deploy after the failover
    // is served.
    deploy(&http, &node, "hello");
    wait_until(
        "hello deployed after the failover",
        Duration::from_secs(60),
        || node.status(&http, "/hello") == 200,
    );

    assert_eq!(redis.primary_index(), Some(1));
    assert!(!node.log().contains("panicked"), "{}", node.log());
}

#[test]
fn a_bad_sentinel_url_is_refused_naming_the_problem() {
    let work = tempfile::tempdir().unwrap();
    let node = Node::new(work.path(), "a", "redis+sentinel://127.0.0.1:26379");
    let mut process = node.start();
    let status = process.0.wait().unwrap();
    assert!(!status.success());
    let log = node.log();
    assert!(log.contains("no service name"), "{log}");
}
