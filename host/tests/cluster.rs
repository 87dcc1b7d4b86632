//! Many hosts as one service: three hosts sharing Redis (kv and
//! deployment) behind HAProxy, all on loopback. A host is killed with
//! SIGKILL under load and started again; nothing may fail, the restarted
//! host must serve again quickly, data written through one host must be
//! read through another, a deploy through one host must reach all, and a
//! host started after a deploy must serve it before it says it is ready.
//!
//! Needs redis-server and haproxy: `scripts/test.sh` installs them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::cluster::{Node, TOKEN, deploy, free_port, haproxy, start_redis, upload, wait_until};
use common::demo_components;

#[test]
fn three_hosts_behind_haproxy_survive_a_kill_and_share_data_and_deploys() {
    let work = tempfile::tempdir().unwrap();
    let redis_port = free_port();
    let _redis = start_redis(&work.path().join("redis"), redis_port);
    let redis = format!("redis://127.0.0.1:{redis_port}/0");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let a = Node::new(work.path(), "a", &redis);
    let b = Node::new(work.path(), "b", &redis);
    let c = Node::new(work.path(), "c", &redis);
    let _a = a.start();
    let mut b_process = Some(b.start());
    let _c = c.start();
    for node in [&a, &b, &c] {
        wait_until("host ready", Duration::from_secs(60), || node.ready(&http));
    }
    for name in ["hello", "users"] {
        deploy(&http, &a, name);
    }
    for node in [&a, &b, &c] {
        wait_until(
            "the demo deployed everywhere",
            Duration::from_secs(30),
            || node.status(&http, "/hello") == 200 && node.status(&http, "/users") == 200,
        );
    }

    // Written through A, read through B and C: one kv for the cluster.
    let put = http
        .put(a.url("/users/ana"))
        .body(r#"{"name": "Ana", "email": "ana@example.com"}"#)
        .send()
        .unwrap();
    assert_eq!(put.status(), 201);
    for node in [&b, &c] {
        let body = http
            .get(node.url("/users/ana"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(body.contains("ana@example.com"), "{body}");
    }

    let front = free_port();
    let _haproxy = haproxy(work.path(), front, &[&a, &b, &c]);
    let front_url = |path: &str| format!("http://127.0.0.1:{front}{path}");
    wait_until("haproxy up", Duration::from_secs(10), || {
        http.get(front_url("/hello"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });

    // Load through HAProxy for 20 s: GET /hello and the shop's reads.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..4)
        .map(|worker| {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            let urls = [front_url("/hello?name=load"), front_url("/users/ana")];
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 2_000_000 {
                    let ok = client
                        .get(&urls[i % 2])
                        .send()
                        .is_ok_and(|r| r.status() == 200);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect();

    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    drop(b_process.take()); // SIGKILL
    std::thread::sleep(Duration::from_secs(7));
    let restarted = Instant::now();
    let _b_again = b.start();
    let back = wait_until("the restarted host serves", Duration::from_secs(10), || {
        b.status(&http, "/hello") == 200
    });
    let serving_again = restarted.elapsed().max(back);

    // A deploy through A, while the load runs, reaches every host.
    let deployed = Instant::now();
    deploy(&http, &a, "echo");
    let mut reach = Duration::ZERO;
    for node in [&a, &b, &c] {
        wait_until(
            "the deploy reaches every host",
            Duration::from_secs(10),
            || node.status(&http, "/echo/x") == 200,
        );
        reach = deployed.elapsed();
    }

    // A host started after the deploy serves it before it reports ready.
    let d = Node::new(work.path(), "d", &redis);
    let _d = d.start();
    wait_until("the late host ready", Duration::from_secs(60), || {
        d.ready(&http)
    });
    let late = d.status(&http, "/echo/x");

    let remaining = Duration::from_secs(20).saturating_sub(started.elapsed());
    std::thread::sleep(remaining);
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.join().unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "failover: {sent} requests sent through HAProxy in {:.1} s, {failed} failed; \
         the killed host served again {:.2} s after its start; \
         a deploy through one host reached all three in {:.2} s; \
         a host started after it answered {late} once ready",
        started.elapsed().as_secs_f64(),
        serving_again.as_secs_f64(),
        reach.as_secs_f64()
    );
    assert_eq!(failed, 0, "requests failed; host b's log:\n{}", b.log());
    assert!(sent > 100, "the load hardly ran: {sent}");
    assert!(serving_again <= Duration::from_secs(2), "{serving_again:?}");
    assert!(reach <= Duration::from_secs(2), "{reach:?}");
    assert_eq!(late, 200, "host d's log:\n{}", d.log());
}

#[test]
fn killing_a_host_loses_no_acknowledged_write_to_the_shared_kv() {
    let work = tempfile::tempdir().unwrap();
    let redis_port = free_port();
    let _redis = start_redis(&work.path().join("redis"), redis_port);
    let redis = format!("redis://127.0.0.1:{redis_port}/0");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let a = Node::new(work.path(), "a", &redis);
    let c = Node::new(work.path(), "c", &redis);
    let a_process = a.start();
    let _c = c.start();
    for node in [&a, &c] {
        wait_until("host ready", Duration::from_secs(60), || node.ready(&http));
    }
    deploy(&http, &a, "users");
    for node in [&a, &c] {
        wait_until("users deployed", Duration::from_secs(30), || {
            node.status(&http, "/users") == 200
        });
    }

    // Writers through A, until A is killed under them.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let stop = stop.clone();
            let base = a.url("/users/");
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let mut acknowledged = Vec::new();
                for i in 0..100_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("w{writer}-{i}");
                    let body = format!(r#"{{"name": "{id}", "email": "{id}@example.com"}}"#);
                    match client.put(format!("{base}{id}")).body(body).send() {
                        Ok(response) if response.status() == 201 => acknowledged.push(id),
                        Ok(_) => {}
                        // The host is gone: nothing more will be acknowledged.
                        Err(_) => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    drop(a_process); // SIGKILL, mid-write
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<String> = writers
        .into_iter()
        .flat_map(|writer| writer.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() > 10,
        "only {} writes",
        acknowledged.len()
    );

    // Every acknowledged write is there, read through the other host.
    let mut lost = Vec::new();
    for id in &acknowledged {
        let status = c.status(&http, &format!("/users/{id}"));
        if status != 200 {
            lost.push(format!("{id}: {status}"));
        }
    }
    println!(
        "kill -9 under writes: {} acknowledged, {} lost",
        acknowledged.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
}

/// Uploads `file` from the demo as the component `hello` through `node`.
fn deploy_as_hello(http: &reqwest::blocking::Client, node: &Node, file: &str) {
    let wasm = std::fs::read(demo_components().join(file)).unwrap();
    let (status, text) = upload(http, node, "hello", wasm);
    assert_eq!(status, 202, "{text}");
}

fn greeting(http: &reqwest::blocking::Client, node: &Node) -> String {
    http.get(node.url("/hello"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
}

#[test]
fn a_rollback_through_one_host_reaches_every_host() {
    let work = tempfile::tempdir().unwrap();
    let redis_port = free_port();
    let _redis = start_redis(&work.path().join("redis"), redis_port);
    let redis = format!("redis://127.0.0.1:{redis_port}/0");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let a = Node::new(work.path(), "a", &redis);
    let b = Node::new(work.path(), "b", &redis);
    let (_a, _b) = (a.start(), b.start());
    for node in [&a, &b] {
        wait_until("host ready", Duration::from_secs(60), || node.ready(&http));
    }
    // One manifest for both versions, so each upload is one version.
    let response = http
        .put(a.admin_url("/components/hello/manifest"))
        .bearer_auth(TOKEN)
        .body("routes = [\"/hello\"]\n")
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    deploy_as_hello(&http, &a, "hello.wasm");
    for node in [&a, &b] {
        wait_until("hello on every host", Duration::from_secs(30), || {
            greeting(&http, node) == "Hello, world!\n"
        });
    }
    // The second version is echo's code: it answers with the request.
    deploy_as_hello(&http, &a, "echo.wasm");
    for node in [&a, &b] {
        wait_until("echo on every host", Duration::from_secs(30), || {
            greeting(&http, node).contains("/hello") && !greeting(&http, node).contains("world")
        });
    }

    // Rolled back through b: both hosts serve the first version again.
    let response = http
        .post(b.admin_url("/components/hello/rollback"))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().unwrap());
    for node in [&a, &b] {
        wait_until(
            "the rollback on every host",
            Duration::from_secs(30),
            || greeting(&http, node) == "Hello, world!\n",
        );
    }
    assert!(
        b.log().contains("published a rollback of hello"),
        "{}",
        b.log()
    );
}
