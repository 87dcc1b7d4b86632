//! The operator console, used the way an operator uses it: real traffic to
//! the shop and a hostile component, then the admin API's views (stats,
//! the service graph, failures, a request's log lines, versions), a
//! rollback under load, the page in headless Chromium and `hive top` in
//! tmux.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Hive, client, demo_components, hive_binary, install, test_components};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn admin_json(hive: &Hive, path: &str) -> Value {
    let response = client().get(hive.admin_url(path)).send().unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().unwrap()
}

fn send(hive: &Hive, method: &str, path: &str, body: Value) -> (u16, Value, String) {
    let request = match method {
        "POST" => client().post(hive.url(path)),
        "PUT" => client().put(hive.url(path)),
        _ => client().get(hive.url(path)),
    };
    let response = request.json(&body).send().unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null), id)
}

/// The shop, `hostile`, `hello`, and `catalog`, which waits for a reviews
/// service that is not there.
fn console_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["users", "inventory", "orders", "hello", "catalog"] {
        install(demo_components(), name, dir.path());
    }
    install(test_components(), "hostile", dir.path());
    dir
}

/// Orders (typed calls to users and inventory, one refused), a customer
/// lookup (a generic call), hellos, and a panic in `hostile`. Returns the
/// request id of the panic.
fn traffic(hive: &Hive) -> String {
    hive.wait_for_log(&["orders.wasm linked"]);
    let user = json!({"name": "Ana", "email": "ana@example.com"});
    assert_eq!(send(hive, "PUT", "/users/ana", user).0, 201);
    assert_eq!(
        send(hive, "PUT", "/inventory/apple", json!({"count": 5})).0,
        200
    );
    let order = json!({"user": "ana", "sku": "apple", "quantity": 1});
    let (status, created, _) = send(hive, "POST", "/orders", order.clone());
    assert_eq!(status, 201, "{created}");
    assert_eq!(send(hive, "POST", "/orders", order).0, 201);
    let nobody = json!({"user": "bob", "sku": "apple", "quantity": 1});
    assert_eq!(send(hive, "POST", "/orders", nobody).0, 404);
    let customer = format!("/orders/{}/customer", created["id"]);
    assert_eq!(send(hive, "GET", &customer, Value::Null).0, 200);
    for _ in 0..10 {
        assert_eq!(send(hive, "GET", "/hello", Value::Null).0, 200);
    }
    let (status, body, id) = send(hive, "GET", "/hostile/panic", Value::Null);
    assert_eq!(status, 500, "{body}");
    hive.wait_for_log(&["request failed", &id]);
    hive.wait_for_log(&["status=500", &id]);
    id
}

fn edge<'a>(graph: &'a Value, from: &str, to: &str, via: &str) -> &'a Value {
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == from && e["to"] == to && e["via"].as_str().unwrap().contains(via))
        .unwrap_or_else(|| panic!("no edge {from} -> {to} via {via} in {graph:#}"))
}

