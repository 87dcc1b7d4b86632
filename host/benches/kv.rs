//! The embedded key-value store's own durable write rate, in process: 16
//! writers setting fresh keys at once through `KvStore::set`, each answered
//! only once its write is on disk (group-committed through the write log),
//! with no HTTP and no Wasm around it. This is the figure to hold against Redis
//! with `appendfsync always` (`redis-benchmark -t set -c 16`, which
//! `bench/kv.sh` runs) on the same machine: both are a store's writes,
//! where the shop's `PUT /users/:id` is a whole request.
//!
//! Run with `cargo bench -p hive --bench kv`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive::bench::{KvStore, RedbStore};

/// Writers at once, as wrk's 16 connections in `bench/kv.sh`.
const WRITERS: u64 = 16;

/// The shop's user document, the value `PUT /users/:id` stores.
const VALUE: &[u8] = br#"{"id":"u1","name":"Bench","email":"bench@example.com"}"#;

fn durable_writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path()).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every write a new key, as every PUT in bench/kv.sh is a new user.
    let keys = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("kv_store");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("durable_set_16_writers", |b| {
        b.iter_custom(|iters| {
            let each = iters.div_ceil(WRITERS);
            let elapsed = runtime.block_on(async {
                let began = Instant::now();
                let writers: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        let (store, keys) = (store.clone(), keys.clone());
                        tokio::spawn(async move {
                            for _ in 0..each {
                                let key = format!("u{}", keys.fetch_add(1, Ordering::Relaxed));
                                store.set("users", &key, VALUE).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for writer in writers {
                    writer.await.unwrap();
                }
                began.elapsed()
            });
            // Criterion asked for `iters` writes; the writers made a few more.
            elapsed.mul_f64(iters as f64 / (each * WRITERS) as f64)
        })
    });
    group.finish();
}

criterion_group!(benches, durable_writes);
criterion_main!(benches);
