//! Test support for many hosts: Redis on loopback, Hive hosts whose
//! folders outlive their processes, HAProxy in front, and Redis read and
//! written directly (as anything with access to it could).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{demo_components, hive_binary};

/// The admin token every test host of a cluster gets.
pub const TOKEN: &str = "cluster-test-token";

/// The ports [`free_port`] hands out: below Linux's range for
/// the local end of outgoing connections (32768 and up by default), so no
/// test's client socket can take a port between its pick and the server's
/// bind, as one taken from the kernel's port 0 could.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port nothing listens on right now, kept for the server the caller
/// starts next (and restarts on the same port).
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORTS.end - PORTS.start);
    // Test binaries run one after another; each starts elsewhere in the
    // range so a port one just released is not the next one's first.
    let offset = std::process::id() % span;
    for _ in 0..span {
        let n = (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = PORTS.start + n as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORTS:?}");
}

/// A child process killed (SIGKILL) when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts redis-server on `port` with its files in `dir`, fsyncing every
/// write (so a restart keeps all of it).
pub fn start_redis(dir: &Path, port: u16) -> Process {
    std::fs::create_dir_all(dir).unwrap();
    let child = Command::new("redis-server")
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
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is needed: run scripts/test.sh, which installs it");
    let process = Process(child);
    wait_until("redis answers", Duration::from_secs(30), || {
        redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
            .and_then(|client| client.get_connection())
            .is_ok()
    });
    process
}

/// A plain connection to the Redis at `url`, to read or tamper with.
pub fn redis_connection(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection()
        .expect("connecting to the test Redis")
}

/// One Hive host of the cluster, with folders that outlive its process.
pub struct Node {
    pub root: PathBuf,
    pub public: u16,
    pub admin: u16,
    pub redis: String,
}

impl Node {
    pub fn new(base: &Path, name: &str, redis: &str) -> Node {
        let root = base.join(name);
        std::fs::create_dir_all(root.join("deploy")).unwrap();
        Node {
            root,
            public: free_port(),
            admin: free_port(),
            redis: redis.to_string(),
        }
    }

    /// The services folder.
    pub fn dir(&self) -> PathBuf {
        self.root.join("deploy")
    }

    /// Starts the host with the cluster's token.
    pub fn start(&self) -> Process {
        self.start_with(&[])
    }

    /// Starts the host with `extra` arguments; its log is appended to.
    pub fn start_with(&self, extra: &[&str]) -> Process {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("hive.log"))
            .unwrap();
        let child = Command::new(hive_binary())
            .arg("serve")
            .arg("--dir")
            .arg(self.dir())
            .arg("--cache-dir")
            .arg(self.root.join("cache"))
            .args(["--listen", &format!("127.0.0.1:{}", self.public)])
            .args(["--admin-listen", &format!("127.0.0.1:{}", self.admin)])
            .args(["--kv", &self.redis, "--cluster", &self.redis])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("HIVE_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Process(child)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.public)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin)
    }

    pub fn ready(&self, http: &reqwest::blocking::Client) -> bool {
        http.get(self.admin_url("/ready"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    }

    pub fn status(&self, http: &reqwest::blocking::Client, path: &str) -> u16 {
        http.get(self.url(path))
            .send()
            .map_or(0, |r| r.status().as_u16())
    }

    /// `GET /cluster` on the admin API.
    pub fn standing(&self, http: &reqwest::blocking::Client) -> serde_json::Value {
        http.get(self.admin_url("/cluster"))
            .bearer_auth(TOKEN)
            .send()
            .and_then(|r| r.json())
            .unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("hive.log")).unwrap_or_default()
    }
}

/// Polls `done` every 20 ms until it holds; fails after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// Uploads `bytes` as `name`'s `.wasm` through `node`; returns the status
/// and the answer's text.
pub fn upload(
    http: &reqwest::blocking::Client,
    node: &Node,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, String) {
    let response = http
        .put(node.admin_url(&format!("/components/{name}")))
        .bearer_auth(TOKEN)
        .body(bytes)
        .send()
        .unwrap();
    (
        response.status().as_u16(),
        response.text().unwrap_or_default(),
    )
}

/// Deploys the demo component `name` (and its manifest) through `node`.
pub fn deploy(http: &reqwest::blocking::Client, node: &Node, name: &str) {
    deploy_from(http, node, demo_components(), name);
}

/// Deploys component `name` (and its manifest) built into `from`,
/// through `node`.
pub fn deploy_from(http: &reqwest::blocking::Client, node: &Node, from: &Path, name: &str) {
    let manifest = from.join(format!("{name}.toml"));
    if manifest.exists() {
        let response = http
            .put(node.admin_url(&format!("/components/{name}/manifest")))
            .bearer_auth(TOKEN)
            .body(std::fs::read(manifest).unwrap())
            .send()
            .unwrap();
        assert_eq!(response.status(), 202, "{}", response.text().unwrap());
    }
    let wasm = std::fs::read(from.join(format!("{name}.wasm"))).unwrap();
    let (status, text) = upload(http, node, name, wasm);
    assert_eq!(status, 202, "{text}");
}

/// HAProxy on `front`, spreading over `nodes` by their `/ready`.
pub fn haproxy(dir: &Path, front: u16, nodes: &[&Node]) -> Process {
    let mut config = format!(
        "global\n    maxconn 4096\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n\
         \x20   timeout server 30s\n    timeout check 1s\n    retries 3\n    option redispatch 1\n\
         \x20   retry-on conn-failure empty-response response-timeout 503\n\
         frontend hive\n    bind 127.0.0.1:{front}\n    default_backend hosts\n\
         backend hosts\n    balance roundrobin\n    http-request disable-l7-retry unless METH_GET\n\
         \x20   option httpchk\n    http-check send meth GET uri /ready ver HTTP/1.1 hdr Host localhost\n\
         \x20   http-check expect status 200\n\
         \x20   default-server check inter 200ms fastinter 100ms downinter 500ms fall 2 rise 1\n"
    );
    for (i, node) in nodes.iter().enumerate() {
        config.push_str(&format!(
            "    server host{i} 127.0.0.1:{} port {}\n",
            node.public, node.admin
        ));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&path)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy is needed: run scripts/test.sh, which installs it");
    Process(child)
}

/// An HTTP client with a generous timeout.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}
