//! WASI 0.3 (`wasi:http/service`) components, built with the Rust
//! registry's `wasip3` crate: deployed by dropping the `.wasm` into the
//! folder, served beside 0.2 and Hive-world components, swapped live, and
//! contained when hostile.

mod common;

use std::time::{Duration, Instant};

use common::{Hive, client, demo_components, deploy_atomically, install, test_components};
use serde_json::Value;

fn component(from: &std::path::Path, name: &str) -> Vec<u8> {
    std::fs::read(from.join(format!("{name}.wasm"))).unwrap()
}

fn get(hive: &Hive, path: &str) -> (u16, String) {
    let response = client().get(hive.url(path)).send().unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

#[test]
fn a_wasip3_component_deploys_by_dropping_its_wasm_and_serves_beside_the_others() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(demo_components(), "hello-http", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    std::fs::copy(
        demo_components().join("hello-p3.toml"),
        dir.path().join("hello-p3.toml"),
    )
    .unwrap();
    deploy_atomically(
        dir.path(),
        "hello-p3.wasm",
        &component(demo_components(), "hello-p3"),
    );
    hive.wait_for_log(&["loaded hello-p3.wasm", "world=wasi:http/service@0.3"]);

    assert_eq!(
        get(&hive, "/hello-p3?name=ana"),
        (200, "Hello, ana!\n".into())
    );
    let echoed = client()
        .post(hive.url("/hello-p3/echo"))
        .body(vec![7u8; 3 << 20])
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(echoed.len() == 3 << 20 && echoed.iter().all(|b| *b == 7));
    // The other worlds, in the same host, unaffected.
    assert_eq!(get(&hive, "/hello?name=bo"), (200, "Hello, bo!\n".into()));
    assert_eq!(
        get(&hive, "/hello-http?name=cy"),
        (200, "Hello, cy!\n".into())
    );

    let listing: Value = client()
        .get(hive.admin_url("/components"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let p3 = listing["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hello-p3")
        .unwrap();
    assert_eq!(p3["world"], "wasi:http/service@0.3");
    hive.wait_for_log(&["request", "component=hello-p3", "status=200", "failure=-"]);
}

#[test]
fn a_p3_component_is_swapped_live() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("svc.toml"), "routes = [\"/svc/...\"]\n").unwrap();
    deploy_atomically(
        dir.path(),
        "svc.wasm",
        &component(test_components(), "hostile-p3"),
    );
    let hive = Hive::start(dir.path(), &[]);
    assert_eq!(get(&hive, "/svc/ok"), (200, "ok".into()));
    // Another p3 component under the same name: served from the swap on.
    deploy_atomically(
        dir.path(),
        "svc.wasm",
        &component(demo_components(), "hello-p3"),
    );
    hive.wait_for_log(&["swapped in svc.wasm"]);
    let (status, body) = get(&hive, "/svc/ok");
    assert_eq!(status, 404);
    assert_eq!(body, "nothing at /svc/ok\n");
}

/// A host serving the demo `hello` and `hostile-p3` with `manifest`.
fn hello_beside_hostile_p3(manifest: &str) -> (tempfile::TempDir, Hive) {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(test_components(), "hostile-p3", dir.path());
    std::fs::write(dir.path().join("hostile-p3.toml"), manifest).unwrap();
    let hive = Hive::start(dir.path(), &[]);
    (dir, hive)
}

/// Sends GET `path` from a thread; the thread returns the status and how
/// long the answer took.
fn timed_get_in_background(hive: &Hive, path: &str) -> std::thread::JoinHandle<(u16, Duration)> {
    let url = hive.url(path);
    std::thread::spawn(move || {
        let started = Instant::now();
        let status = client().get(url).send().unwrap().status().as_u16();
        (status, started.elapsed())
    })
}

/// Asserts that hostile-p3 has failures of each of `kinds` counted.
fn assert_failures_counted(hive: &Hive, kinds: &[&str]) {
    let metrics = hive.metrics();
    for kind in kinds {
        assert!(
            metrics.contains(&format!(
                r#"hive_failures_total{{component="hostile-p3",kind="{kind}"}}"#
            )),
            "{kind}: {metrics}"
        );
    }
}

#[test]
fn a_hostile_p3_component_is_contained_and_its_neighbours_serve() {
    let (_dir, hive) = hello_beside_hostile_p3("[limits]\ntimeout-ms = 800\ninstance-reuse = 5\n");

    // A guest that never yields gets its deadline all the same.
    let looping = timed_get_in_background(&hive, "/hostile-p3/loop");
    // Meanwhile the neighbours answer.
    for _ in 0..5 {
        assert_eq!(get(&hive, "/hello").0, 200);
    }
    let (status, took) = looping.join().unwrap();
    assert_eq!(status, 504);
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A trap after the head: the body breaks off, the failure is logged,
    // and the instance is not reused.
    let response = client()
        .get(hive.url("/hostile-p3/trap-mid-stream"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().is_err(), "a trapped body arrived whole");
    hive.wait_for_log(&["request", "component=hostile-p3", "failure=trap"]);

    // A body over the limit is cut off, not sent whole.
    let huge = client()
        .get(hive.url("/hostile-p3/huge?mib=32"))
        .send()
        .unwrap();
    assert!(huge.bytes().is_err(), "a 32 MiB body passed a 16 MiB limit");

    // Still serving, reusing a healthy instance.
    assert_eq!(get(&hive, "/hostile-p3/ok"), (200, "ok".into()));
    let (_, first) = get(&hive, "/hostile-p3/count");
    let (_, second) = get(&hive, "/hostile-p3/count");
    let (first, second): (u64, u64) = (first.parse().unwrap(), second.parse().unwrap());
    assert_eq!(second, first + 1, "instance-reuse should keep the instance");
    assert_eq!(get(&hive, "/hello").0, 200);
    assert_failures_counted(&hive, &["timeout", "trap"]);
}

/// Sends GET `path` from a thread, for requests that must be in flight
/// together; the thread returns the status and body (`None` if the body
/// broke off).
fn get_in_background(hive: &Hive, path: &str) -> std::thread::JoinHandle<(u16, Option<String>)> {
    let url = hive.url(path);
    std::thread::spawn(move || {
        let response = client().get(url).send().unwrap();
        let status = response.status().as_u16();
        (status, response.text().ok())
    })
}

#[test]
fn p3_instances_opted_into_concurrency_serve_requests_together_and_fail_together() {
    let (_dir, hive) =
        hello_beside_hostile_p3("[limits]\ntimeout-ms = 3000\ninstance-concurrency = 8\n");

    // While one request waits on the clock, its instance takes the next:
    // the second request is that instance's second.
    let sleeping = get_in_background(&hive, "/hostile-p3/sleep?ms=2000");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get(&hive, "/hostile-p3/count"), (200, "2".into()));
    assert!(
        !sleeping.is_finished(),
        "the two requests were not in flight together"
    );
    assert_eq!(
        sleeping.join().unwrap(),
        (200, Some("slept 2000 ms".into()))
    );

    // A trap after one request's head fails every request on the instance:
    // that body breaks off, and the request still waiting gets the trap.
    let waiting = get_in_background(&hive, "/hostile-p3/sleep?ms=2500");
    std::thread::sleep(Duration::from_millis(500));
    let trapped = client()
        .get(hive.url("/hostile-p3/trap-mid-stream"))
        .send()
        .unwrap();
    assert_eq!(trapped.status(), 200);
    assert!(trapped.bytes().is_err(), "a trapped body arrived whole");
    let (status, body) = waiting.join().unwrap();
    assert_eq!(status, 500, "{body:?}");
    let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(body["kind"], "trap", "{body}");
    hive.wait_for_log(&["a shared instance failed", "component=hostile-p3"]);

    // A guest that spins gets its deadline; the instance goes with it and
    // the neighbours serve meanwhile.
    let looping = timed_get_in_background(&hive, "/hostile-p3/loop");
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        assert_eq!(get(&hive, "/hello").0, 200);
    }
    let (status, took) = looping.join().unwrap();
    assert_eq!(status, 504);
    assert!(took < Duration::from_secs(10), "{took:?}");

    // A new instance serves the next request.
    assert_eq!(get(&hive, "/hostile-p3/count"), (200, "1".into()));
    assert_failures_counted(&hive, &["timeout", "trap"]);
}

