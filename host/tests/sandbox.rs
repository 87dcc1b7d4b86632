//! Limits and fault isolation: a failing or hostile component gets a clear
//! error and never hurts the host or its neighbours.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Hive, client, demo_components, install, test_components};
use serde_json::Value;

/// A folder with `hello` and `hostile`, plus `hostile.toml` if given.
fn hostile_dir(manifest: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(test_components(), "hostile", dir.path());
    if let Some(manifest) = manifest {
        std::fs::write(dir.path().join("hostile.toml"), manifest).unwrap();
    }
    dir
}

/// GETs `path`, returning status, the x-request-id and the JSON body (or
/// `Value::Null` for a non-JSON body).
fn get(hive: &Hive, path: &str) -> (u16, String, Value) {
    let response = client().get(hive.url(path)).send().unwrap();
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.json().unwrap_or(Value::Null);
    (status, id, body)
}

/// Asserts `path` fails with `status` and `kind`, that the failure is logged
/// under the same error id with the component's name, and that the component
/// serves its next request normally.
fn assert_fails_then_recovers(hive: &Hive, path: &str, status: u16, kind: &str) -> String {
    let (got, id, body) = get(hive, path);
    assert_eq!(got, status, "{path}: {body}");
    assert_eq!(body["kind"], kind, "{path}: {body}");
    assert_eq!(body["error_id"], id.as_str());
    assert_eq!(body["component"], "hostile");
    let line = hive.wait_for_log(&["request failed", &id]);
    assert!(line.contains("component=hostile"), "{line}");
    assert!(line.contains(&format!("kind={kind}")), "{line}");

    let (after, _, _) = get(hive, "/hostile/ok");
    assert_eq!(after, 200, "hostile did not recover after {path}");
    line
}

#[test]
fn a_panic_is_a_500_logged_with_trap_and_backtrace() {
    let dir = hostile_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let line = assert_fails_then_recovers(&hive, "/hostile/panic", 500, "trap");
    assert!(line.contains("unreachable"), "{line}");
    assert!(
        line.contains("backtrace=") && line.contains("hostile"),
        "{line}"
    );
    hive.wait_for_log(&["hostile component panicked on purpose", "component=hostile"]);
}

#[test]
fn an_endless_loop_is_interrupted_with_504() {
    let dir = hostile_dir(Some("[limits]\ntimeout-ms = 300"));
    let hive = Hive::start(dir.path(), &[]);
    let line = assert_fails_then_recovers(&hive, "/hostile/loop", 504, "timeout");
    assert!(line.contains("interrupt"), "{line}");
}

#[test]
fn waiting_in_a_host_call_past_the_deadline_is_a_504_too() {
    let dir = hostile_dir(Some("[limits]\ntimeout-ms = 300"));
    let hive = Hive::start(dir.path(), &[]);
    assert_fails_then_recovers(&hive, "/hostile/sleep?ms=60000", 504, "timeout");
}

