//! Microbenchmarks of the host's own work, in process:
//!
//! - `instantiate_and_handle`: a fresh instance plus one call, for `hello` in
//!   Hive's world and `hello-http` in the wasi:http world;
//! - `instantiate_and_handle/hive_world_hello_floor`: the same fresh
//!   instance and call with none of Hive's call path around it, the floor
//!   wasmtime sets;
//! - `typed_call_fresh`: a typed call to a fresh `bench-echo` from
//!   `bench-caller` through Hive, beside its floor (instantiate, call,
//!   drop);
//! - `reused_instance`: one call of `hello` on an instance kept from the
//!   previous call (`instance-reuse`), everything around it included
//!   (concurrency slot, deadline, metrics), HTTP left out, beside the same
//!   call on an instance the benchmark keeps itself (its floor);
//! - `routing`: one lookup among 1,000 routes;
//! - `conversion`: HTTP <-> WIT request and response with 1 MiB bodies.
//!
//! Run with `cargo bench -p hive --bench host`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive::bench::{
    FailureMark, Request, Response, Router, floor, invoke_hive_world, run_wasi_http,
    to_http_response, to_wit_request,
};
use hive::{EngineSettings, Host, HostPolicy, HostSettings, KvBackend, Limits, TraceSettings};
use http_body_util::{BodyExt, Empty};
use wasmtime::component::Val;

fn start_host() -> (tempfile::TempDir, Arc<Host>) {
    start_host_with(Limits::default())
}

fn start_host_with(limits: Limits) -> (tempfile::TempDir, Arc<Host>) {
    start_host_serving(
        limits,
        &[
            (common::demo_components(), "hello"),
            (common::demo_components(), "hello-http"),
        ],
    )
}

/// A host in process serving `components` (folder, name) with `limits`.
fn start_host_serving(
    limits: Limits,
    components: &[(&std::path::Path, &str)],
) -> (tempfile::TempDir, Arc<Host>) {
    let dir = tempfile::tempdir().unwrap();
    let services = dir.path().join("services");
    std::fs::create_dir_all(&services).unwrap();
    for (from, name) in components {
        common::install(from, name, &services);
    }
    let host = Host::start(&HostSettings {
        dir: services,
        strict: true,
        engine: EngineSettings::default(),
        limits,
        cache_dir: None,
        kv: KvBackend::Embedded(dir.path().join("data")),
        policy: HostPolicy::default(),
        traces: TraceSettings::default(),
    })
    .unwrap();
    (dir, host)
}

/// `GET /hello` as the `hello` service receives it.
fn hello_request() -> Request {
    Request {
        method: "GET".into(),
        path: "/hello".into(),
        query: None,
        headers: vec![],
        route: "/hello".into(),
        params: vec![],
        body: vec![],
    }
}

/// Runs `routine` `iters` times in one task on a worker of `runtime`,
/// yielding after each as a connection's task does between requests, and
/// returns the time taken. A request's fresh instance is torn down on a task
/// of its own; run like this, that task runs on the same thread between
/// calls, as in the server. Driven from `block_on` instead, it ran on the
/// other worker, and each call found a cold pool slot.
fn timed_on_worker<F, Fut>(runtime: &tokio::runtime::Runtime, iters: u64, routine: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    runtime
        .block_on(runtime.spawn(async move {
            let started = Instant::now();
            for _ in 0..iters {
                routine().await;
                tokio::task::yield_now().await;
            }
            started.elapsed()
        }))
        .expect("the benchmark task finished")
}

fn instantiate_and_handle(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_dir, host) = runtime.block_on(async { start_host() });
    let hello = host.service("hello").unwrap();
    let hello_http = host.service("hello-http").unwrap();
    let request_id: Arc<str> = Arc::from("bench");

    let mut group = c.benchmark_group("instantiate_and_handle");
    group.bench_function("hive_world_hello", |b| {
        b.iter_custom(|iters| {
            let (host, hello, request_id) = (host.clone(), hello.clone(), request_id.clone());
            timed_on_worker(&runtime, iters, move || {
                let (host, hello, request_id) = (host.clone(), hello.clone(), request_id.clone());
                async move {
                    let request = hello_request();
                    let response =
                        invoke_hive_world(&host.runtime, &hello, &request_id, None, &request)
                            .await
                            .expect("hello answered");
                    assert_eq!(response.body, b"Hello, world!\n");
                }
            })
        })
    });
    group.bench_function("hive_world_hello_floor", |b| {
        b.iter_custom(|iters| {
            let (host, hello) = (host.clone(), hello.clone());
            timed_on_worker(&runtime, iters, move || {
                let (host, hello) = (host.clone(), hello.clone());
                async move {
                    let request = hello_request();
                    let response = floor::handle(&host.runtime, &hello, &request)
                        .await
                        .expect("hello answered");
                    assert_eq!(response.body, b"Hello, world!\n");
                }
            })
        })
    });
    group.bench_function("wasi_http_hello", |b| {
        b.iter_custom(|iters| {
            let (host, hello_http, request_id) =
                (host.clone(), hello_http.clone(), request_id.clone());
            timed_on_worker(&runtime, iters, move || {
                let (host, hello_http, request_id) =
                    (host.clone(), hello_http.clone(), request_id.clone());
                async move {
                    let (sender, receiver) = tokio::sync::oneshot::channel();
                    let request = http::Request::get("http://localhost/hello-http")
                        .body(
                            Empty::<Bytes>::new()
                                .map_err(|never| -> wasmtime_wasi_http::Error { match never {} })
                                .boxed_unsync(),
                        )
                        .unwrap();
                    run_wasi_http(
                        &host.runtime,
                        &hello_http,
                        &request_id,
                        request,
                        sender,
                        FailureMark::default(),
                    )
                    .await
                    .expect("hello-http ran");
                    let response = receiver.await.unwrap().unwrap();
                    let body = response.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(&body[..], b"Hello, world!\n");
                }
            })
        })
    });
    group.finish();
}