#[test]
fn instance_concurrency_on_a_component_that_is_not_wasi_0_3_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    std::fs::write(
        dir.path().join("hello.toml"),
        "[limits]\ninstance-concurrency = 4\n",
    )
    .unwrap();
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&[
        "hello.toml",
        "instance-concurrency",
        "only to wasi:http 0.3",
    ]);
    assert_eq!(get(&hive, "/hello").0, 404);
}

#[test]
fn prewarm_beside_instance_concurrency_is_refused_in_a_manifest_and_skipped_from_the_host() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(demo_components(), "hello-p3", dir.path());
    std::fs::write(
        dir.path().join("hello-p3.toml"),
        "routes = [\"/hello-p3\", \"/hello-p3/...\"]\n[limits]\ninstance-concurrency = 4\nprewarm = 2\n",
    )
    .unwrap();
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["hello-p3.toml", "`prewarm`", "`instance-concurrency`"]);
    assert_eq!(get(&hive, "/hello-p3").0, 404);
    assert_eq!(get(&hive, "/hello?name=x").0, 200);
    drop(hive);

    // The same service with only a host-wide prewarm serves, sharing its
    // instances as asked.
    std::fs::write(
        dir.path().join("hello-p3.toml"),
        "routes = [\"/hello-p3\", \"/hello-p3/...\"]\n[limits]\ninstance-concurrency = 4\n",
    )
    .unwrap();
    let hive = Hive::start(dir.path(), &["--prewarm", "2"]);
    assert_eq!(
        get(&hive, "/hello-p3?name=ana"),
        (200, "Hello, ana!\n".into())
    );
}
