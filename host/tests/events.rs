//! Events between services, end to end: real hosts, real components
//! (`test-components/events-probe`, `messaging-probe`), the embedded store
//! and Redis. Publishes acknowledged before a `kill -9` are all handled;
//! retries follow the backoff and end in the dead-letter queue, which
//! `replay` empties; a hot swap loses nothing; a commit's writes and its
//! event are never found apart; a schedule fires once per tick across
//! three hosts; bad input is refused with a clear error.
//!
//! Needs redis-server: `scripts/test.sh` installs it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cluster::{self, Node, TOKEN, free_port, start_redis, upload, wait_until};
use common::{Hive, client, hive_binary, test_components};
use serde_json::Value;

/// Generous: the first start compiles every component.
const READY: Duration = Duration::from_secs(120);

/// Waits for messages to be handled: long enough for a lease to end and a
/// few retries on a busy machine.
const DRAIN: Duration = Duration::from_secs(120);

fn probe_wasm() -> Vec<u8> {
    std::fs::read(test_components().join("events-probe.wasm")).unwrap()
}

/// A folder with the probe as `probe`, with `manifest`.
fn probe_dir(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probe.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("probe.wasm"), probe_wasm()).unwrap();
    dir
}

fn post(url: &str, body: &str) -> (u16, String) {
    match client().post(url).body(body.to_string()).send() {
        Ok(response) => (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

fn get(url: &str) -> String {
    client()
        .get(url)
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
}

/// The probe's deliveries of `topic`, as JSON records.
fn seen(base: &str, topic: &str) -> Vec<Value> {
    get(&format!("{base}/probe/seen?topic={topic}"))
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// How often each message of `topic` was handled.
fn times(base: &str, topic: &str) -> BTreeMap<String, u64> {
    get(&format!("{base}/probe/times?topic={topic}"))
        .lines()
        .filter_map(|line| {
            let (id, n) = line.split_once(' ')?;
            Some((id.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// Publishers that each publish one message per request to `topic` on
/// the `bases` (round robin) until `stop`, keeping the ids acknowledged.
fn publishers(
    bases: Vec<String>,
    topic: &str,
    count: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..count)
        .map(|worker| {
            let (bases, stop, topic) = (bases.clone(), stop.clone(), topic.to_string());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut acknowledged = Vec::new();
                for i in 0..20_000usize {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let base = &bases[(worker + i) % bases.len()];
                    let url = format!("{base}/probe/publish/{topic}");
                    let reply = http.post(url).body(format!("w{worker}-{i}")).send();
                    match reply {
                        Ok(r) if r.status() == 200 => {
                            let ids: Vec<String> = r.json().unwrap_or_default();
                            acknowledged.extend(ids);
                        }
                        // A host killed under it: not acknowledged.
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                acknowledged
            })
        })
        .collect()
}

/// Waits until every id in `acknowledged` was handled; returns how many
/// were handled more than once.
fn wait_for_all(base: &str, topic: &str, acknowledged: &BTreeSet<String>) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        let handled = times(base, topic);
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !handled.contains_key(*id))
            .collect();
        if missing.is_empty() {
            let duplicates = handled.values().filter(|n| **n > 1).count();
            return (duplicates, started.elapsed());
        }
        assert!(
            started.elapsed() < DRAIN,
            "{} of {} acknowledged publishes were never handled, e.g. {:?}",
            missing.len(),
            acknowledged.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_publish_on_the_embedded_store() {
    let dir = probe_dir("[[subscribe]]\ntopic = \"load\"\nconcurrency = 4\n");
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap().to_string();
    let hive = Hive::start(dir.path(), &["--data", &data_arg]);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = publishers(vec![hive.base.clone()], "load", 4, stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    drop(hive); // kill -9, mid-publish and mid-delivery
    stop.store(true, Ordering::Relaxed);
    let acknowledged: BTreeSet<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() > 50,
        "only {} publishes",
        acknowledged.len()
    );
    let hive = Hive::start(dir.path(), &["--data", &data_arg]);
    let (duplicates, took) = wait_for_all(&hive.base, "load", &acknowledged);
    println!(
        "embedded, kill -9 under load: {} publishes acknowledged by 4 publishers, 0 lost, \
         {duplicates} handled more than once, all handled {:.1} s after the restart",
        acknowledged.len(),
        took.as_secs_f64()
    );
}

/// Deploys the probe with `manifest` through `node`'s admin API.
fn deploy_probe(http: &reqwest::blocking::Client, node: &Node, manifest: &str) {
    let response = http
        .put(node.admin_url("/components/probe/manifest"))
        .bearer_auth(TOKEN)
        .body(manifest.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().unwrap());
    let (status, text) = upload(http, node, "probe", probe_wasm());
    assert_eq!(status, 202, "{text}");
}

/// Redis and `n` hosts sharing it (kv, events and deployment), each ready.
fn redis_hosts(work: &Path, n: usize) -> (cluster::Process, Vec<Node>, Vec<cluster::Process>) {
    let port = free_port();
    let redis = start_redis(&work.join("redis"), port);
    let url = format!("redis://127.0.0.1:{port}/0");
    let nodes: Vec<Node> = (0..n)
        .map(|i| Node::new(work, &format!("host{i}"), &url))
        .collect();
    let processes = nodes.iter().map(|node| node.start()).collect();
    let http = cluster::http();
    for node in &nodes {
        wait_until("host ready", READY, || node.ready(&http));
    }
    (redis, nodes, processes)
}

#[test]
fn kill_9_of_one_of_three_hosts_under_load_loses_no_acknowledged_publish_on_redis() {
    let work = tempfile::tempdir().unwrap();
    let (_redis, nodes, mut processes) = redis_hosts(work.path(), 3);
    let http = cluster::http();
    // A short deadline, so a dead host's leases end soon.
    deploy_probe(
        &http,
        &nodes[0],
        "[[subscribe]]\ntopic = \"load\"\nconcurrency = 4\n[limits]\ntimeout-ms = 2000\n",
    );
    for node in &nodes {
        wait_until("the probe everywhere", READY, || {
            node.status(&http, "/probe/count/load") == 200
        });
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.url("")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = publishers(bases, "load", 4, stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    drop(processes.remove(1)); // kill -9 of host 1
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let acknowledged: BTreeSet<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() > 50,
        "only {} publishes",
        acknowledged.len()
    );
    let (duplicates, took) = wait_for_all(&nodes[0].url(""), "load", &acknowledged);
    println!(
        "redis, 3 hosts, kill -9 of one under load: {} publishes acknowledged by 4 \
         publishers, 0 lost, {duplicates} handled more than once, all handled {:.1} s after \
         the publishers stopped",
        acknowledged.len(),
        took.as_secs_f64()
    );
}

/// The times (ms) at which each attempt of message `id` was handled.
fn attempt_times(records: &[Value], id: &str) -> Vec<u64> {
    let mut at: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| r["id"] == id)
        .map(|r| (r["attempt"].as_u64().unwrap(), r["at_ms"].as_u64().unwrap()))
        .collect();
    at.sort();
    at.into_iter().map(|(_, ms)| ms).collect()
}

fn publish_one(base: &str, topic: &str, behave: &str) -> String {
    let (status, body) = post(&format!("{base}/probe/publish/{topic}?behave={behave}"), "");
    assert_eq!(status, 200, "{body}");
    let ids: Vec<String> = serde_json::from_str(&body).unwrap();
    ids[0].clone()
}

fn hive_cli(args: &[&str]) -> (bool, String) {
    let output = Command::new(hive_binary()).args(args).output().unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn failures_are_retried_on_the_backoff_then_dead_lettered_and_replay_brings_them_back() {
    let dir = probe_dir(
        "[[subscribe]]\ntopic = \"flaky\"\nbackoff = \"400ms\"\nmax-backoff = \"5s\"\n\
         max-attempts = 4\n[limits]\ntimeout-ms = 1000\nmemory-mib = 24\n",
    );
    let hive = Hive::start(dir.path(), &[]);
    let base = hive.base.clone();
    let trap = publish_one(&base, "flaky", "trap");
    let slow = publish_one(&base, "flaky", "sleep");
    let greedy = publish_one(&base, "flaky", "oom");
    let asked = publish_one(&base, "flaky", "retry");
    let timed = publish_one(&base, "flaky", "retry-ms:700");
    let recovers = publish_one(&base, "flaky", "fail-until:3");
    let refused = publish_one(&base, "flaky", "dead");

    let admin = hive.admin_url("");
    let dead_ids = || -> BTreeSet<String> {
        let body: Value = client()
            .get(format!("{admin}/events/flaky/probe/dead"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        body["dead"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["header"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let expected_dead: BTreeSet<String> = [&trap, &slow, &greedy, &asked, &timed, &refused]
        .into_iter()
        .cloned()
        .collect();
    let started = Instant::now();
    while dead_ids() != expected_dead {
        assert!(
            started.elapsed() < DRAIN,
            "dead letters: {:?}\n{}",
            dead_ids(),
            hive.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let records = seen(&base, "flaky");
    // Each delay is the backoff doubled each time, with jitter in its upper
    // half; a handler that asked for 700 ms gets that.
    for (name, id) in [
        ("trap", &trap),
        ("oom", &greedy),
        ("retry", &asked),
        ("sleep", &slow),
    ] {
        let at = attempt_times(&records, id);
        assert_eq!(at.len(), 4, "{name}: {at:?}");
        let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
        println!(
            "{name}: attempts 4, gaps between attempts {gaps:?} ms (backoff 400 ms doubling, jittered)"
        );
        for (n, gap) in gaps.iter().enumerate() {
            let full = 400u64 << n;
            // The sleeper's own second (less its instantiation, which
            // counts against its deadline) runs before its delay starts.
            let spent = if name == "sleep" { 900 } else { 0 };
            assert!(
                *gap + 20 >= full / 2 + spent,
                "{name} gap {n}: {gap} ms, backoff {full} ms"
            );
            assert!(
                *gap <= full + spent + 1500,
                "{name} gap {n}: {gap} ms, backoff {full} ms"
            );
        }
    }
    let at = attempt_times(&records, &timed);
    let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    println!("retry-ms:700: gaps {gaps:?} ms");
    assert!(
        gaps.iter().all(|g| *g + 20 >= 700 && *g <= 700 + 1500),
        "{gaps:?}"
    );
    assert_eq!(
        attempt_times(&records, &recovers).len(),
        3,
        "fail-until:3 acks on attempt 3"
    );
    assert!(!dead_ids().contains(&recovers));
    assert_eq!(
        attempt_times(&records, &refused).len(),
        1,
        "a dead-letter answer is final"
    );

    // The dead letters name the last failure; the CLI shows them.
    let (ok, out) = hive_cli(&["events", "dead", "flaky", "probe", "--admin", &admin]);
    assert!(ok, "{out}");
    assert!(out.contains(&trap) && out.contains("4 attempts"), "{out}");
    assert!(out.contains("the probe was asked to refuse it"), "{out}");
    let body: Value = client()
        .get(format!("{admin}/events/flaky/probe/dead"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let reason = |id: &str| -> String {
        body["dead"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["header"]["id"] == id)
            .unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        reason(&trap).contains("trap") || reason(&trap).contains("unreachable"),
        "{}",
        reason(&trap)
    );
    assert!(reason(&slow).contains("time"), "{}", reason(&slow));
    assert!(reason(&greedy).contains("memory"), "{}", reason(&greedy));
    println!(
        "dead letters' reasons: trap: {}; sleep: {}; oom: {}",
        reason(&trap),
        reason(&slow),
        reason(&greedy)
    );

    // The console shows the group, its dead letters and a way to replay.
    let events: Value = client()
        .get(format!("{admin}/events"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let group = events["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["topic"] == "flaky")
        .unwrap()
        .clone();
    assert_eq!(group["dead"], 6, "{group}");
    assert!(group["retried"].as_u64().unwrap() >= 13, "{group}");

    // Replay: every dead letter is delivered again, from attempt 1.
    let before = times(&base, "flaky");
    let (ok, out) = hive_cli(&["events", "replay", "flaky", "probe", "--admin", &admin]);
    assert!(ok && out.contains("6 dead letter(s)"), "{out}");
    let started = Instant::now();
    while !expected_dead
        .iter()
        .all(|id| times(&base, "flaky")[id] > before[id])
    {
        assert!(
            started.elapsed() < DRAIN,
            "replayed messages were not delivered again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn swapping_a_subscribers_wasm_while_messages_stream_loses_none() {
    let manifest = "[[subscribe]]\ntopic = \"stream\"\nconcurrency = 2\n";
    let dir = probe_dir(manifest);
    let hive = Hive::start(dir.path(), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = publishers(vec![hive.base.clone()], "stream", 2, stop.clone());
    // Five new versions (each manifest change is one) while it streams.
    for version in 0..5 {
        std::thread::sleep(Duration::from_millis(700));
        let text = format!("{manifest}[config]\nversion = \"{version}\"\n");
        common::deploy_atomically(dir.path(), "probe.toml", text.as_bytes());
        hive.wait_for_log_count(&["swapped in probe.wasm"], version + 1);
    }
    stop.store(true, Ordering::Relaxed);
    let acknowledged: BTreeSet<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let (duplicates, _) = wait_for_all(&hive.base, "stream", &acknowledged);
    println!(
        "hot swap: {} messages published across 5 swaps of the subscriber, 0 lost, {duplicates} \
         handled twice",
        acknowledged.len()
    );
}

#[test]
fn a_commits_writes_and_its_event_are_never_found_apart_across_a_kill_9() {
    let dir = probe_dir("[[subscribe]]\ntopic = \"placed\"\nconcurrency = 4\n");
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap().to_string();
    let hive = Hive::start(dir.path(), &["--data", &data_arg]);
    let stop = Arc::new(AtomicBool::new(false));
    let committers: Vec<_> = (0..4)
        .map(|worker| {
            let (base, stop) = (hive.base.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for i in 0..20_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let order = format!("{worker}-{i}");
                    let url = format!("{base}/probe/commit/placed?key=order/{order}");
                    match post(&url, &order) {
                        (200, _) => acknowledged.push(order),
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    drop(hive); // kill -9 mid-commit
    stop.store(true, Ordering::Relaxed);
    let acknowledged: BTreeSet<String> = committers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let hive = Hive::start(dir.path(), &["--data", &data_arg]);
    let stored = || -> BTreeSet<String> {
        get(&format!("{}/probe/keys?prefix=order/", hive.base))
            .lines()
            .filter_map(|key| key.strip_prefix("order/").map(str::to_string))
            .collect()
    };
    let orders = stored();
    assert!(
        acknowledged.is_subset(&orders),
        "an acknowledged commit is missing"
    );
    // Wait until every stored order's event was handled, then compare.
    let started = Instant::now();
    let announced = loop {
        let announced: BTreeSet<String> = seen(&hive.base, "placed")
            .iter()
            .map(|r| r["payload"].as_str().unwrap().to_string())
            .collect();
        if orders.is_subset(&announced) {
            break announced;
        }
        assert!(
            started.elapsed() < DRAIN,
            "{} stored orders without an event",
            orders.difference(&announced).count()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let unexplained: Vec<&String> = announced.difference(&orders).collect();
    println!(
        "atomic commits, kill -9: {} acknowledged, {} stored, {} events; stored without an \
         event: 0; events without their write: {}",
        acknowledged.len(),
        orders.len(),
        announced.len(),
        unexplained.len()
    );
    assert!(
        unexplained.is_empty(),
        "events without their write: {unexplained:?}"
    );
}

#[test]
fn a_schedule_every_second_on_three_hosts_fires_once_per_tick() {
    let work = tempfile::tempdir().unwrap();
    let (_redis, nodes, _processes) = redis_hosts(work.path(), 3);
    let http = cluster::http();
    deploy_probe(
        &http,
        &nodes[0],
        "[[schedule]]\nname = \"tick\"\nevery = \"1s\"\n",
    );
    for node in &nodes {
        wait_until("the schedule runs everywhere", READY, || {
            node.log().contains("schedule tick of probe: every 1s")
        });
    }
    // Every host runs the ticker: from the next whole second on, take 20
    // ticks and count the messages each one fired (by their ids), read
    // from the handler's records, so how fast this machine is matters not.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let first = (now_ms / 1000 + 2) * 1000;
    let window = first..first + 20_000;
    let ticks = || -> BTreeMap<u64, BTreeSet<String>> {
        let mut ticks: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        for record in seen(&nodes[0].url(""), "schedule:tick") {
            let payload: Value = serde_json::from_str(record["payload"].as_str().unwrap_or("{}"))
                .unwrap_or_default();
            if let Some(tick) = payload["tick_ms"].as_u64() {
                let id = record["id"].as_str().unwrap_or_default().to_string();
                ticks.entry(tick).or_default().insert(id);
            }
        }
        ticks
    };
    wait_until("20 s of ticks handled", READY, || {
        ticks().keys().any(|tick| *tick >= window.end)
    });
    let ticks: BTreeMap<u64, BTreeSet<String>> = ticks()
        .into_iter()
        .filter(|(tick, _)| window.contains(tick))
        .collect();
    let fired: usize = ticks.values().map(BTreeSet::len).sum();
    println!(
        "schedule every 1s on 3 hosts for 20 s: {} ticks, fired {fired} times",
        ticks.len()
    );
    assert_eq!(ticks.len(), 20, "every tick fires: {ticks:?}");
    assert_eq!(
        fired, 20,
        "each tick fires once, not once per host: {ticks:?}"
    );
}

#[test]
fn bad_manifests_payloads_and_a_store_outage_get_clear_errors_and_store_nothing() {
    // Manifests: the error names the file and the key.
    let dir = tempfile::tempdir().unwrap();
    for (name, manifest) in [
        (
            "cron",
            "[[schedule]]\nname = \"n\"\ncron = \"61 * * * *\"\n",
        ),
        (
            "attempts",
            "[[subscribe]]\ntopic = \"t\"\nmax-attempts = 0\n",
        ),
        (
            "absurd",
            "[[subscribe]]\ntopic = \"t\"\nmax-attempts = 99999999\n",
        ),
        ("topic", "[[subscribe]]\ntopic = \"no spaces\"\n"),
    ] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), probe_wasm()).unwrap();
        std::fs::write(dir.path().join(format!("{name}.toml")), manifest).unwrap();
    }
    let hive = Hive::start(dir.path(), &[]);
    let components: Value = client()
        .get(hive.admin_url("/components"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for (name, says) in [
        ("cron", "cron"),
        ("attempts", "max-attempts = 0"),
        ("absurd", "max-attempts"),
        ("topic", "invalid topic"),
    ] {
        let entry = components["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let reason = entry["reason"].as_str().unwrap_or_default();
        assert_eq!(entry["state"], "failed", "{entry}");
        assert!(
            reason.contains(&format!("{name}.toml")) && reason.contains(says),
            "{name}: {reason}"
        );
    }
    drop(hive);

    // A payload over the limit and a bad topic: the publisher's error.
    let dir = probe_dir("[[subscribe]]\ntopic = \"t\"\n");
    let hive = Hive::start(dir.path(), &[]);
    let (status, body) = post(&format!("{}/probe/publish/t?size=1048577", hive.base), "");
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("too-large") && body.contains("1048577"),
        "{body}"
    );
    let (status, body) = post(&format!("{}/probe/publish/no%20good", hive.base), "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid-topic"), "{body}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(times(&hive.base, "t").is_empty(), "nothing may be stored");
    drop(hive);

    // The store unreachable: a storage error, never a silent drop.
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let redis = start_redis(&work.path().join("redis"), port);
    let dir = probe_dir("[[subscribe]]\ntopic = \"t\"\n");
    let url = format!("redis://127.0.0.1:{port}/0");
    let hive = Hive::start(dir.path(), &["--kv", &url]);
    let (status, body) = post(&format!("{}/probe/publish/t", hive.base), "");
    assert_eq!(status, 200, "{body}");
    drop(redis);
    let (status, body) = post(&format!("{}/probe/publish/t", hive.base), "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("storage"), "{body}");
    println!(
        "bad input: 4 manifests refused naming file and key; 413 too-large; 400 invalid-topic; 503 storage with Redis down"
    );
}

#[test]
fn a_wasi_messaging_component_sends_and_receives_and_an_error_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        test_components().join("messaging-probe.wasm"),
        dir.path().join("mprobe.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("mprobe.toml"),
        "[[subscribe]]\ntopic = \"m\"\nbackoff = \"100ms\"\nmax-attempts = 2\n",
    )
    .unwrap();
    let hive = Hive::start(dir.path(), &[]);
    for data in ["hello", "fail"] {
        let (status, body) = post(&format!("{}/mprobe/send/m", hive.base), data);
        assert_eq!(status, 200, "{body}");
    }
    let admin = hive.admin_url("");
    wait_until("the failing message in the dead letters", DRAIN, || {
        get(&format!("{admin}/events/m/mprobe/dead")).contains("asked to fail")
    });
    let got: Vec<Value> = get(&format!("{}/mprobe/got", hive.base))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let hello: Vec<&Value> = got.iter().filter(|g| g["data"] == "hello").collect();
    assert_eq!(hello.len(), 1, "{got:?}");
    assert_eq!(hello[0]["topic"], "m");
    assert_eq!(hello[0]["content_type"], "text/plain");
    assert_eq!(hello[0]["metadata"][0][1], "messaging-probe");
    assert_eq!(
        got.iter().filter(|g| g["data"] == "fail").count(),
        2,
        "an error is a retry"
    );
    // The graph shows the publish -> subscribe edge.
    let graph: Value = client()
        .get(hive.admin_url("/graph"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "event" && e["via"] == "m"),
        "{graph}"
    );
    // The metrics and the log count and name each delivery.
    let metrics = hive.metrics();
    assert!(
        metrics.contains(r#"hive_events_published_total{topic="m"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"hive_events_deliveries_total{topic="m",group="mprobe",outcome="retry"} 1"#
        ),
        "{metrics}"
    );
    let line = hive.wait_for_log(&["delivery dead", "topic=m"]);
    assert!(
        line.contains("message_id=") && line.contains("attempt=2"),
        "{line}"
    );
    // The console draws the group, its dead letter with a replay button,
    // and the event edge.
    let dom = common::chromium_dom(&hive.admin_url("/"));
    assert!(
        dom.contains(r#"<tr data-topic="m" data-group="mprobe">"#),
        "{dom}"
    );
    assert!(dom.contains(">replay</button>"), "{dom}");
    assert!(dom.contains("mprobe → mprobe via m: 2 published"), "{dom}");
}

#[test]
fn orders_keep_coming_while_their_subscriber_is_gone_for_30_s_and_none_is_missed() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::demo_components();
    for name in ["users", "inventory", "orders", "notifications"] {
        common::install(demo, name, dir.path());
    }
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    let put = |path: &str, body: &str| {
        let response = http
            .put(format!("{}{path}", hive.base))
            .body(body.to_string())
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    };
    put(
        "/users/ana",
        r#"{"name": "Ana", "email": "ana@example.com"}"#,
    );
    put("/inventory/mug", r#"{"count": 1000000}"#);
    let notified = || -> BTreeSet<u64> {
        let notes: Vec<Value> = http
            .get(format!("{}/notifications", hive.base))
            .send()
            .ok()
            .and_then(|r| r.json().ok())
            .unwrap_or_default();
        notes.iter().filter_map(|n| n["order"].as_u64()).collect()
    };
    let order = || -> (u16, Option<u64>) {
        let response = http
            .post(format!("{}/orders", hive.base))
            .body(r#"{"user": "ana", "sku": "mug", "quantity": 1}"#)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or_default();
        (status, body["id"].as_u64())
    };
    let (status, first) = order();
    assert_eq!(status, 201);
    wait_until("the first order notified", READY, || {
        notified().contains(&first.unwrap())
    });

    // The subscriber goes away; orders keep coming for 30 s.
    let wasm = std::fs::read(dir.path().join("notifications.wasm")).unwrap();
    std::fs::remove_file(dir.path().join("notifications.wasm")).unwrap();
    wait_until("notifications gone", READY, || {
        http.get(format!("{}/notifications", hive.base))
            .send()
            .is_ok_and(|r| r.status() == 404)
    });
    let started = Instant::now();
    let mut placed = BTreeSet::from([first.unwrap()]);
    let mut refused = 0;
    while started.elapsed() < Duration::from_secs(30) {
        match order() {
            (201, Some(id)) => {
                placed.insert(id);
            }
            _ => refused += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        refused, 0,
        "orders must not fail while a subscriber is gone"
    );
    let events: Value = http
        .get(hive.admin_url("/events"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let waiting = events["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["topic"] == "order.placed" && g["group"] == "notifications")
        .map(|g| g["depth"].as_u64().unwrap_or(0))
        .unwrap_or(0);

    // It comes back: everything queued is delivered.
    let back = Instant::now();
    common::deploy_atomically(dir.path(), "notifications.wasm", &wasm);
    let started = Instant::now();
    loop {
        let missing = placed.difference(&notified()).count();
        if missing == 0 {
            break;
        }
        assert!(
            started.elapsed() < DRAIN,
            "{missing} orders were never notified"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "subscriber gone 30 s: {} orders placed (all 201), {waiting} waiting in its queue, \
         all {} notified {:.1} s after it came back",
        placed.len(),
        placed.len(),
        back.elapsed().as_secs_f64()
    );
}
