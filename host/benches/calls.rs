//! One call between two services, made two ways on the same machine:
//!
//! - `typed_in_process`: `bench-caller` calls `test:bench/echo.ping` in
//!   `bench-echo` through a typed WIT import, linked by the host. Each call
//!   instantiates the callee afresh, as every call in Hive does.
//! - `http_loopback`: the same callee served by a second `hive` process,
//!   called over HTTP/1.1 with keep-alive on 127.0.0.1, as a network
//!   microservice would be. Its instance is also fresh per request.
//!
//! Run with `cargo bench -p hive --bench calls`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Hive, client, install, test_components};
use criterion::{Criterion, criterion_group, criterion_main};

fn service_calls(c: &mut Criterion) {
    let caller_dir = tempfile::tempdir().unwrap();
    install(test_components(), "bench-caller", caller_dir.path());
    install(test_components(), "bench-echo", caller_dir.path());
    // The same pair, the callee opted into instance reuse.
    let reuse_dir = tempfile::tempdir().unwrap();
    install(test_components(), "bench-caller", reuse_dir.path());
    install(test_components(), "bench-echo", reuse_dir.path());
    let manifest = reuse_dir.path().join("bench-echo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap_or_default();
    text.push_str("\n[limits]\ninstance-reuse = 1000000\n");
    std::fs::write(&manifest, text).unwrap();
    let callee_dir = tempfile::tempdir().unwrap();
    install(test_components(), "bench-echo", callee_dir.path());
    // Quiet logs: one line per request would dominate the HTTP figure.
    let caller = Hive::start_command("serve", caller_dir.path(), &[], &[]);
    let callee = Hive::start_command("serve", callee_dir.path(), &[], &[]);
    let reusing = Hive::start_command("serve", reuse_dir.path(), &[], &[]);
    caller.wait_for_log(&["bench-caller.wasm linked"]);
    reusing.wait_for_log(&["bench-caller.wasm linked"]);
    let http = client();

    let mut group = c.benchmark_group("service_call");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("typed_in_process", |b| {
        b.iter_custom(|iters| {
            let nanos: u64 = http
                .get(caller.url(&format!("/bench-caller?n={iters}")))
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.text())
                .expect("bench-caller answered")
                .parse()
                .expect("bench-caller reports nanoseconds");
            Duration::from_nanos(nanos)
        })
    });
    group.bench_function("typed_in_process_reused_callee", |b| {
        b.iter_custom(|iters| {
            let nanos: u64 = http
                .get(reusing.url(&format!("/bench-caller?n={iters}")))
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.text())
                .expect("bench-caller answered")
                .parse()
                .expect("bench-caller reports nanoseconds");
            Duration::from_nanos(nanos)
        })
    });
    group.bench_function("http_loopback", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for i in 0..iters {
                let body = http
                    .get(callee.url(&format!("/bench-echo?value={i}")))
                    .send()
                    .and_then(|r| r.error_for_status())
                    .and_then(|r| r.text())
                    .expect("bench-echo answered");
                assert_eq!(body, i.to_string());
            }
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, service_calls);
criterion_main!(benches);
