//! Microbenchmarks of the host's own work, in process:
//!
//! - `instantiate_and_handle`: a fresh instance plus one call, for `hello` in
//!   Hive's world and `hello-http` in the wasi:http world;
//! - `reused_instance`: one call of `hello` on an instance kept from the
//!   previous call (`instance-reuse`), everything around it included
//!   (concurrency slot, deadline, metrics), HTTP left out;
//! - `routing`: one lookup among 1,000 routes;
//! - `conversion`: HTTP <-> WIT request and response with 1 MiB bodies.
//!
//! Run with `cargo bench -p hive --bench host`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive::bench::{
    FailureMark, Request, Response, Router, invoke_hive_world, run_wasi_http, to_http_response,
    to_wit_request,
};
use hive::{EngineSettings, Host, HostSettings, KvBackend, Limits};
use http_body_util::{BodyExt, Empty};

fn start_host() -> (tempfile::TempDir, Arc<Host>) {
    start_host_with(Limits::default())
}

fn start_host_with(limits: Limits) -> (tempfile::TempDir, Arc<Host>) {
    let dir = tempfile::tempdir().unwrap();
    let services = dir.path().join("services");
    std::fs::create_dir_all(&services).unwrap();
    common::install(common::demo_components(), "hello", &services);
    common::install(common::demo_components(), "hello-http", &services);
    let host = Host::start(&HostSettings {
        dir: services,
        strict: true,
        engine: EngineSettings::default(),
        limits,
        cache_dir: None,
        kv: KvBackend::Embedded(dir.path().join("data")),
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

fn instantiate_and_handle(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_dir, host) = runtime.block_on(async { start_host() });
    let hello = host.service("hello").unwrap();
    let hello_http = host.service("hello-http").unwrap();
    let request_id: Arc<str> = Arc::from("bench");

    let mut group = c.benchmark_group("instantiate_and_handle");
    group.bench_function("hive_world_hello", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = hello_request();
            let response = invoke_hive_world(&host.runtime, &hello, &request_id, &request)
                .await
                .expect("hello answered");
            assert_eq!(response.body, b"Hello, world!\n");
        })
    });
    group.bench_function("wasi_http_hello", |b| {
        b.to_async(&runtime).iter(|| async {
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
    c.bench_function("reused_instance/hive_world_hello", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = invoke_hive_world(&host.runtime, &hello, &request_id, &request)
                .await
                .expect("hello answered");
            assert_eq!(response.body, b"Hello, world!\n");
        })
    });
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
    reused_instance,
    routing,
    conversion
);
criterion_main!(benches);
