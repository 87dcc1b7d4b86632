//! The system under test: Redis with Sentinel (a primary, a replica, three
//! sentinels), three hosts sharing it for kv, events and deployment, and
//! HAProxy in front, all on loopback; the shop deployed and stocked.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::common::cluster::{
    Node, Process, TOKEN, deploy, free_port, haproxy, http, upload, wait_until,
};
use crate::common::demo_components;
use crate::common::sentinel::Topology;

/// Units of each SKU at the start: more than a soak can sell.
pub const INITIAL_STOCK: u32 = 1_000_000;

/// The SKUs the clients order and read.
pub const SKUS: [&str; 3] = ["soak-mug", "soak-pen", "soak-cap"];

/// The customers orders and reviews name.
pub const CUSTOMERS: usize = 8;

/// Everything running, and what is needed to restart any part of it.
pub struct Rig {
    pub redis: Mutex<Topology>,
    pub nodes: Vec<Node>,
    pub processes: Mutex<Vec<Option<Process>>>,
    /// Arguments every host starts with beyond the cluster's own.
    pub host_args: Vec<String>,
    pub front: u16,
    pub http: reqwest::blocking::Client,
    _haproxy: Process,
}

/// Which `inventory` the shop runs.
pub enum Inventory<'a> {
    /// The demo's.
    Demo,
    /// Another build of it, from this `.wasm` (with the demo's manifest).
    Build(&'a Path),
}

impl Rig {
    /// Starts it all in `work` with `durability` for kv writes, deploys the
    /// shop and stocks it; returns once HAProxy serves the catalog.
    pub fn start(work: &Path, durability: &str, inventory: Inventory) -> Rig {
        let redis = Topology::start(&work.join("redis"));
        let url = redis.url();
        let nodes: Vec<Node> = ["a", "b", "c"]
            .iter()
            .map(|name| Node::new(work, name, &url))
            .collect();
        let host_args = vec!["--kv-durability".to_string(), durability.to_string()];
        let processes = nodes
            .iter()
            .map(|node| Some(node.start_with(&as_strs(&host_args))))
            .collect();
        let http = http();
        for node in &nodes {
            wait_until("host ready", Duration::from_secs(180), || node.ready(&http));
        }
        let first = &nodes[0];
        for name in ["users", "orders", "catalog", "reviews", "notifications"] {
            deploy(&http, first, name);
        }
        match inventory {
            Inventory::Demo => deploy(&http, first, "inventory"),
            Inventory::Build(wasm) => {
                let manifest = std::fs::read(demo_components().join("inventory.toml")).unwrap();
                let response = http
                    .put(first.admin_url("/components/inventory/manifest"))
                    .bearer_auth(TOKEN)
                    .body(manifest)
                    .send()
                    .unwrap();
                assert_eq!(response.status(), 202);
                let (status, text) =
                    upload(&http, first, "inventory", std::fs::read(wasm).unwrap());
                assert_eq!(status, 202, "{text}");
            }
        }
        for node in &nodes {
            wait_until(
                "the shop deployed everywhere",
                Duration::from_secs(120),
                || {
                    [
                        ("/users", 200),
                        ("/notifications", 200),
                        ("/reviews/none", 200),
                    ]
                    .into_iter()
                    .chain([("/inventory/none", 404), ("/orders/0", 404)])
                    .all(|(path, status)| node.status(&http, path) == status)
                },
            );
        }
        for sku in SKUS {
            let response = http
                .put(first.url(&format!("/inventory/{sku}")))
                .body(format!(r#"{{"count": {INITIAL_STOCK}}}"#))
                .send()
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        for i in 0..CUSTOMERS {
            let response = http
                .put(first.url(&format!("/users/customer-{i}")))
                .body(format!(
                    r#"{{"name": "Customer {i}", "email": "customer-{i}@example.com"}}"#
                ))
                .send()
                .unwrap();
            assert!(response.status().is_success());
        }
        let front = free_port();
        let refs: Vec<&Node> = nodes.iter().collect();
        let proxy = haproxy(work, front, &refs);
        let rig = Rig {
            redis: Mutex::new(redis),
            nodes,
            processes: Mutex::new(processes),
            host_args,
            front,
            http,
            _haproxy: proxy,
        };
        wait_until(
            "haproxy serves the catalog",
            Duration::from_secs(60),
            || {
                rig.http
                    .get(rig.url(&format!("/catalog/{}", SKUS[0])))
                    .send()
                    .is_ok_and(|r| r.status() == 200)
            },
        );
        rig
    }

    /// A URL through HAProxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.front)
    }

    /// Kills host `i` with SIGKILL.
    pub fn kill_host(&self, i: usize) {
        self.processes.lock().unwrap()[i] = None;
    }

    /// Starts host `i` again and waits until it is ready.
    pub fn start_host(&self, i: usize) {
        let process = self.nodes[i].start_with(&as_strs(&self.host_args));
        self.processes.lock().unwrap()[i] = Some(process);
        wait_until("a restarted host ready", Duration::from_secs(180), || {
            self.nodes[i].ready(&self.http)
        });
    }
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
