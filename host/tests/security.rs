//! Security between services and at the edge, end to end: private
//! services, call grants (generic and typed), secrets that never leave the
//! host that resolves them, JWT verification before a service runs (and a
//! claims header no client can forge), and rate limits.
//!
//! Needs redis-server (the secrets-in-a-cluster test) and Chromium (the
//! console): `scripts/test.sh` installs them.

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::cluster::{self, Node, TOKEN, free_port, redis_connection, start_redis, wait_until};
use common::{Hive, client, demo_components, hive_binary, install, test_components};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use redis::Commands;
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(120);

fn get(url: &str) -> (u16, String) {
    let response = client().get(url).send().unwrap();
    (
        response.status().as_u16(),
        response.text().unwrap_or_default(),
    )
}

/// Writes `name`'s manifest into `dir`.
fn manifest(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

fn wasm(from: &Path, name: &str, dir: &Path) {
    std::fs::copy(
        from.join(format!("{name}.wasm")),
        dir.join(format!("{name}.wasm")),
    )
    .unwrap();
}

#[test]
fn a_private_service_is_unknown_to_the_public_and_served_to_a_granted_caller() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["users", "inventory", "orders"] {
        install(demo_components(), name, dir.path());
    }
    install(test_components(), "relay", dir.path());
    manifest(
        dir.path(),
        "users",
        "routes = [\"/users\", \"/users/:id\"]\npublic = false\ncalls = []\n",
    );
    manifest(dir.path(), "relay", "calls = [\"users\"]\n");
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["orders.wasm linked"]);
    // The public: the same 404 as a path nobody serves.
    let (status, body) = get(&hive.url("/users/ana"));
    let (unknown_status, unknown) = get(&hive.url("/nobody/ana"));
    assert_eq!((status, unknown_status), (404, 404));
    let body: Value = serde_json::from_str(&body).unwrap();
    let unknown: Value = serde_json::from_str(&unknown).unwrap();
    assert_eq!(body["error"], unknown["error"]);
    // A granted caller reaches it by name (`relay`, services.call) ...
    let created = client()
        .put(hive.url("/relay/users/users/ana"))
        .body(r#"{"name": "Ana", "email": "ana@example.com"}"#)
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let (status, body) = get(&hive.url("/relay/users/users/ana"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ana@example.com"), "{body}");
    // ... and by a typed import (`orders` -> directory.get-user).
    let stocked = client()
        .put(hive.url("/inventory/mug"))
        .body(r#"{"count": 5}"#)
        .send()
        .unwrap();
    assert_eq!(stocked.status(), 200);
    let order = client()
        .post(hive.url("/orders"))
        .body(r#"{"user": "ana", "sku": "mug", "quantity": 1}"#)
        .send()
        .unwrap();
    assert_eq!(order.status(), 201);
    assert!(order.text().unwrap().contains("ana@example.com"));
}

#[test]
fn calls_and_typed_imports_need_a_grant_and_say_which() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["users", "inventory", "orders", "echo"] {
        install(demo_components(), name, dir.path());
    }
    install(test_components(), "relay", dir.path());
    // orders may call inventory only: its typed import of users waits.
    manifest(
        dir.path(),
        "orders",
        "routes = [\"/orders\", \"/orders/:id\", \"/orders/:id/customer\"]\ncalls = [\"inventory\"]\n",
    );
    manifest(dir.path(), "relay", "calls = [\"echo\"]\n");
    let hive = Hive::start(dir.path(), &[]);

    // The generic call: granted to echo, refused to users, naming the grant.
    let (status, body) = get(&hive.url("/relay/echo/x"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&hive.url("/relay/users/users/ana"));
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("not granted") && body.contains("calls in relay.toml"),
        "{body}"
    );

    // The typed import: the service waits, and the reason names the grant.
    let response = client()
        .post(hive.url("/orders"))
        .body(r#"{"user": "ana", "sku": "mug", "quantity": 1}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().unwrap();
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("shop:users/directory")
            && reason.contains("\"users\" to calls in orders.toml"),
        "{body}"
    );

    // The graph shows the grants and what was refused.
    let graph: Value = client()
        .get(hive.admin_url("/graph"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let edges = graph["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "relay" && e["to"] == "users" && e["kind"] == "refused"),
        "{graph}"
    );
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "orders" && e["to"] == "users" && e["granted"] == false),
        "{graph}"
    );
    let orders = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "orders")
        .unwrap();
    assert_eq!(orders["calls"], json!(["inventory"]));
    let dom = common::chromium_dom(&hive.admin_url("/"));
    assert!(
        dom.contains("relay → users via services.call (not granted): not granted, refused 1 times"),
        "{dom}"
    );
    assert!(dom.contains("may call inventory"), "{dom}");

    // `hive inspect` names the grants.
    let output = Command::new(hive_binary())
        .arg("inspect")
        .arg(dir.path().join("orders.wasm"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("calls:    inventory"), "{text}");
}

#[test]
fn strict_denies_calls_a_manifest_does_not_grant() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["users", "inventory", "orders"] {
        install(demo_components(), name, dir.path());
    }
    // No `calls` at all: allowed by default, denied under --strict.
    manifest(
        dir.path(),
        "orders",
        "routes = [\"/orders\", \"/orders/:id\", \"/orders/:id/customer\"]\n",
    );
    let open = Hive::start(dir.path(), &[]);
    open.wait_for_log(&["orders.wasm linked"]);
    drop(open);
    let strict = Hive::start(dir.path(), &["--strict"]);
    let line = strict.wait_for_log(&["orders.wasm is waiting"]);
    assert!(line.contains("does not grant"), "{line}");
}

/// A secret's value, unlikely to appear anywhere by chance.
const SECRET: &str = "s3cr3t-Hv8QmZ2k";

/// Starts `hive serve` with `RUST_LOG=debug`, its log in a file; returns
/// the child, the log's path, and the public and admin ports.
fn debug_host(
    dir: &Path,
    secrets: &Path,
    work: &Path,
) -> (cluster::Process, std::path::PathBuf, u16, u16) {
    let (public, admin) = (free_port(), free_port());
    let log = work.join("debug.log");
    let child = Command::new(hive_binary())
        .arg("serve")
        .arg("--dir")
        .arg(dir)
        .arg("--secrets")
        .arg(secrets)
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .arg("--data")
        .arg(work.join("data"))
        .args(["--listen", &format!("127.0.0.1:{public}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (cluster::Process(child), log, public, admin)
}

#[test]
fn a_secret_reaches_the_guest_and_nothing_else() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("deploy");
    let secrets = work.path().join("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&secrets).unwrap();
    wasm(demo_components(), "hello", &dir);
    manifest(
        &dir,
        "hello",
        "routes = [\"/hello\", \"/hello/:name\"]\ncalls = []\n[config]\n\
         greeting = { secret = \"hello-name\" }\ndefault-name = \"world\"\n",
    );
    let (_host, log, public, admin) = debug_host(&dir, &secrets, work.path());
    let admin_url = |path: &str| format!("http://127.0.0.1:{admin}{path}");
    let public_url = |path: &str| format!("http://127.0.0.1:{public}{path}");
    wait_until("ready", READY, || {
        client()
            .get(admin_url("/ready"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });

    // Missing: the service waits, naming the secret and where to put it.
    let (status, body) = get(&public_url("/hello"));
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("secret hello-name is not set") && body.contains("HIVE_SECRET_HELLO_NAME"),
        "{body}"
    );
    // The secret arrives: the service serves, and the guest reads it.
    std::fs::write(secrets.join("hello-name"), format!("{SECRET}\n")).unwrap();
    wait_until("hello serves once its secret is there", READY, || {
        get(&public_url("/hello")).0 == 200
    });
    let response = client().get(public_url("/hello")).send().unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    // (hello logs the name it greets, never the greeting.)
    assert_eq!(response.text().unwrap(), format!("{SECRET}, world!\n"));

    // Nowhere else: not in any admin answer, ...
    let mut bodies = Vec::new();
    for path in [
        "/components".to_string(),
        "/components/hello/versions".to_string(),
        "/wit".to_string(),
        "/graph".to_string(),
        "/graph.dot".to_string(),
        "/stats".to_string(),
        "/failures".to_string(),
        "/events".to_string(),
        "/metrics".to_string(),
        format!("/requests/{request_id}/logs"),
    ] {
        let (status, body) = get(&admin_url(&path));
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains(SECRET), "{path} shows the secret: {body}");
        bodies.push(path);
    }
    // ... not in the console as a browser renders it, ...
    let dom = common::chromium_dom(&admin_url("/"));
    assert!(dom.contains("data-component=\"hello\""), "{dom}");
    assert!(!dom.contains(SECRET), "the console shows the secret");
    // ... not in what `hive wit` writes, ...
    let out = work.path().join("wit-out");
    let status = Command::new(hive_binary())
        .args(["wit", "--out"])
        .arg(&out)
        .args(["--admin", &admin_url("")])
        .status()
        .unwrap();
    assert!(status.success());
    for entry in walk(&out) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(SECRET),
            "{} holds the secret",
            entry.display()
        );
    }
    // ... nor in the kept versions, ...
    for entry in walk(&dir.join(".versions")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{}",
            entry.display()
        );
    }
    // ... nor anywhere in the host's own log at debug level.
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("DEBUG"), "the log is at debug level");
    assert!(!text.contains(SECRET), "the debug log shows the secret");
    println!(
        "secret: read by the guest; absent from {} admin endpoints, the console, hive wit, \
         the kept versions and a {}-line debug log",
        bodies.len(),
        text.lines().count()
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_cluster_deploy_puts_only_the_secrets_name_in_redis() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let _redis = start_redis(&work.path().join("redis"), port);
    let url = format!("redis://127.0.0.1:{port}/0");
    let secrets = work.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("hello-name"), SECRET).unwrap();
    let secrets_arg = secrets.to_str().unwrap().to_string();
    let nodes = [
        Node::new(work.path(), "a", &url),
        Node::new(work.path(), "b", &url),
    ];
    let _processes: Vec<_> = nodes
        .iter()
        .map(|n| n.start_with(&["--secrets", &secrets_arg]))
        .collect();
    let http = cluster::http();
    for node in &nodes {
        wait_until("host ready", READY, || node.ready(&http));
    }
    let response = http
        .put(nodes[0].admin_url("/components/hello/manifest"))
        .bearer_auth(TOKEN)
        .body(
            "routes = [\"/hello\"]\ncalls = []\n[config]\ngreeting = { secret = \"hello-name\" }\n",
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let hello = std::fs::read(demo_components().join("hello.wasm")).unwrap();
    let (status, text) = cluster::upload(&http, &nodes[0], "hello", hello);
    assert_eq!(status, 202, "{text}");
    for node in &nodes {
        wait_until("hello with its secret on every host", READY, || {
            http.get(node.url("/hello"))
                .send()
                .and_then(|r| r.text())
                .is_ok_and(|t| t.contains(SECRET))
        });
    }
    // Every key and every value in Redis, read back.
    let mut redis = redis_connection(&url);
    let keys: Vec<String> = redis
        .scan()
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    assert!(
        keys.iter().any(|k| k == "hive:cluster:components"),
        "{keys:?}"
    );
    let mut checked = 0;
    for key in &keys {
        assert!(!key.contains(SECRET), "{key}");
        let kind: String = redis::cmd("TYPE").arg(key).query(&mut redis).unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![redis.get(key).unwrap()],
            "hash" => {
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = redis.hgetall(key).unwrap();
                pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
            }
            "set" => redis.smembers(key).unwrap(),
            "zset" => redis.zrange(key, 0, -1).unwrap(),
            "list" => redis.lrange(key, 0, -1).unwrap(),
            "stream" => {
                let entries: redis::streams::StreamRangeReply = redis.xrange_all(key).unwrap();
                entries
                    .ids
                    .iter()
                    .flat_map(|e| {
                        e.map
                            .values()
                            .filter_map(|v| redis::from_redis_value_ref::<Vec<u8>>(v).ok())
                    })
                    .collect()
            }
            other => panic!("a {other} at {key}"),
        };
        for value in values {
            assert!(
                !String::from_utf8_lossy(&value).contains(SECRET),
                "{key} holds the secret"
            );
            checked += 1;
        }
    }
    let record: String = redis.hget("hive:cluster:components", "hello").unwrap();
    assert!(
        record.contains("hello-name"),
        "only the name travels: {record}"
    );
    println!(
        "secret in a cluster: {} keys, {checked} values in Redis, none holds it",
        keys.len()
    );
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: &Value, key: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key).unwrap(),
    )
    .unwrap()
}

