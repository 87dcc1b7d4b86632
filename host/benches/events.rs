//! The event stores' own rates, in process, beside Redis Streams driven
//! directly by a native client on the same Redis in the same run:
//!
//! - durable publishes per second from 16 publishers at once (each
//!   answered only once its message is durable): the embedded store, Hive
//!   on Redis, and plain `XADD`;
//! - publish -> lease -> ack at full speed: 16 publishers and 4 consumers
//!   (each leasing up to 64 at a time and acking them all at once) running
//!   together, messages acked per second: the embedded store, Hive on
//!   Redis, and plain `XADD` + `XREADGROUP` + `XACK`;
//! - the same at a steady 500 messages a second (one publisher, paced),
//!   well under every side's capacity, for the p50 / p99 time from a
//!   publish's start to its ack (under full load that time is only the
//!   queue's length).
//!
//! No HTTP and no Wasm: `bench/events.py` measures the same through a host
//! and a real subscriber. Redis runs here with `appendonly yes` and
//! `appendfsync always`, as Hive recommends (so "durable" means the same on
//! both sides).
//!
//! Run with `cargo bench -p hive --bench events` (`EVENTS_BENCH_SECONDS`,
//! default 5, sets each row's length).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hive::bench::{EmbeddedQueue, EventStore, Message, RedbStore, RedisLink, RedisQueue, Settle};
use prometheus_client::metrics::counter::Counter;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};

const PUBLISHERS: usize = 16;
const CONSUMERS: usize = 4;
const BATCH: usize = 64;

/// An order as the shop publishes it, about 150 bytes.
const PAYLOAD: &[u8] = br#"{"id":1,"user":{"id":"ana","name":"Ana","email":"ana@example.com"},"sku":"mug","quantity":3,"remaining":7}"#;

fn seconds() -> Duration {
    let seconds = std::env::var("EVENTS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(seconds)
}

/// A redis-server of the bench's own, durable on every write.
struct Redis {
    process: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn start_redis() -> Redis {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = std::process::Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is needed: scripts/tools.sh redis installs it");
    Redis {
        process,
        url: format!("redis://127.0.0.1:{port}/0"),
        _dir: dir,
    }
}

/// Milliseconds... no: nanoseconds since `origin`, carried in metadata so
/// a consumer can tell how long ago a message's publish began.
fn stamp(origin: Instant) -> String {
    origin.elapsed().as_nanos().to_string()
}

/// Publishes from 16 tasks for `length`; returns publishes per second.
async fn publish_rate(store: Arc<dyn EventStore>, topic: &str, length: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            let (store, stop, done, topic) =
                (store.clone(), stop.clone(), done.clone(), topic.to_string());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let message = Message {
                        payload: PAYLOAD.to_vec(),
                        ..Message::default()
                    };
                    store.publish(&topic, message).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let began = Instant::now();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64()
}

/// What a publish -> ack run measured.
struct Flow {
    acked_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn flow(latencies: &mut [u64], elapsed: Duration) -> Flow {
    latencies.sort_unstable();
    let at = |q: f64| {
        let index =
            ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(index).copied().unwrap_or(0) as f64 / 1e6
    };
    Flow {
        acked_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    }
}

/// How publishers run: as fast as they can, or paced.
#[derive(Clone, Copy)]
enum Load {
    /// 16 publishers, each as fast as it can.
    Full,
    /// One publisher, this many messages a second.
    Paced(u64),
}

impl Load {
    fn publishers(self) -> usize {
        match self {
            Load::Full => PUBLISHERS,
            Load::Paced(_) => 1,
        }
    }

    /// The ticker a paced publisher waits on; `None` at full speed.
    fn ticker(self) -> Option<tokio::time::Interval> {
        match self {
            Load::Full => None,
            Load::Paced(rate) => {
                let mut interval =
                    tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                Some(interval)
            }
        }
    }
}

/// Runs `publishers` and `consumers` (each returning its latencies) for
/// `length`, then stops them and measures.
async fn run_flow(
    stop: Arc<AtomicBool>,
    publishers: Vec<tokio::task::JoinHandle<()>>,
    consumers: Vec<tokio::task::JoinHandle<Vec<u64>>>,
    length: Duration,
) -> Flow {
    let began = Instant::now();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = began.elapsed();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let mut latencies = Vec::new();
    for consumer in consumers {
        latencies.extend(consumer.await.unwrap());
    }
    flow(&mut latencies, elapsed)
}

/// Publishers (as `load` says) and 4 consumers on `store` together for
/// `length`; each consumer acks what it leased all at once, as a
/// dispatcher acks each delivery as its handler finishes.
async fn publish_to_ack(
    store: Arc<dyn EventStore>,
    topic: &str,
    load: Load,
    length: Duration,
) -> Flow {
    store.subscribe(topic, "bench").await.unwrap();
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers = (0..load.publishers())
        .map(|_| {
            let (store, stop, topic) = (store.clone(), stop.clone(), topic.to_string());
            tokio::spawn(async move {
                let mut ticker = load.ticker();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(ticker) = &mut ticker {
                        ticker.tick().await;
                    }
                    let message = Message {
                        payload: PAYLOAD.to_vec(),
                        metadata: vec![("sent".into(), stamp(origin))],
                        ..Message::default()
                    };
                    store.publish(&topic, message).await.unwrap();
                }
            })
        })
        .collect();
    let consumers = (0..CONSUMERS)
        .map(|_| {
            let (store, stop, topic) = (store.clone(), stop.clone(), topic.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let leased = store
                        .lease(&topic, "bench", BATCH, Duration::from_secs(30))
                        .await
                        .unwrap();
                    if leased.is_empty() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    let acks = leased.iter().map(|d| store.settle(d, Settle::Ack));
                    for acked in futures::future::join_all(acks).await {
                        acked.unwrap();
                    }
                    let now = origin.elapsed().as_nanos() as u64;
                    for delivery in &leased {
                        let sent: u64 = delivery.header.metadata[0].1.parse().unwrap_or(0);
                        latencies.push(now - sent);
                    }
                }
                latencies
            })
        })
        .collect();
    run_flow(stop, publishers, consumers, length).await
}