#[test]
fn stats_graph_failures_and_request_logs_describe_real_traffic() {
    let dir = console_dir();
    let hive = Hive::start(dir.path(), &[]);
    let failed_id = traffic(&hive);

    // Stats: 15 minutes of 5 s buckets, host-wide and per component.
    let stats = admin_json(&hive, "/stats");
    assert_eq!(stats["bucket_seconds"], 5);
    let host = stats["host"].as_array().unwrap();
    assert_eq!(host.len(), 180);
    let total = |points: &[Value]| -> f64 {
        points
            .iter()
            .map(|p| p["requests_per_second"].as_f64().unwrap() * 5.0)
            .sum()
    };
    assert_eq!(total(host).round(), 17.0, "{stats}");
    let hello = stats["components"]["hello"].as_array().unwrap();
    assert_eq!(total(hello).round(), 10.0);
    assert!(
        hello
            .iter()
            .any(|p| p["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0))
    );
    let hostile = stats["components"]["hostile"].as_array().unwrap();
    let errors: f64 = hostile
        .iter()
        .map(|p| p["errors_per_second"].as_f64().unwrap() * 5.0)
        .sum();
    assert_eq!(errors.round(), 1.0);

    // The graph: typed links with their calls, the generic call, and
    // catalog waiting for an interface no one exports.
    let graph = admin_json(&hive, "/graph");
    let users = edge(&graph, "orders", "users", "shop:users/directory");
    assert_eq!(users["kind"], "typed");
    assert_eq!(users["calls"], 3, "{graph:#}");
    assert_eq!(users["errors"], 0);
    let stock = edge(&graph, "orders", "inventory", "shop:inventory/stock");
    assert_eq!(stock["calls"], 2, "{graph:#}");
    let generic = edge(&graph, "orders", "users", "services.call");
    assert_eq!(generic["kind"], "call");
    assert_eq!(generic["calls"], 1);
    let catalog = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "catalog")
        .unwrap();
    assert_eq!(catalog["state"], "waiting");
    assert!(
        catalog["reason"]
            .as_str()
            .unwrap()
            .contains("shop:reviews/reviews"),
        "{catalog}"
    );
    assert!(graph["edges"].as_array().unwrap().iter().any(|e| {
        e["from"] == "catalog" && e["to"].is_null() && e["via"] == "shop:reviews/reviews@0.1.0"
    }));

    // The same graph as DOT, from the CLI.
    let output = Command::new(hive_binary())
        .args(["graph", "--admin", &hive.admin])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let dot = String::from_utf8(output.stdout).unwrap();
    assert!(dot.starts_with("digraph hive {"), "{dot}");
    assert!(
        dot.contains(
            r#""orders" -> "users" [label="shop:users/directory@0.1.0\n3 calls, 0 errors"];"#
        ),
        "{dot}"
    );
    assert!(dot.contains(r#""catalog" [label="catalog\nwaiting", color=orange];"#));

    // Failures: the panic, with its request id, kind and backtrace.
    let failures = admin_json(&hive, "/failures");
    let failure = &failures["failures"][0];
    assert_eq!(failure["request_id"], failed_id.as_str(), "{failures:#}");
    assert_eq!(failure["component"], "hostile");
    assert_eq!(failure["status"], 500);
    assert_eq!(failure["kind"], "trap");
    assert_eq!(failure["path"], "/hostile/panic");
    assert!(
        failure["message"].as_str().unwrap().contains("unreachable"),
        "{failure}"
    );
    assert!(
        !failure["backtrace"].as_str().unwrap().is_empty(),
        "{failure}"
    );
    // The refused order was a 404, an answer, not a failure.
    assert_eq!(failures["failures"].as_array().unwrap().len(), 1);
    let only_hello = admin_json(&hive, "/failures?component=hello");
    assert_eq!(only_hello["failures"], json!([]));
    let only_hostile = admin_json(&hive, "/failures?component=hostile");
    assert_eq!(only_hostile["failures"].as_array().unwrap().len(), 1);

    // Every log line of that request.
    let logs = admin_json(&hive, &format!("/requests/{failed_id}/logs"));
    let lines = logs["lines"].as_array().unwrap();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("request failed")),
        "{messages:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["target"] == "hive::request" && l["fields"]["status"] == "500"),
        "{logs:#}"
    );
    let unknown = admin_json(&hive, "/requests/no-such-request/logs");
    assert_eq!(unknown["lines"], json!([]));
    let note = unknown["note"].as_str().unwrap();
    assert!(note.contains("older than the last 2000 requests"), "{note}");
    assert!(note.contains("--log-capture-rate"), "{note}");
}

#[test]
fn past_its_rate_the_console_keeps_no_more_new_requests_but_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(test_components(), "hostile", dir.path());
    // Five new requests a second instead of a thousand, so a short burst
    // goes past it.
    let hive = Hive::start(dir.path(), &["--log-capture-rate", "5"]);
    let started = Instant::now();
    let ids: Vec<String> = (0..200)
        .map(|_| send(&hive, "GET", "/hello", Value::Null))
        .map(|(status, _, id)| {
            assert_eq!(status, 200);
            id
        })
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let kept: Vec<usize> = ids
        .iter()
        .map(|id| {
            let logs = admin_json(&hive, &format!("/requests/{id}/logs"));
            logs["lines"].as_array().unwrap().len()
        })
        .filter(|lines| *lines > 0)
        .collect();
    // Five at once, then five a second for as long as the burst took.
    let allowed = 5 + (5.0 * elapsed).ceil() as usize + 1;
    assert!(
        (1..=allowed).contains(&kept.len()),
        "{} of 200 requests in {elapsed:.1} s kept their lines; at most {allowed} may",
        kept.len()
    );
    // A kept request keeps all of its lines: hello's own and the request line.
    assert!(kept.iter().all(|lines| *lines == 2), "{kept:?}");
    // A request with no lines kept is answered with why, the rate named.
    let logs = admin_json(&hive, "/requests/not-kept/logs");
    let note = logs["note"].as_str().unwrap();
    assert!(note.contains("more than 5 new requests a second"), "{note}");

    // A failure past the cap: listed, with its lines.
    let (status, _, failed_id) = send(&hive, "GET", "/hostile/panic", Value::Null);
    assert_eq!(status, 500);
    let failures = admin_json(&hive, "/failures");
    assert_eq!(failures["failures"][0]["request_id"], failed_id.as_str());
    assert_eq!(failures["failures"][0]["kind"], "trap");
    let logs = admin_json(&hive, &format!("/requests/{failed_id}/logs"));
    let targets: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| line["target"].as_str())
        .collect();
    assert!(targets.contains(&"hive::request"), "{logs:#}");
    assert!(targets.len() >= 2, "the failure's own line too: {logs:#}");
}