/// `echo` behind `[auth]`, its manifest's `auth` table given; returns the
/// host and the folder of secrets.
fn echo_with_auth(
    auth: &str,
    secrets: &[(&str, &str)],
) -> (Hive, tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    for (name, value) in secrets {
        std::fs::write(secret_dir.path().join(name), value).unwrap();
    }
    wasm(demo_components(), "echo", dir.path());
    manifest(
        dir.path(),
        "echo",
        &format!("routes = [\"/echo/open\", \"/echo/...\"]\ncalls = []\n[auth]\n{auth}\n"),
    );
    let hive = Hive::start(
        dir.path(),
        &["--secrets", secret_dir.path().to_str().unwrap()],
    );
    (hive, dir, secret_dir)
}

fn call_echo(
    hive: &Hive,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut request = client().get(hive.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, response.json().unwrap_or(Value::Null), challenge)
}

#[test]
fn tokens_are_verified_before_the_service_runs_and_claims_cannot_be_forged() {
    let key = b"a-long-enough-hmac-key-for-tests";
    let (hive, _dir, _secrets) = echo_with_auth(
        "algorithms = [\"HS256\"]\nhmac-secret = \"jwt-key\"\nissuer = \"https://login.test\"\n\
         audience = \"shop\"\nleeway-seconds = 5\npublic = [\"GET /echo/open\"]",
        &[("jwt-key", std::str::from_utf8(key).unwrap())],
    );
    let good =
        json!({"sub": "ana", "iss": "https://login.test", "aud": "shop", "exp": now() + 600});
    let forged = r#"{"sub":"admin"}"#;

    // A valid token: 200, and the service sees the verified claims only.
    let (status, body, _) = call_echo(
        &hive,
        "/echo/orders",
        Some(&hs256(&good, key)),
        &[("x-hive-claims", forged)],
    );
    assert_eq!(status, 200, "{body}");
    let claims: Value =
        serde_json::from_str(body["headers"]["x-hive-claims"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], "ana");
    // A public route needs no token, and a forged header never arrives.
    let (status, body, _) = call_echo(&hive, "/echo/open", None, &[("x-hive-claims", forged)]);
    assert_eq!(status, 200, "{body}");
    assert!(body["headers"].get("x-hive-claims").is_none(), "{body}");

    let mut refused = Vec::new();
    let with = |changes: Value| {
        let mut claims = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let unsigned = format!(
        "{}.{}.",
        url64(br#"{"alg":"none","typ":"JWT"}"#),
        url64(serde_json::to_string(&good).unwrap().as_bytes())
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        (
            "expired",
            Some(hs256(&with(json!({"exp": now() - 120})), key)),
        ),
        (
            "not yet valid",
            Some(hs256(&with(json!({"nbf": now() + 300})), key)),
        ),
        (
            "wrong signature",
            Some(hs256(&good, b"some-other-key-entirely-wrong!!")),
        ),
        (
            "wrong audience",
            Some(hs256(&with(json!({"aud": "elsewhere"})), key)),
        ),
        (
            "wrong issuer",
            Some(hs256(&with(json!({"iss": "https://evil.test"})), key)),
        ),
        ("alg none", Some(unsigned)),
        (
            "no exp",
            Some(hs256(
                &json!({"sub": "ana", "iss": "https://login.test", "aud": "shop"}),
                key,
            )),
        ),
        ("missing header", None),
        ("malformed header", Some("not.a-token".to_string())),
    ];
    for (case, token) in cases {
        let (status, body, challenge) = call_echo(&hive, "/echo/orders", token.as_deref(), &[]);
        assert_eq!(status, 401, "{case}: {body}");
        let challenge = challenge.unwrap_or_else(|| panic!("{case}: no WWW-Authenticate"));
        assert!(challenge.starts_with("Bearer "), "{case}: {challenge}");
        refused.push(format!(
            "{case}: {}",
            body["reason"].as_str().unwrap_or_default()
        ));
    }
    let basic = client()
        .get(hive.url("/echo/orders"))
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .send()
        .unwrap();
    assert_eq!(basic.status(), 401);
    println!("JWT refused with 401: {}", refused.join("; "));
}

/// Base64url without padding, as JWTs use it.
fn url64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn a_public_key_policy_refuses_an_hmac_token_made_from_its_own_key() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let signing = EncodingKey::from_ec_der(&pair.serialize_der());
    let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let jwks = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
    let (hive, _dir, _secrets) = echo_with_auth(
        "algorithms = [\"ES256\"]\njwks-secret = \"jwks\"\naudience = \"shop\"",
        &[("jwks", &jwks)],
    );
    let claims = json!({"sub": "bo", "aud": "shop", "exp": now() + 600});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let good = encode(&header, &claims, &signing).unwrap();
    let (status, body, _) = call_echo(&hive, "/echo/x", Some(&good), &[]);
    assert_eq!(status, 200, "{body}");
    // The confusion attack: HS256 keyed with the public key's own text.
    for secret in [jwks.as_bytes(), pair.public_key_raw()] {
        let confused = hs256(&claims, secret);
        let (status, body, _) = call_echo(&hive, "/echo/x", Some(&confused), &[]);
        assert_eq!(status, 401, "{body}");
        assert!(
            body["reason"].as_str().unwrap().contains("not accepted"),
            "{body}"
        );
    }
}

#[test]
fn a_rate_limit_answers_429_past_it_and_serves_again_after_the_window_per_host() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let _redis = start_redis(&work.path().join("redis"), port);
    let url = format!("redis://127.0.0.1:{port}/0");
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    manifest(
        dir.path(),
        "hello",
        "routes = [\"/hello\"]\ncalls = []\n[config]\ngreeting = \"Hello\"\n[limits]\nrate = \"10/s\"\nburst = 5\n",
    );
    // Two hosts sharing one Redis (kv and events): the limit is each host's own.
    let a = Hive::start(dir.path(), &["--kv", &url]);
    let b = Hive::start(dir.path(), &["--kv", &url]);
    let statuses: Vec<u16> = (0..12).map(|_| get(&a.url("/hello")).0).collect();
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let limited = client().get(a.url("/hello")).send().unwrap();
    assert!((5..12).contains(&passed), "{statuses:?}");
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Host b keeps its own count: it still serves.
    assert_eq!(get(&b.url("/hello")).0, 200);
    // After the window, a serves again.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(get(&a.url("/hello")).0, 200);
    println!(
        "rate 10/s burst 5: {passed} of 12 at once passed, then 429 with Retry-After; the other host served; 200 again after 1.2 s"
    );
}