#[test]
fn unbounded_allocation_hits_the_memory_limit_with_500() {
    let dir = hostile_dir(Some("[limits]\nmemory-mib = 16"));
    let hive = Hive::start(dir.path(), &[]);
    assert_fails_then_recovers(&hive, "/hostile/alloc", 500, "out_of_memory");
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_500() {
    let dir = hostile_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    assert_fails_then_recovers(&hive, "/hostile/recurse", 500, "stack_overflow");
}

#[test]
fn a_response_over_the_limit_is_a_500() {
    let dir = hostile_dir(Some("[limits]\nresponse-body-kib = 1024"));
    let hive = Hive::start(dir.path(), &[]);
    assert_fails_then_recovers(&hive, "/hostile/huge?mib=2", 500, "response_too_large");
    let body = client()
        .get(hive.url("/hostile/huge?mib=1"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(body.len(), 1 << 20);
}

#[test]
fn host_wide_limits_come_from_the_config_file_and_flags_override_it() {
    let dir = hostile_dir(None);
    let config = dir.path().join("hive-config.toml");
    std::fs::write(&config, "[limits]\ntimeout-ms = 60000\nmemory-mib = 16\n").unwrap();
    // The flag wins over the file's 60 s timeout; the file's memory limit holds.
    let hive = Hive::start(
        dir.path(),
        &["--config", config.to_str().unwrap(), "--timeout-ms", "300"],
    );
    assert_fails_then_recovers(&hive, "/hostile/loop", 504, "timeout");
    assert_fails_then_recovers(&hive, "/hostile/alloc", 500, "out_of_memory");
}

#[test]
fn excess_concurrent_requests_get_503_with_retry_after() {
    let dir = hostile_dir(Some("[limits]\nconcurrency = 1\nqueue-timeout-ms = 100"));
    let hive = Hive::start(dir.path(), &[]);
    let slow_url = hive.url("/hostile/sleep?ms=3000");
    let slow = thread::spawn(move || client().get(slow_url).send().unwrap().status());
    // Keep asking until the slow request holds the only slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rejected = loop {
        let response = client().get(hive.url("/hostile/ok")).send().unwrap();
        if response.status() == 503 {
            break response;
        }
        assert!(Instant::now() < deadline, "never saw a 503");
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(rejected.headers()["retry-after"], "1");
    let body: Value = rejected.json().unwrap();
    assert_eq!(body["kind"], "overloaded");
    assert_eq!(slow.join().unwrap(), 200);
    // With the slot free again, the same request succeeds.
    assert_eq!(get(&hive, "/hostile/ok").0, 200);
    // Other services were never limited by hostile's queue.
    assert_eq!(get(&hive, "/hello").0, 200);
}

#[test]
fn files_environment_and_sockets_are_denied() {
    let dir = hostile_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let http = client();

    let files = http
        .get(hive.url("/hostile/file"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!files.contains("ALLOWED"), "{files}");
    assert_eq!(files.matches("denied").count(), 3, "{files}");
    assert!(!std::path::Path::new("/tmp/hive-hostile-was-here").exists());

    let env = http
        .get(hive.url("/hostile/env"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(env.contains("vars: 0\n"), "{env}");
    assert!(env.contains("PATH: denied"), "{env}");
    assert!(env.contains("args: 0\n"), "{env}");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket = http
        .get(hive.url(&format!("/hostile/socket?port={port}")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(socket.contains("connect: denied"), "{socket}");
    assert!(
        listener.accept().is_err(),
        "the component reached a socket on the host"
    );
}

#[test]
fn guest_output_is_capped_per_request() {
    let dir = hostile_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let response = client()
        .get(hive.url("/hostile/print?lines=100000"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    hive.wait_for_log(&["output beyond", "dropped", "component=hostile"]);
    let lines = hive.logs().matches("line ").count();
    assert!(lines < 20_000, "{lines} guest lines logged");
}

#[test]
fn oversized_request_heads_get_431() {
    let dir = hostile_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let mut stream = TcpStream::connect(hive.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let big = "a".repeat(100 * 1024);
    let _ = write!(
        stream,
        "GET /hello HTTP/1.1\r\nHost: t\r\nx-big: {big}\r\n\r\n"
    );
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert_eq!(get(&hive, "/hello").0, 200);
}

#[test]
fn slow_request_heads_are_cut_off() {
    let dir = hostile_dir(None);
    let hive = Hive::start(dir.path(), &["--header-read-timeout-ms", "300"]);
    let mut stream = TcpStream::connect(hive.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // Never finish the head; the host must close the connection by itself.
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(closed.is_ok(), "connection not closed: {closed:?}");
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(get(&hive, "/hello").0, 200);
}

#[test]
fn a_client_that_disconnects_cancels_the_guest() {
    let dir = hostile_dir(Some("[limits]\ntimeout-ms = 60000"));
    let hive = Hive::start(dir.path(), &[]);
    let mut stream = TcpStream::connect(hive.address()).unwrap();
    stream
        .write_all(b"GET /hostile/loop HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    drop(stream);
    hive.wait_for_log(&["client went away", "component=hostile"]);
    assert_eq!(get(&hive, "/hostile/ok").0, 200);
}

#[test]
fn shutdown_lets_in_flight_requests_finish_and_exits_zero() {
    let dir = hostile_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let url = hive.url("/hostile/sleep?ms=1500");
    let in_flight = thread::spawn(move || {
        let response = client().get(url).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    });
    thread::sleep(Duration::from_millis(400));
    let status = hive.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(in_flight.join().unwrap(), (200, "slept".to_string()));
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

#[test]
fn steady_load_survives_a_hostile_storm_and_memory_returns() {
    let dir = hostile_dir(Some("[limits]\ntimeout-ms = 500\nconcurrency = 8"));
    let hive = Hive::start(dir.path(), &[]);
    // Warm up so the baseline includes what serving itself needs.
    for _ in 0..50 {
        assert_eq!(get(&hive, "/hello").0, 200);
    }
    let baseline = rss_kib(hive.pid());

    let storm_over = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let url = hive.url("/hello?name=load");
        let stop = storm_over.clone();
        let served = served.clone();
        load.push(thread::spawn(move || {
            let http = client();
            let mut failures = Vec::new();
            // Bounded: stops when the storm ends, or after 2,000 requests.
            for _ in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match http.get(&url).send() {
                    Ok(r) if r.status() == 200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(err) => failures.push(err.to_string()),
                }
            }
            failures
        }));
    }

    let hostile = [
        "/hostile/loop",
        "/hostile/alloc",
        "/hostile/recurse",
        "/hostile/panic",
        "/hostile/huge?mib=8",
        "/hostile/sleep?ms=2000",
    ];
    let mut storm = Vec::new();
    for round in 0..3 {
        for path in hostile {
            let url = hive.url(path);
            storm.push(thread::spawn(move || {
                let status = client().get(url).send().unwrap().status().as_u16();
                (round, status)
            }));
        }
    }
    let statuses: Vec<u16> = storm.into_iter().map(|t| t.join().unwrap().1).collect();
    storm_over.store(true, Ordering::Relaxed);
    let failures: Vec<String> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();

    assert!(
        failures.is_empty(),
        "hello failed under the storm: {failures:?}"
    );
    assert!(served.load(Ordering::Relaxed) > 0);
    // Every hostile request got an answer, and none of them a 2xx except huge.
    assert_eq!(statuses.len(), 18);
    assert!(
        statuses.iter().all(|s| [200, 500, 503, 504].contains(s)),
        "{statuses:?}"
    );

    // Memory comes back: the pool decommits each instance's memory on drop.
    thread::sleep(Duration::from_millis(500));
    let after = rss_kib(hive.pid());
    eprintln!("host RSS: baseline {baseline} KiB, after storm {after} KiB");
    assert!(
        after < baseline + 48 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
    assert_eq!(get(&hive, "/hostile/ok").0, 200);
}

#[test]
fn instances_are_fresh_per_request_unless_the_manifest_opts_into_reuse() {
    let fresh = hostile_dir(None);
    let hive = Hive::start(fresh.path(), &[]);
    let http = client();
    let count = |hive: &Hive| {
        http.get(hive.url("/hostile/count"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(count(&hive), "1", "state leaked between fresh instances");
    }
    drop(hive);

    let reused = hostile_dir(Some("[limits]\ninstance-reuse = 3\ntimeout-ms = 500"));
    let hive = Hive::start(reused.path(), &[]);
    let served: Vec<String> = (0..7).map(|_| count(&hive)).collect();
    assert_eq!(served, ["1", "2", "3", "1", "2", "3", "1"]);
    // A failed instance is never reused.
    assert_eq!(
        http.get(hive.url("/hostile/panic"))
            .send()
            .unwrap()
            .status(),
        500
    );
    assert_eq!(count(&hive), "1");
    // Reused instances still get their deadline every request.
    let (status, _, body) = get(&hive, "/hostile/sleep?ms=60000");
    assert_eq!(status, 504, "{body}");
    assert_eq!(count(&hive), "1");
}

/// The value of the counter `name` for `component` in a metrics text; 0
/// while the component has none.
fn counter(metrics: &str, name: &str, component: &str) -> u64 {
    let series = format!("{name}{{component=\"{component}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().unwrap())
}

/// Waits up to 60 s (a busy machine, a first cold run) for `hive`'s
/// metrics to satisfy `done`; returns them.
fn wait_for_metrics(hive: &Hive, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = hive.metrics();
        if done(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{metrics}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prewarmed_instances_are_made_ahead_and_each_still_serves_one_request() {
    let dir = hostile_dir(Some("[limits]\nprewarm = 2\ntimeout-ms = 2000"));
    let hive = Hive::start(dir.path(), &[]);
    let made = |metrics: &str| counter(metrics, "hive_instantiations_total", "hostile");
    // Two instances exist before any request asked for one.
    wait_for_metrics(&hive, "made two instances ahead", |m| made(m) == 2);

    let http = client();
    let count = || {
        let response = http.get(hive.url("/hostile/count")).send().unwrap();
        assert_eq!(response.status(), 200);
        response.text().unwrap()
    };
    for _ in 0..5 {
        assert_eq!(
            count(),
            "1",
            "an instance made ahead served a second request"
        );
        hive.wait_until_idle("hostile");
    }
    // Every instance made was used once or is in stock: five served, two
    // ready again, however many of the five had to be made on the spot.
    let metrics = wait_for_metrics(&hive, "topped the stock up to two", |m| made(m) == 7);
    let ahead = counter(&metrics, "hive_instances_prewarmed_total", "hostile");
    assert!(
        (1..=5).contains(&ahead),
        "the first request found two ready, yet {ahead} of 5 took one made ahead"
    );

    // A call that fails on one drops it; the next request gets another.
    let failed = http.get(hive.url("/hostile/panic")).send().unwrap();
    assert_eq!(failed.status(), 500);
    assert_eq!(count(), "1");
    // It still runs under its deadline, made ahead or not.
    let (status, _, body) = get(&hive, "/hostile/sleep?ms=60000");
    assert_eq!(status, 504, "{body}");
    assert_eq!(count(), "1");
    wait_for_metrics(&hive, "topped the stock up after the failures", |m| {
        made(m) == 11
    });
}
