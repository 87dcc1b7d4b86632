//! Services calling each other through typed WIT interfaces and the generic
//! `services.call`, and keeping their own data in the key-value store.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Hive, client, demo_components, deploy_atomically, install, test_components};
use serde_json::{Value, json};

fn put_json(hive: &Hive, path: &str, body: Value) -> (u16, Value) {
    let response = client().put(hive.url(path)).json(&body).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn post_json(hive: &Hive, path: &str, body: Value) -> (u16, Value) {
    let response = client().post(hive.url(path)).json(&body).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn get_json(hive: &Hive, path: &str) -> (u16, Value) {
    let response = client().get(hive.url(path)).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// A folder with the three shop services.
fn shop_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["users", "inventory", "orders"] {
        install(demo_components(), name, dir.path());
    }
    dir
}

fn stock_the_shop(hive: &Hive) {
    let (status, _) = put_json(
        hive,
        "/users/ana",
        json!({"name": "Ana", "email": "ana@example.com"}),
    );
    assert_eq!(status, 201);
    let (status, _) = put_json(hive, "/inventory/apple", json!({"count": 5}));
    assert_eq!(status, 200);
}

#[test]
fn orders_calls_users_and_inventory_through_typed_interfaces() {
    let dir = shop_dir();
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&[
        "orders.wasm linked",
        "shop:users/directory@0.1.0 from users.wasm",
    ]);
    stock_the_shop(&hive);

    let (status, order) = post_json(
        &hive,
        "/orders",
        json!({"user": "ana", "sku": "apple", "quantity": 2}),
    );
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["user"]["name"], "Ana");
    assert_eq!(order["remaining"], 3);
    let id = order["id"].as_i64().unwrap();

    let (status, stored) = get_json(&hive, &format!("/orders/{id}"));
    assert_eq!(status, 200);
    assert_eq!(stored["sku"], "apple");
    let (_, stock) = get_json(&hive, "/inventory/apple");
    assert_eq!(stock["count"], 3);

    // The typed calls carry errors as values, not traps.
    let (status, missing) = post_json(
        &hive,
        "/orders",
        json!({"user": "bob", "sku": "apple", "quantity": 1}),
    );
    assert_eq!(status, 404, "{missing}");
    let (status, short) = post_json(
        &hive,
        "/orders",
        json!({"user": "ana", "sku": "apple", "quantity": 10}),
    );
    assert_eq!(status, 409, "{short}");
    let (_, stock) = get_json(&hive, "/inventory/apple");
    assert_eq!(stock["count"], 3, "a refused order must not take stock");
}