/// Plain `XADD` from 16 tasks for `length`; returns adds per second.
async fn native_xadd_rate(url: &str, length: Duration) -> f64 {
    let client = redis::Client::open(url).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            let (mut connection, stop, done) = (connection.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _: String = connection
                        .xadd("native:s", "*", &[("m", PAYLOAD)])
                        .await
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let began = Instant::now();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64()
}

/// Plain `XADD` (as `load` says) with 4 consumers doing `XREADGROUP` (up
/// to 64) and one `XACK` of what they read, together for `length`.
async fn native_flow(url: &str, stream: &str, load: Load, length: Duration) -> Flow {
    let client = redis::Client::open(url).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = connection
        .clone()
        .xgroup_create_mkstream(stream, "bench", "$")
        .await
        .unwrap();
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers = (0..load.publishers())
        .map(|_| {
            let (mut connection, stop, stream) =
                (connection.clone(), stop.clone(), stream.to_string());
            tokio::spawn(async move {
                let mut ticker = load.ticker();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(ticker) = &mut ticker {
                        ticker.tick().await;
                    }
                    let fields = [
                        ("m", PAYLOAD.to_vec()),
                        ("sent", stamp(origin).into_bytes()),
                    ];
                    let _: String = connection.xadd(&stream, "*", &fields).await.unwrap();
                }
            })
        })
        .collect();
    let consumers = (0..CONSUMERS)
        .map(|i| {
            let (mut connection, stop, stream) =
                (connection.clone(), stop.clone(), stream.to_string());
            tokio::spawn(async move {
                let options = StreamReadOptions::default()
                    .group("bench", format!("c{i}"))
                    .count(BATCH);
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let read: StreamReadReply = connection
                        .xread_options(&[&stream], &[">"], &options)
                        .await
                        .unwrap();
                    let entries: Vec<_> = read.keys.into_iter().flat_map(|k| k.ids).collect();
                    if entries.is_empty() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
                    let _: i64 = connection.xack(&stream, "bench", &ids).await.unwrap();
                    let now = origin.elapsed().as_nanos() as u64;
                    for entry in &entries {
                        let sent: u64 = entry
                            .get::<String>("sent")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        latencies.push(now - sent);
                    }
                }
                latencies
            })
        })
        .collect();
    run_flow(stop, publishers, consumers, length).await
}

fn main() {
    let length = seconds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let redis = start_redis();
        let link = RedisLink::new(&redis.url, false, hive::Durability::Primary).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while link.get().await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let data = tempfile::tempdir().unwrap();
        let embedded: Arc<dyn EventStore> =
            Arc::new(EmbeddedQueue::new(Arc::new(RedbStore::open(data.path()).unwrap())));
        let on_redis: Arc<dyn EventStore> =
            Arc::new(RedisQueue::new(link, "bench-host".into(), Counter::default()));
        embedded.subscribe("publish", "bench").await.unwrap();
        on_redis.subscribe("publish", "bench").await.unwrap();

        println!(
            "events bench: {} s per row, {PUBLISHERS} publishers, {CONSUMERS} consumers, {} byte payloads",
            length.as_secs(),
            PAYLOAD.len()
        );
        println!("durable publishes per second ({PUBLISHERS} publishers):");
        let rate = publish_rate(embedded.clone(), "publish", length).await;
        println!("  embedded store               {rate:>8.0}");
        let rate = publish_rate(on_redis.clone(), "publish", length).await;
        println!("  Hive on Redis                {rate:>8.0}");
        let rate = native_xadd_rate(&redis.url, length).await;
        println!("  native XADD (anchor)         {rate:>8.0}");
        println!("publish -> lease -> ack at full speed (acked per second):");
        let f = publish_to_ack(embedded.clone(), "full", Load::Full, length).await;
        println!("  embedded store               {:>8.0}", f.acked_per_second);
        let f = publish_to_ack(on_redis.clone(), "full", Load::Full, length).await;
        println!("  Hive on Redis                {:>8.0}", f.acked_per_second);
        let f = native_flow(&redis.url, "native:full", Load::Full, length).await;
        println!("  native XADD+XREADGROUP+XACK  {:>8.0}", f.acked_per_second);
        println!("publish -> ack at a steady 500/s (acked per second, p50 ms, p99 ms):");
        let steady = Load::Paced(500);
        let f = publish_to_ack(embedded.clone(), "steady", steady, length).await;
        println!("  embedded store               {:>8.0} {:>8.2} {:>8.2}", f.acked_per_second, f.p50_ms, f.p99_ms);
        let f = publish_to_ack(on_redis.clone(), "steady", steady, length).await;
        println!("  Hive on Redis                {:>8.0} {:>8.2} {:>8.2}", f.acked_per_second, f.p50_ms, f.p99_ms);
        let f = native_flow(&redis.url, "native:steady", steady, length).await;
        println!("  native XADD+XREADGROUP+XACK  {:>8.0} {:>8.2} {:>8.2}", f.acked_per_second, f.p50_ms, f.p99_ms);
    });
}
