//! The chaos: faults drawn from a seeded generator, one at a time, each
//! undone before the next (a killed host or server is started again), so
//! the system is whole when the soak ends.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::common::cluster::{TOKEN, upload, wait_until};
use crate::common::demo_components;
use crate::rig::Rig;

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    HostKill,
    PrimaryKill,
    SentinelRestart,
    Deploy,
    Rollback,
    StalledBodies,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::HostKill,
        Kind::PrimaryKill,
        Kind::SentinelRestart,
        Kind::Deploy,
        Kind::Rollback,
        Kind::StalledBodies,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Kind::HostKill => "kill -9 of a host, then a restart",
            Kind::PrimaryKill => "kill -9 of the Redis primary (failover), then its restart",
            Kind::SentinelRestart => "restart of a sentinel",
            Kind::Deploy => "hot deploy of a new orders version",
            Kind::Rollback => "rollback of orders",
            Kind::StalledBodies => "stalled-body attack on one host",
        }
    }
}

/// One fault injected: when (ms since the soak's start), what, and how long
/// until it was undone.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    pub at_ms: u64,
    pub took_ms: u64,
    pub detail: String,
}

/// Injects faults until `stop` (and at least one of each kind), from
/// `seed`; returns them.
pub fn run(rig: &Rig, seed: u64, started: Instant, stop: &AtomicBool) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Vec::new();
    let mut deploys = 0;
    'rounds: loop {
        // Every kind once per round, in a shuffled order, a rollback only
        // after a deploy.
        let mut round = Kind::ALL.to_vec();
        round.shuffle(&mut rng);
        let deploy = round.iter().position(|k| *k == Kind::Deploy).unwrap_or(0);
        let rollback = round.iter().position(|k| *k == Kind::Rollback).unwrap_or(0);
        if rollback < deploy {
            round.swap(deploy, rollback);
        }
        for kind in round {
            let pause = Duration::from_millis(rng.random_range(3_000..8_000));
            let until = Instant::now() + pause;
            while Instant::now() < until {
                // However slow the machine, every kind runs once.
                if stop.load(Ordering::Relaxed) && faults.len() >= Kind::ALL.len() {
                    break 'rounds;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let at = Instant::now();
            let detail = inject(rig, kind, &mut rng, &mut deploys);
            let fault = Fault {
                kind,
                at_ms: at.duration_since(started).as_millis() as u64,
                took_ms: at.elapsed().as_millis() as u64,
                detail,
            };
            eprintln!(
                "soak: {:>7.1} s  {:?}: {} ({} ms)",
                fault.at_ms as f64 / 1000.0,
                fault.kind,
                fault.detail,
                fault.took_ms
            );
            faults.push(fault);
        }
    }
    faults
}

/// Injects one fault of `kind` and undoes it; what was done.
fn inject(rig: &Rig, kind: Kind, rng: &mut StdRng, deploys: &mut u32) -> String {
    match kind {
        Kind::HostKill => {
            let i = rng.random_range(0..rig.nodes.len());
            rig.kill_host(i);
            std::thread::sleep(Duration::from_millis(rng.random_range(1_000..4_000)));
            rig.start_host(i);
            format!("host {i} killed and restarted")
        }
        Kind::PrimaryKill => {
            let mut redis = rig.redis.lock().unwrap();
            let Some(old) = redis.primary_index() else {
                return "no primary known; skipped".into();
            };
            redis.kill_server(old);
            let killed = Instant::now();
            wait_until("the sentinels promote", Duration::from_secs(90), || {
                redis.primary_index().is_some_and(|now| now != old)
            });
            let promoted = killed.elapsed();
            std::thread::sleep(Duration::from_millis(rng.random_range(500..3_000)));
            let primary = redis.servers[1 - old];
            redis.start_server(old, Some(primary));
            redis.wait_until_replicated();
            format!(
                "server {old} killed, server {} promoted after {:.1} s, {old} back as replica",
                1 - old,
                promoted.as_secs_f64()
            )
        }
        Kind::SentinelRestart => {
            let mut redis = rig.redis.lock().unwrap();
            let i = rng.random_range(0..3);
            redis.kill_sentinel(i);
            std::thread::sleep(Duration::from_millis(rng.random_range(500..3_000)));
            redis.start_sentinel(i);
            format!("sentinel {i} restarted")
        }
        Kind::Deploy => {
            *deploys += 1;
            let i = rng.random_range(0..rig.nodes.len());
            let wasm = std::fs::read(demo_components().join("orders.wasm")).unwrap();
            let (status, text) = upload(
                &rig.http,
                &rig.nodes[i],
                "orders",
                with_version(wasm, *deploys),
            );
            format!(
                "orders version {deploys} through host {i}: {status} {}",
                text.trim()
            )
        }
        Kind::Rollback => {
            let i = rng.random_range(0..rig.nodes.len());
            let answer = rig
                .http
                .post(rig.nodes[i].admin_url("/components/orders/rollback"))
                .bearer_auth(TOKEN)
                .send();
            match answer {
                Ok(response) => format!("through host {i}: {}", response.status().as_u16()),
                Err(err) => format!("through host {i}: {err}"),
            }
        }
        Kind::StalledBodies => {
            let i = rng.random_range(0..rig.nodes.len());
            let mut open = Vec::new();
            for _ in 0..32 {
                if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", rig.nodes[i].public)) {
                    let head = "POST /orders HTTP/1.1\r\nhost: soak\r\n\
                                content-type: application/json\r\n\
                                content-length: 1000000\r\n\r\n{\"user\":";
                    let _ = stream.write_all(head.as_bytes());
                    open.push(stream);
                }
            }
            let held = Duration::from_millis(rng.random_range(3_000..8_000));
            std::thread::sleep(held);
            let count = open.len();
            drop(open);
            format!(
                "{count} connections to host {i} stalled mid-body for {:.1} s",
                held.as_secs_f64()
            )
        }
    }
}

/// `wasm` with a custom section naming `version`: the same code, a new
/// digest, so the cluster takes it as a new version.
fn with_version(mut wasm: Vec<u8>, version: u32) -> Vec<u8> {
    let name = b"soak-version";
    let payload = version.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128, "one-byte LEB128 sizes");
    wasm.push(0);
    wasm.push(size as u8);
    wasm.push(name.len() as u8);
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(&payload);
    wasm
}