/// `hello` with a manifest whose greeting is `greeting`, made a distinct
/// version by a custom section named after it. The manifest goes first, so
/// a host may serve the old code with it for a moment, as with any deploy
/// of two files.
fn write_hello(dir: &Path, greeting: &str) -> String {
    let mut wasm = std::fs::read(demo_components().join("hello.wasm")).unwrap();
    let name = greeting.as_bytes();
    // A custom section: id 0, size, name length, name.
    wasm.extend_from_slice(&[0, name.len() as u8 + 1, name.len() as u8]);
    wasm.extend_from_slice(name);
    let manifest =
        format!("routes = [\"/hello\", \"/hello/:name\"]\n[config]\ngreeting = \"{greeting}\"\n");
    std::fs::write(dir.join(".hello.toml.tmp"), manifest).unwrap();
    std::fs::rename(dir.join(".hello.toml.tmp"), dir.join("hello.toml")).unwrap();
    common::deploy_atomically(dir, "hello.wasm", &wasm);
    Sha256::digest(&wasm)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn serving_digest(hive: &Hive, name: &str) -> Option<String> {
    admin_json(hive, "/components")["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["digest"].as_str().map(str::to_string))
}

/// Waits until `name` serves `digest`; the next deploy may follow at once,
/// and both are kept.
fn wait_serving(hive: &Hive, name: &str, digest: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while serving_digest(hive, name).as_deref() != Some(digest) {
        assert!(Instant::now() < deadline, "{name} never served {digest}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn hello_text(hive: &Hive) -> String {
    client()
        .get(hive.url("/hello"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

#[test]
fn a_rollback_under_load_fails_no_request_and_restores_the_manifest_too() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_hello(dir.path(), "Hello");
    let hive = Hive::start(dir.path(), &[]);
    wait_serving(&hive, "hello", &first);
    let second = write_hello(dir.path(), "Howdy");
    wait_serving(&hive, "hello", &second);
    assert_eq!(hello_text(&hive), "Howdy, world!\n");

    let versions = admin_json(&hive, "/components/hello/versions");
    assert_eq!(versions["serving"], second.as_str());
    let kept: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["digest"].as_str().unwrap())
        .collect();
    assert_eq!(kept, [second.as_str(), first.as_str()]);

    // Four clients hammer /hello while the CLI rolls back.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let url = hive.url("/hello");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, sent, url) = (stop.clone(), sent.clone(), url.clone());
            thread::spawn(move || {
                let http = client();
                let mut bad = Vec::new();
                let mut greetings = std::collections::BTreeSet::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                for _ in 0..20_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    match http.get(&url).send() {
                        Ok(response) if response.status() == 200 => {
                            let text = response.text().unwrap_or_default();
                            greetings.insert(text.split(',').next().unwrap_or("").to_string());
                        }
                        Ok(response) => bad.push(response.status().to_string()),
                        Err(err) => bad.push(err.to_string()),
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                (bad, greetings)
            })
        })
        .collect();
    while sent.load(Ordering::Relaxed) < 200 {
        thread::sleep(Duration::from_millis(10));
    }
    let output = Command::new(hive_binary())
        .args(["rollback", "hello", "--admin", &hive.admin])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains(&format!("hello rolled back to {}", &first[..12])),
        "{said}"
    );
    let after = sent.load(Ordering::Relaxed);
    while sent.load(Ordering::Relaxed) < after + 200 {
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let mut greetings = std::collections::BTreeSet::new();
    for worker in workers {
        let (bad, seen) = worker.join().unwrap();
        assert!(
            bad.is_empty(),
            "failed requests during the rollback: {bad:?}"
        );
        greetings.extend(seen);
    }
    assert_eq!(
        greetings,
        ["Hello".to_string(), "Howdy".to_string()].into(),
        "both versions answered"
    );
    assert_eq!(
        serving_digest(&hive, "hello").as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        hello_text(&hive),
        "Hello, world!\n",
        "the manifest came back too"
    );
    assert!(
        std::fs::read_to_string(dir.path().join("hello.toml"))
            .unwrap()
            .contains("Hello")
    );

    // Forward again by digest prefix, over the HTTP API.
    let response = client()
        .post(hive.admin_url(&format!("/components/hello/rollback?to={}", &second[..10])))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(hello_text(&hive), "Howdy, world!\n");

    // Wrong requests say what is wrong.
    let output = Command::new(hive_binary())
        .args([
            "rollback",
            "hello",
            "--to",
            "ffffffff",
            "--admin",
            &hive.admin,
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("no kept version of hello"), "{said}");
    let response = client()
        .post(hive.admin_url("/components/nobody/rollback"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("nobody"), "{body}");
    let response = client()
        .get(hive.admin_url("/components/nobody/versions"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[test]
fn only_the_last_four_versions_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_hello(dir.path(), "V0");
    let hive = Hive::start(dir.path(), &[]);
    wait_serving(&hive, "hello", &first);
    let mut digests = vec![first];
    for i in 1..6 {
        let digest = write_hello(dir.path(), &format!("V{i}"));
        wait_serving(&hive, "hello", &digest);
        digests.push(digest);
    }
    let versions = admin_json(&hive, "/components/hello/versions");
    let kept: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["digest"].as_str().unwrap())
        .collect();
    let newest: Vec<&str> = digests.iter().rev().take(4).map(String::as_str).collect();
    assert_eq!(kept, newest);
    let files = std::fs::read_dir(dir.path().join(".versions/hello"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "wasm")
        })
        .count();
    assert_eq!(files, 4, "older files are deleted");
}

fn find_chromium() -> &'static str {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok())
        .expect(
            "Chromium is needed for this test: run scripts/test.sh, or apt-get install chromium",
        )
}

#[test]
fn the_console_page_shows_the_graph_and_the_failure_in_headless_chromium() {
    let chromium = find_chromium();
    let dir = console_dir();
    let hive = Hive::start(dir.path(), &[]);
    let failed_id = traffic(&hive);
    let profile = tempfile::tempdir().unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("console.png");
    let _ = std::fs::remove_file(&screenshot);
    let browse = |url: &str, extra: &[String]| {
        let output = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1400,2200",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let dom = browse(&hive.admin_url("/"), &["--dump-dom".to_string()]);
    // The graph, drawn and listed.
    assert!(
        dom.contains(r#"data-from="orders" data-to="users""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-from="orders" data-to="inventory""#),
        "{dom}"
    );
    assert!(dom.contains("orders → users via shop:users/directory@0.1.0: 3 calls, 0 errors"));
    assert!(dom.contains("orders → inventory via shop:inventory/stock@0.1.0: 2 calls"));
    assert!(dom.contains(r#"data-node="orders""#), "{dom}");
    assert!(dom.contains("catalog → (missing) via shop:reviews/reviews@0.1.0"));
    // The failure, with its request id.
    assert!(
        dom.contains(&format!(r#"<tr data-request="{failed_id}">"#)),
        "{dom}"
    );
    // Charts with lines in them, and the table.
    assert!(dom.contains(r#"aria-label="requests/s""#), "{dom}");
    assert!(dom.contains("<polyline"), "{dom}");
    assert!(dom.contains(r#"data-component="hello""#), "{dom}");
    assert!(dom.contains("6 components, 5 ready"), "{dom}");

    // A request id's link shows that request's log lines.
    let linked = browse(
        &hive.admin_url(&format!("/#request={failed_id}")),
        &["--dump-dom".to_string()],
    );
    assert!(
        linked.contains(&format!(r#"<div id="log" data-request="{failed_id}">"#)),
        "{linked}"
    );
    assert!(linked.contains("request failed: "), "{linked}");

    browse(
        &hive.admin_url("/"),
        &[format!("--screenshot={}", screenshot.display())],
    );
    let png = std::fs::read(&screenshot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "suspiciously small: {} bytes",
        png.len()
    );
    eprintln!("console screenshot: {}", screenshot.display());
}

/// A tmux server of the test's own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    fn screen(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn running(&self) -> bool {
        self.command()
            .args(["has-session", "-t", "top"])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

#[test]
fn hive_top_shows_components_rates_and_failures_in_a_terminal() {
    Command::new("tmux")
        .arg("-V")
        .output()
        .expect("tmux is needed for this test: run scripts/test.sh, or apt-get install tmux");
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(test_components(), "hostile", dir.path());
    std::fs::write(dir.path().join("broken.wasm"), b"junk").unwrap();
    let hive = Hive::start(dir.path(), &[]);
    for _ in 0..10 {
        assert_eq!(send(&hive, "GET", "/hello", Value::Null).0, 200);
    }
    let (status, _, failed_id) = send(&hive, "GET", "/hostile/panic", Value::Null);
    assert_eq!(status, 500);
    hive.wait_for_log(&["status=500", &failed_id]);

    let tmux = Tmux {
        socket: format!("hive-test-{}", std::process::id()),
    };
    let top = format!(
        "{} top --admin {} --interval 0.3",
        hive_binary().display(),
        hive.admin
    );
    let started = tmux
        .command()
        .args([
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "150",
            "-y",
            "40",
            &top,
        ])
        .status()
        .unwrap();
    assert!(started.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let screen = loop {
        let screen = tmux.screen();
        if screen.contains(&failed_id) && screen.contains("broken") {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "hive top never showed it all:\n{screen}"
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert!(screen.contains("3 components, 2 ready"), "{screen}");
    // A table row's cells, split at spaces and borders.
    let row = |name: &str| -> Vec<String> {
        screen
            .lines()
            .map(|line| {
                line.split(|c: char| c.is_whitespace() || c == '│')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .find(|cells| cells.first().is_some_and(|c| c == name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{screen}"))
    };
    let hello = row("hello");
    assert_eq!(hello[1], "ready", "{screen}");
    assert_eq!(hello.last().unwrap(), "10", "15 minutes of hello: {screen}");
    assert_eq!(row("broken")[1], "failed", "{screen}");
    let failure = screen.lines().find(|l| l.contains(&failed_id)).unwrap();
    assert!(
        failure.contains("500") && failure.contains("hostile") && failure.contains("trap"),
        "{failure}"
    );

    // q quits and gives the terminal back.
    tmux.command()
        .args(["send-keys", "-t", "top", "q"])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.running() {
        assert!(Instant::now() < deadline, "hive top did not quit on q");
        thread::sleep(Duration::from_millis(100));
    }
}
