//! Test support for Redis high availability: a primary, a replica and
//! three sentinels on loopback, each a real `redis-server` process that a
//! test can kill and start again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::cluster::{Process, free_port, wait_until};

/// The name the sentinels know the primary by.
pub const SERVICE: &str = "mymaster";

/// Two data servers (either may be primary) and three sentinels.
pub struct Topology {
    pub dir: PathBuf,
    /// The ports of the two data servers; `servers[0]` starts as primary.
    pub servers: [u16; 2],
    pub sentinels: [u16; 3],
    pub server_processes: [Option<Process>; 2],
    pub sentinel_processes: [Option<Process>; 3],
}

impl Topology {
    /// Starts it all and waits until the replica is in sync and every
    /// sentinel knows the primary and the replica.
    pub fn start(dir: &Path) -> Topology {
        let mut topology = Topology {
            dir: dir.to_path_buf(),
            servers: [free_port(), free_port()],
            sentinels: [free_port(), free_port(), free_port()],
            server_processes: [None, None],
            sentinel_processes: [None, None, None],
        };
        topology.start_server(0, None);
        topology.start_server(1, Some(topology.servers[0]));
        for i in 0..3 {
            topology.start_sentinel(i);
        }
        topology.wait_until_replicated();
        for port in topology.sentinels {
            wait_until(
                "a sentinel sees the replica",
                Duration::from_secs(60),
                || {
                    query(port, &["SENTINEL", "replicas", SERVICE]).is_some_and(|replicas| {
                        replicas.contains("flags") && !replicas.contains("s_down")
                    })
                },
            );
        }
        topology
    }

    /// The `redis+sentinel://` URL of this topology.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}/0", hosts.join(","))
    }

    /// Starts data server `i`, as a replica of `primary` if given; its data
    /// (AOF, fsynced per write) survives a kill.
    pub fn start_server(&mut self, i: usize, primary: Option<u16>) {
        let dir = self.dir.join(format!("server{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut command = Command::new("redis-server");
        command
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.servers[i].to_string(),
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&dir);
        if let Some(primary) = primary {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed: run scripts/test.sh, which installs it");
        self.server_processes[i] = Some(Process(child));
        let port = self.servers[i];
        wait_until("a redis server answers", Duration::from_secs(30), || {
            query(port, &["PING"]).is_some()
        });
    }

    /// Starts sentinel `i`, watching the first server (a sentinel restarted
    /// later reads the primary it last knew from its rewritten config).
    pub fn start_sentinel(&mut self, i: usize) {
        let config = self.dir.join(format!("sentinel{i}.conf"));
        if !config.exists() {
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 5000\n\
                     sentinel parallel-syncs {SERVICE} 1\n",
                    port = self.sentinels[i],
                    dir = self.dir.display(),
                    primary = self.servers[0],
                ),
            )
            .unwrap();
        }
        let child = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed: run scripts/test.sh, which installs it");
        self.sentinel_processes[i] = Some(Process(child));
        let port = self.sentinels[i];
        wait_until("a sentinel answers", Duration::from_secs(30), || {
            query(port, &["PING"]).is_some()
        });
    }

    /// The port of the server the sentinels call primary now.
    pub fn primary(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|port| sentinel_addr(*port))
    }

    /// Which of `servers` is primary, by the sentinels.
    pub fn primary_index(&self) -> Option<usize> {
        let port = self.primary()?;
        self.servers.iter().position(|p| *p == port)
    }

    /// Kills data server `i` with SIGKILL.
    pub fn kill_server(&mut self, i: usize) {
        self.server_processes[i] = None;
    }

    /// Kills sentinel `i` with SIGKILL.
    pub fn kill_sentinel(&mut self, i: usize) {
        self.sentinel_processes[i] = None;
    }

    /// Waits until some server is primary with a replica in sync.
    pub fn wait_until_replicated(&self) {
        wait_until("a replica in sync", Duration::from_secs(90), || {
            self.servers.iter().any(|port| {
                query(*port, &["INFO", "replication"]).is_some_and(|info| {
                    info.contains("role:master")
                        && info.contains("connected_slaves:1")
                        && info.contains("state=online")
                })
            })
        });
    }
}

/// `args` sent to the server on `port`, its answer as text; `None` when it
/// does not answer.
pub fn query(port: u16, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    let value: redis::Value = command.query(&mut connection).ok()?;
    Some(text(&value))
}

/// A reply as text, arrays one element per line.
fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) => text.clone(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("\n"),
        redis::Value::Nil => String::new(),
        other => format!("{other:?}"),
    }
}

/// The primary's port as the sentinel on `port` names it.
fn sentinel_addr(port: u16) -> Option<u16> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    let (_, primary): (String, u16) = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(SERVICE)
        .query(&mut connection)
        .ok()?;
    Some(primary)
}