#[test]
fn the_generic_call_reaches_a_service_by_name() {
    let dir = shop_dir();
    install(test_components(), "relay", dir.path());
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    stock_the_shop(&hive);

    // orders -> services.call("users", GET /users/ana)
    let (_, order) = post_json(
        &hive,
        "/orders",
        json!({"user": "ana", "sku": "apple", "quantity": 1}),
    );
    let (status, customer) = get_json(&hive, &format!("/orders/{}/customer", order["id"]));
    assert_eq!(status, 200, "{customer}");
    assert_eq!(customer["email"], "ana@example.com");

    // relay forwards any request; params are filled from the callee's routes.
    let body = client()
        .get(hive.url("/relay/hello/hello/zed"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "Hello, zed!\n");
    let (status, error) = get_json(&hive, "/relay/nobody/x");
    assert_eq!(status, 404);
    assert_eq!(error["error"], "not-found");
}

#[test]
fn calls_between_services_honour_the_callees_instance_reuse() {
    let dir = shop_dir();
    install(test_components(), "relay", dir.path());
    install(demo_components(), "hello", dir.path());
    for callee in ["hello", "users"] {
        let manifest = dir.path().join(format!("{callee}.toml"));
        let mut text = std::fs::read_to_string(&manifest).unwrap();
        text.push_str("\n[limits]\ninstance-reuse = 5\n");
        std::fs::write(&manifest, text).unwrap();
    }
    let hive = Hive::start(dir.path(), &[]);
    stock_the_shop(&hive);
    let http = client();

    // Ten generic calls (relay -> services.call("hello", ...)).
    for i in 0..10 {
        let body = http
            .get(hive.url(&format!("/relay/hello/hello/n{i}")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(body, format!("Hello, n{i}!\n"));
    }
    // Nine typed calls (orders -> shop:users/directory.get-user).
    for _ in 0..9 {
        let (status, order) = post_json(
            &hive,
            "/orders",
            json!({"user": "ana", "sku": "apple", "quantity": 1}),
        );
        // The shop has 5 apples: the rest are refused after the lookup.
        assert!(status == 201 || status == 409, "{status} {order}");
    }
    let metrics = hive.metrics();
    // The callers take a fresh instance per request; the callees serve five
    // calls per instance: 10 calls -> 2 instances of hello; the shop's one
    // PUT plus 9 typed calls -> 2 instances of users.
    for expected in [
        r#"hive_instantiations_total{component="relay"} 10"#,
        r#"hive_instantiations_total{component="hello"} 2"#,
        r#"hive_instantiations_total{component="users"} 2"#,
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
}

#[test]
fn a_caller_waits_for_a_missing_provider_and_links_when_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "orders", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["orders.wasm is waiting", "shop:"]);
    let response = client()
        .post(hive.url("/orders"))
        .json(&json!({"user": "ana", "sku": "apple", "quantity": 1}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().unwrap();
    assert_eq!(body["kind"], "waiting");
    assert!(body["reason"].as_str().unwrap().contains("shop:"), "{body}");

    for name in ["users", "inventory"] {
        // The manifest first, so the service never serves without its routes.
        let toml = demo_components().join(format!("{name}.toml"));
        if toml.exists() {
            deploy_atomically(
                dir.path(),
                &format!("{name}.toml"),
                &std::fs::read(toml).unwrap(),
            );
        }
        let bytes = std::fs::read(demo_components().join(format!("{name}.wasm"))).unwrap();
        deploy_atomically(dir.path(), &format!("{name}.wasm"), &bytes);
    }
    hive.wait_for_log(&["orders.wasm linked"]);
    stock_the_shop(&hive);
    let (status, order) = post_json(
        &hive,
        "/orders",
        json!({"user": "ana", "sku": "apple", "quantity": 1}),
    );
    assert_eq!(status, 201, "{order}");

    // Removing a provider puts the caller back to waiting.
    std::fs::remove_file(dir.path().join("users.wasm")).unwrap();
    hive.wait_for_log_count(&["orders.wasm is waiting"], 2);
    let (status, _) = post_json(
        &hive,
        "/orders",
        json!({"user": "ana", "sku": "apple", "quantity": 1}),
    );
    assert_eq!(status, 503);
}

#[test]
fn replacing_a_provider_under_load_fails_no_call() {
    let dir = shop_dir();
    let hive = Arc::new(Hive::start(dir.path(), &[]));
    stock_the_shop(&hive);
    let (status, _) = put_json(&hive, "/inventory/apple", json!({"count": 100000}));
    assert_eq!(status, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..3 {
        let (hive, stop) = (hive.clone(), stop.clone());
        load.push(thread::spawn(move || {
            let mut statuses = Vec::new();
            // Bounded by the swaps finishing, or 3,000 orders.
            while !stop.load(Ordering::Relaxed) && statuses.len() < 3000 {
                let (status, _) = post_json(
                    &hive,
                    "/orders",
                    json!({"user": "ana", "sku": "apple", "quantity": 1}),
                );
                statuses.push(status);
            }
            statuses
        }));
    }
    let users = std::fs::read(demo_components().join("users.wasm")).unwrap();
    for round in 0..5 {
        // A byte-different build each time: a trailing custom section.
        let mut version = users.clone();
        let name = format!("v{round}");
        version.extend_from_slice(&[0, name.len() as u8 + 1, name.len() as u8]);
        version.extend_from_slice(name.as_bytes());
        deploy_atomically(dir.path(), "users.wasm", &version);
        hive.wait_for_log_count(&["swapped in users.wasm"], round + 1);
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(!statuses.is_empty());
    let failed = statuses.iter().filter(|s| **s != 201).count();
    assert_eq!(
        failed,
        0,
        "{failed} of {} orders failed while users was swapped",
        statuses.len()
    );
}

#[test]
fn a_trap_in_the_callee_fails_the_caller_with_502_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "orders", dir.path());
    install(demo_components(), "inventory", dir.path());
    install(test_components(), "trap-directory", dir.path());
    // The stand-in directory must be granted, as any provider must.
    let manifest = dir.path().join("orders.toml");
    let granted = std::fs::read_to_string(&manifest).unwrap().replace(
        r#"calls = ["users", "inventory"]"#,
        r#"calls = ["trap-directory", "inventory"]"#,
    );
    assert!(granted.contains("trap-directory"), "{granted}");
    std::fs::write(&manifest, granted).unwrap();
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["orders.wasm linked"]);
    let (status, _) = put_json(&hive, "/inventory/apple", json!({"count": 5}));
    assert_eq!(status, 200);

    let response = client()
        .post(hive.url("/orders"))
        .json(&json!({"user": "boom", "sku": "apple", "quantity": 1}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 502);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().unwrap();
    assert_eq!(body["kind"], "callee_failed");
    assert_eq!(body["component"], "orders");
    assert_eq!(body["callee"], "trap-directory");
    hive.wait_for_log(&["trap-directory panicked on purpose"]);
    hive.wait_for_log(&["request failed", &id, "trap-directory"]);

    // The callee's failure was one request: the next call works.
    let (status, order) = post_json(
        &hive,
        "/orders",
        json!({"user": "ok", "sku": "apple", "quantity": 1}),
    );
    assert_eq!(status, 201, "{order}");
}

#[test]
fn call_depth_is_bounded_so_cycles_fail_fast() {
    let dir = tempfile::tempdir().unwrap();
    install(test_components(), "cycle-ping", dir.path());
    install(test_components(), "cycle-pong", dir.path());
    install(test_components(), "relay", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["cycle-ping.wasm linked"]);

    // A typed cycle: ping -> pong -> ping -> ...
    let (status, body) = get_json(&hive, "/cycle-ping");
    assert_eq!(status, 508, "{body}");
    assert_eq!(body["kind"], "call_depth_exceeded");

    // A generic-call cycle: relay calling itself.
    let path = format!("/relay{}", "/relay".repeat(20));
    let (status, body) = get_json(&hive, &path);
    assert_eq!(status, 508, "{body}");
    assert_eq!(body["error"], "depth-exceeded");
    assert_eq!(
        client()
            .get(hive.url("/cycle-pong"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

/// `name.wasm` as a copy of the kvtool test component.
fn install_kvtool(dir: &Path, name: &str) {
    std::fs::copy(
        test_components().join("kvtool.wasm"),
        dir.join(format!("{name}.wasm")),
    )
    .unwrap();
}

fn kv_put(hive: &Hive, path: &str, value: &[u8]) -> (u16, String) {
    let response = client()
        .put(hive.url(path))
        .body(value.to_vec())
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn kv_get(hive: &Hive, path: &str) -> (u16, String) {
    let response = client().get(hive.url(path)).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn each_service_sees_only_its_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    install_kvtool(dir.path(), "alpha");
    install_kvtool(dir.path(), "beta");
    let hive = Hive::start(dir.path(), &[]);

    assert_eq!(kv_put(&hive, "/alpha/color", b"red").0, 204);
    assert_eq!(kv_put(&hive, "/beta/other", b"x").0, 204);
    assert_eq!(kv_get(&hive, "/alpha/color"), (200, "red".to_string()));
    assert_eq!(kv_get(&hive, "/beta/color").0, 404);
    assert_eq!(
        kv_get(&hive, "/alpha/_keys?prefix="),
        (200, "color".to_string())
    );
    assert_eq!(
        kv_get(&hive, "/beta/_keys?prefix="),
        (200, "other".to_string())
    );

    // Counters are atomic per namespace.
    let http = client();
    for expected in 1..=3 {
        let text = http
            .post(hive.url("/alpha/hits?delta=1"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(text, expected.to_string());
    }
    // Limits come back as clear errors.
    let big = vec![b'x'; (1 << 20) + 1];
    let (status, text) = kv_put(&hive, "/alpha/big", &big);
    assert_eq!(status, 400);
    assert!(text.contains("ValueTooLarge"), "{text}");
    let long_key = "k".repeat(1025);
    let (status, text) = kv_put(&hive, &format!("/alpha/{long_key}"), b"v");
    assert_eq!(status, 400);
    assert!(text.contains("InvalidKey"), "{text}");
}

#[test]
fn data_survives_a_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap();
    install_kvtool(dir.path(), "store");

    let hive = Hive::start(dir.path(), &["--data", data_arg]);
    assert_eq!(kv_put(&hive, "/store/graceful", b"kept").0, 204);
    assert!(hive.terminate().success());

    let hive = Hive::start(dir.path(), &["--data", data_arg]);
    assert_eq!(kv_get(&hive, "/store/graceful"), (200, "kept".to_string()));
    // Acknowledged writes, then the host is killed without warning. The
    // pause lets the store commit the first half to its database file (a
    // checkpoint), so the second half is only in its write log.
    for i in 0..20 {
        if i == 10 {
            thread::sleep(Duration::from_millis(500));
        }
        assert_eq!(
            kv_put(&hive, &format!("/store/k{i}"), i.to_string().as_bytes()).0,
            204
        );
    }
    let killed = Command::new("kill")
        .args(["-KILL", &hive.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{}", hive.pid())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", hive.pid()))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(Instant::now() < deadline, "kill -9 did not take");
        thread::sleep(Duration::from_millis(20));
    }
    drop(hive);

    let hive = Hive::start(dir.path(), &["--data", data_arg]);
    for i in 0..20 {
        assert_eq!(kv_get(&hive, &format!("/store/k{i}")), (200, i.to_string()));
    }
}