fn typed_call_fresh(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let components = [
        (common::test_components(), "bench-caller"),
        (common::test_components(), "bench-echo"),
    ];
    let (_dir, host) =
        runtime.block_on(async { start_host_serving(Limits::default(), &components) });
    let caller = host.service("bench-caller").unwrap();
    let echo = host.service("bench-echo").unwrap();
    let request_id: Arc<str> = Arc::from("bench");

    let mut group = c.benchmark_group("typed_call_fresh");
    // `bench-caller` makes `iters` calls and reports the nanoseconds they
    // took inside the guest, as `--bench calls` does over HTTP.
    group.bench_function("through_hive", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (host, caller, request_id) = (&host, &caller, &request_id);
            async move {
                let mut request = hello_request();
                request.path = "/bench-caller".into();
                request.route = "/bench-caller".into();
                request.query = Some(format!("n={iters}"));
                let response = invoke_hive_world(&host.runtime, caller, request_id, None, &request)
                    .await
                    .expect("bench-caller answered");
                assert_eq!(
                    response.status,
                    200,
                    "{:?}",
                    String::from_utf8_lossy(&response.body)
                );
                let nanos: u64 = String::from_utf8_lossy(&response.body).parse().unwrap();
                Duration::from_nanos(nanos)
            }
        })
    });
    group.bench_function("floor", |b| {
        let mut value = 0u64;
        b.to_async(&runtime).iter(|| {
            value += 1;
            let (host, echo) = (&host, &echo);
            async move {
                let mut results = [Val::U64(0)];
                floor::call(
                    &host.runtime,
                    echo,
                    "test:bench/echo@0.1.0",
                    "ping",
                    &[Val::U64(value)],
                    &mut results,
                )
                .await
                .expect("bench-echo answered");
                assert!(matches!(results[0], Val::U64(got) if got == value));
            }
        })
    });
    group.finish();
}

fn reused_instance(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let limits = Limits {
        instance_reuse: 1_000_000,
        ..Limits::default()
    };
    let (_dir, host) = runtime.block_on(async { start_host_with(limits) });
    let hello = host.service("hello").unwrap();
    let request_id: Arc<str> = Arc::from("bench");
    let request = hello_request();
    let mut group = c.benchmark_group("reused_instance");
    group.bench_function("hive_world_hello", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = invoke_hive_world(&host.runtime, &hello, &request_id, None, &request)
                .await
                .expect("hello answered");
            assert_eq!(response.body, b"Hello, world!\n");
        })
    });
    // The same call on an instance kept by the benchmark itself: what
    // wasmtime's call costs without Hive's slot, deadline and metrics.
    let mut kept = runtime
        .block_on(floor::Kept::new(&host.runtime, &hello))
        .expect("hello instantiated");
    group.bench_function("hive_world_hello_floor", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let response = kept.handle(&hello, &request).await.expect("hello answered");
                    assert_eq!(response.body, b"Hello, world!\n");
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

fn routing(c: &mut Criterion) {
    let mut router = Router::new();
    for i in 0..334 {
        router
            .insert(format!("/svc{i}").parse().unwrap(), i)
            .unwrap();
        router
            .insert(format!("/svc{i}/...").parse().unwrap(), i)
            .unwrap();
        router
            .insert(format!("/api/v1/svc{i}/:id").parse().unwrap(), i)
            .unwrap();
    }
    assert!(router.len() >= 1000);
    let mut group = c.benchmark_group("routing");
    group.bench_function("1000_routes_param_match", |b| {
        b.iter(|| {
            let found = router.lookup(black_box("/api/v1/svc333/42")).unwrap();
            black_box(found.params.map_or(0, |params| params.len()))
        })
    });
    group.bench_function("1000_routes_prefix_match", |b| {
        b.iter(|| black_box(router.lookup(black_box("/svc200/a/b/c")).map(|m| *m.target)))
    });
    group.bench_function("1000_routes_miss", |b| {
        b.iter(|| black_box(router.lookup(black_box("/nothing/here")).is_none()))
    });
    group.finish();
}

fn conversion(c: &mut Criterion) {
    let body = Bytes::from(vec![b'x'; 1 << 20]);
    let (parts, ()) = http::Request::post("/echo/a?b=c")
        .header("content-type", "application/octet-stream")
        .header("x-request", "1")
        .body(())
        .unwrap()
        .into_parts();
    let mut group = c.benchmark_group("conversion");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("request_1MiB", |b| {
        b.iter(|| black_box(to_wit_request(&parts, body.clone(), "/echo/...", vec![])))
    });
    group.bench_function("response_1MiB", |b| {
        b.iter(|| {
            let response = Response {
                status: 200,
                headers: vec![("content-type".into(), "application/octet-stream".into())],
                body: body.to_vec(),
            };
            black_box(to_http_response(response).unwrap())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    instantiate_and_handle,
    typed_call_fresh,
    reused_instance,
    routing,
    conversion
);
criterion_main!(benches);
