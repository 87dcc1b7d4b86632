//! A cluster does not trust Redis: whatever anyone with access to Redis
//! writes there (a name that climbs out of the folder, a digest that does
//! not match its blob, a missing blob, unreadable JSON), a bad record
//! leaves its component as it was and the rest of the cluster keeps
//! deploying; concurrent deploys never lose a blob; a Redis that comes
//! back empty wipes nothing; a joining host deletes nothing of its own; a
//! host restarted while Redis is down serves its folder; and no host of a
//! cluster runs without an admin token.
//!
//! Needs redis-server: `scripts/test.sh` installs it.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::cluster::{
    Node, Process, TOKEN, deploy, free_port, http, redis_connection, start_redis, upload,
    wait_until,
};
use common::{demo_components, hive_binary, install};
use redis::Commands;

const READY: Duration = Duration::from_secs(120);

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn demo(name: &str) -> Vec<u8> {
    std::fs::read(demo_components().join(format!("{name}.wasm"))).unwrap()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Redis with a cluster of `names.len()` hosts, each ready.
struct Cluster {
    work: tempfile::TempDir,
    redis_port: u16,
    url: String,
    redis: Option<Process>,
}

impl Cluster {
    fn new() -> Cluster {
        let work = tempfile::tempdir().unwrap();
        let redis_port = free_port();
        let redis = start_redis(&work.path().join("redis"), redis_port);
        Cluster {
            url: format!("redis://127.0.0.1:{redis_port}/0"),
            work,
            redis_port,
            redis: Some(redis),
        }
    }

    fn node(&self, name: &str) -> Node {
        Node::new(self.work.path(), name, &self.url)
    }

    fn path(&self) -> &Path {
        self.work.path()
    }
}

#[test]
fn bad_records_in_redis_touch_no_file_and_stop_no_deploy() {
    let cluster = Cluster::new();
    let http = http();
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    let _a = a.start();
    let mut b_process = Some(b.start());
    for node in [&a, &b] {
        wait_until("host ready", READY, || node.ready(&http));
    }
    deploy(&http, &a, "hello");
    for node in [&a, &b] {
        wait_until("hello everywhere", READY, || {
            node.status(&http, "/hello") == 200
        });
    }

    // Anyone with access to Redis writes what they like.
    let mut redis = redis_connection(&cluster.url);
    let outside = cluster.path().join("outside");
    let zeros = "0".repeat(64);
    let nothing = sha256(b"no such blob");
    let records: Vec<(String, String)> = vec![
        (
            "../p7esc".into(),
            r#"{"digest":null,"manifest":"x = 1"}"#.into(),
        ),
        (
            outside.display().to_string(),
            r#"{"digest":null,"manifest":"routes = []"}"#.into(),
        ),
        (
            "nodir/x".into(),
            r#"{"digest":null,"manifest":"routes = []"}"#.into(),
        ),
        ("mismatch".into(), format!(r#"{{"digest":"{zeros}"}}"#)),
        ("missing".into(), format!(r#"{{"digest":"{nothing}"}}"#)),
        ("hello".into(), "this is not json".into()),
    ];
    let _: () = redis
        .set(format!("hive:cluster:wasm:{zeros}"), demo("echo"))
        .unwrap();
    for (name, record) in &records {
        let _: () = redis.hset("hive:cluster:components", name, record).unwrap();
    }
    let _: () = redis.incr("hive:cluster:version", 1).unwrap();

    // The rest of the cluster keeps deploying, through either host.
    deploy(&http, &b, "echo");
    for node in [&a, &b] {
        wait_until("echo everywhere despite bad records", READY, || {
            node.status(&http, "/echo/x") == 200
        });
    }
    // Let several polls and one more version go by.
    deploy(&http, &a, "users");
    for node in [&a, &b] {
        wait_until("users everywhere", READY, || {
            node.status(&http, "/users") == 200
        });
    }
    std::thread::sleep(Duration::from_secs(2));

    // Nothing was written outside the folder or for a bad record, and the
    // component whose record became unreadable keeps its last version.
    for node in [&a, &b] {
        assert!(!node.root.join("p7esc.toml").exists());
        assert!(!node.dir().join("mismatch.wasm").exists());
        assert!(!node.dir().join("missing.wasm").exists());
        assert!(!node.dir().join("nodir").exists());
        assert_eq!(node.status(&http, "/hello"), 200);
        assert!(node.dir().join("hello.wasm").exists());
        let log = node.log();
        for (name, _) in &records {
            let said = format!("ignoring the cluster's record for {:?}", name);
            assert_eq!(
                count(&log, &said),
                1,
                "{said} on {}:\n{log}",
                node.root.display()
            );
        }
        let standing = node.standing(&http);
        assert_eq!(standing["standing"]["state"], "following", "{standing}");
        assert_eq!(
            standing["standing"]["bad_records"].as_array().map(Vec::len),
            Some(records.len()),
            "{standing}"
        );
    }
    assert!(!outside.exists() && !outside.with_extension("toml").exists());
    assert!(!cluster.path().join("p7esc.toml").exists());
    println!(
        "bad records: {} refused on 2 hosts, each logged once; deploys went on",
        records.len()
    );

    // A host restarted beside the bad records becomes ready and serves.
    drop(b_process.take());
    let _b = b.start();
    wait_until("the restarted host ready", READY, || b.ready(&http));
    for path in ["/hello", "/echo/x", "/users"] {
        assert_eq!(b.status(&http, path), 200, "{path}: {}", b.log());
    }
}

#[test]
fn two_hosts_deploying_one_name_together_never_lose_its_blob() {
    let cluster = Cluster::new();
    let http = http();
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    let (_a, _b) = (a.start(), b.start());
    for node in [&a, &b] {
        wait_until("host ready", READY, || node.ready(&http));
    }
    let (hello, echo) = (demo("hello"), demo("echo"));
    let rounds = 200;
    let barrier = Arc::new(Barrier::new(2));
    let deployers: Vec<_> = [(a.admin, hello), (b.admin, echo)]
        .into_iter()
        .map(|(admin, wasm)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let http = common::cluster::http();
                let mut refused = Vec::new();
                for round in 0..rounds {
                    barrier.wait();
                    let response = http
                        .put(format!("http://127.0.0.1:{admin}/components/flip"))
                        .bearer_auth(TOKEN)
                        .body(wasm.clone())
                        .send()
                        .unwrap();
                    let status = response.status().as_u16();
                    if status != 202 {
                        refused.push(format!(
                            "round {round}: {status} {}",
                            response.text().unwrap_or_default()
                        ));
                    }
                }
                refused
            })
        })
        .collect();
    let refused: Vec<String> = deployers
        .into_iter()
        .flat_map(|d| d.join().unwrap())
        .collect();
    let mut redis = redis_connection(&cluster.url);
    let record: String = redis.hget("hive:cluster:components", "flip").unwrap();
    let digest = serde_json::from_str::<serde_json::Value>(&record).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob: bool = redis.exists(format!("hive:cluster:wasm:{digest}")).unwrap();
    println!(
        "{rounds} rounds of two concurrent deploys of one name: {} refused, blob of the \
         winner present: {blob}",
        refused.len()
    );
    assert!(refused.is_empty(), "{refused:?}");
    assert!(blob, "the record names {digest}, whose blob is gone");
    // No blob is kept that no record names.
    let blobs: Vec<String> = redis.smembers("hive:cluster:blobs").unwrap();
    assert_eq!(blobs, std::slice::from_ref(&digest));
    for node in [&a, &b] {
        wait_until("both hosts serve the winner", READY, || {
            node.status(&http, "/flip") == 200
                && std::fs::read(node.dir().join("flip.wasm")).is_ok_and(|w| sha256(&w) == digest)
        });
    }
}

#[test]
fn a_flushed_redis_wipes_no_host_and_adopt_brings_the_cluster_back() {
    let cluster = Cluster::new();
    let http = http();
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    let (_a, _b) = (a.start(), b.start());
    for node in [&a, &b] {
        wait_until("host ready", READY, || node.ready(&http));
    }
    deploy(&http, &a, "hello");
    for node in [&a, &b] {
        wait_until("hello everywhere", READY, || {
            node.status(&http, "/hello") == 200
        });
    }

    let mut redis = redis_connection(&cluster.url);
    let _: () = redis::cmd("FLUSHALL").query(&mut redis).unwrap();
    for node in [&a, &b] {
        wait_until("the host refuses the empty Redis", READY, || {
            node.standing(&http)["standing"]["state"] == "refusing"
        });
    }
    // Well past the poll interval: nothing was deleted.
    std::thread::sleep(Duration::from_secs(3));
    for node in [&a, &b] {
        assert_eq!(node.status(&http, "/hello"), 200, "{}", node.log());
        assert!(node.dir().join("hello.wasm").exists());
        assert_eq!(
            count(&node.log(), "refusing to follow the cluster"),
            1,
            "{}",
            node.log()
        );
    }
    // Nothing can be published through a refusing host.
    let (status, text) = upload(&http, &a, "echo", demo("echo"));
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("refuses to follow the cluster"), "{text}");

    // The operator says host a's folder wins.
    let adopted = Command::new(hive_binary())
        .args([
            "cluster",
            "adopt",
            "--admin",
            &a.admin_url(""),
            "--token",
            TOKEN,
        ])
        .output()
        .unwrap();
    assert!(
        adopted.status.success(),
        "{}",
        String::from_utf8_lossy(&adopted.stderr)
    );
    for node in [&a, &b] {
        wait_until("every host follows again", READY, || {
            node.standing(&http)["standing"]["state"] == "following"
        });
    }
    let record: Option<String> = redis.hget("hive:cluster:components", "hello").unwrap();
    assert!(record.is_some(), "adopt did not publish hello");
    deploy(&http, &b, "echo");
    for node in [&a, &b] {
        wait_until("deploys work again", READY, || {
            node.status(&http, "/echo/x") == 200 && node.status(&http, "/hello") == 200
        });
    }
}

#[test]
fn joining_hosts_publish_or_set_aside_their_own_services_and_delete_none() {
    let cluster = Cluster::new();
    let http = http();
    // The first host starts the cluster from its folder.
    let a = cluster.node("a");
    install(demo_components(), "hello", &a.dir());
    install(demo_components(), "echo", &a.dir());
    let _a = a.start();
    wait_until("the first host ready", READY, || a.ready(&http));
    let mut redis = redis_connection(&cluster.url);
    let mut names: Vec<String> = redis.hkeys("hive:cluster:components").unwrap();
    names.sort();
    assert_eq!(names, ["echo", "hello"], "{}", a.log());
    assert!(a.log().contains("started cluster"), "{}", a.log());

    // A second host with a service of its own joins: it takes the
    // cluster's set and keeps its own service aside, and says so.
    let b = cluster.node("b");
    install(demo_components(), "users", &b.dir());
    let _b = b.start();
    wait_until("the joining host ready", READY, || b.ready(&http));
    assert_eq!(b.status(&http, "/hello"), 200);
    assert_eq!(b.status(&http, "/echo/x"), 200);
    assert_eq!(b.status(&http, "/users"), 404);
    assert!(b.dir().join(".before-cluster/users.wasm").exists());
    assert!(
        b.log().contains("were moved to .before-cluster/"),
        "{}",
        b.log()
    );
    let mut names: Vec<String> = redis.hkeys("hive:cluster:components").unwrap();
    names.sort();
    assert_eq!(names, ["echo", "hello"]);
}

#[test]
fn a_host_restarted_while_redis_is_down_serves_its_folder_and_catches_up() {
    let mut cluster = Cluster::new();
    let http = http();
    let a = cluster.node("a");
    let a_process = a.start();
    wait_until("host ready", READY, || a.ready(&http));
    deploy(&http, &a, "hello");
    wait_until("hello", READY, || a.status(&http, "/hello") == 200);

    drop(cluster.redis.take());
    drop(a_process);
    let _a = a.start();
    wait_until("ready without Redis", READY, || a.ready(&http));
    assert_eq!(a.status(&http, "/hello"), 200);
    assert_eq!(a.standing(&http)["standing"]["state"], "unreachable");
    assert!(a.log().contains("may be stale"), "{}", a.log());

    // Redis comes back with its data: the host follows it again.
    let port = cluster.redis_port;
    cluster.redis = Some(start_redis(&cluster.path().join("redis"), port));
    wait_until("following again", READY, || {
        a.standing(&http)["standing"]["state"] == "following"
    });
    deploy(&http, &a, "echo");
    wait_until("deploys again", READY, || a.status(&http, "/echo/x") == 200);
}

#[test]
fn a_cluster_host_without_an_admin_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hive.log");
    let mut child = Command::new(hive_binary())
        .arg("serve")
        .arg("--dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--cluster", "redis://127.0.0.1:1/0"])
        .env_remove("HIVE_ADMIN_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("still running after 60 s:\n{log}"));
    assert!(!status.success(), "{log}");
    assert!(log.contains("--cluster needs an admin token"), "{log}");
}
