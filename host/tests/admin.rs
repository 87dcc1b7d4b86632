//! Operating a host: the admin API (probes, metrics, component status,
//! deploy over HTTP, auth), JSON logs, the CLI verbs and the status page.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Hive, client, demo_components, install, repo_root, scratch_workspace, test_components,
};
use serde_json::Value;

fn demo_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(demo_components(), "echo", dir.path());
    dir
}

fn admin_get(hive: &Hive, path: &str) -> (u16, String) {
    let response = client().get(hive.admin_url(path)).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn components(hive: &Hive) -> Vec<Value> {
    let (status, body) = admin_get(hive, "/components");
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["components"].as_array().unwrap().clone()
}

fn find<'a>(components: &'a [Value], name: &str) -> &'a Value {
    components
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed in {components:?}"))
}

#[test]
fn health_and_ready_answer_and_ready_waits_for_the_initial_load() {
    // Enough uncached components that loading takes a while.
    let dir = tempfile::tempdir().unwrap();
    let hello = std::fs::read(demo_components().join("hello.wasm")).unwrap();
    for i in 0..40u8 {
        let mut copy = hello.clone();
        copy.extend_from_slice(&[0, 3, 2, b'v', i]); // a custom section
        std::fs::write(dir.path().join(format!("svc{i}.wasm")), copy).unwrap();
    }
    let (mut child, admin) = spawn_until_admin(dir.path(), &["--no-cache"]);
    let http = client();
    let health = http.get(format!("{admin}/health")).send().unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{admin}/ready")).send().unwrap();
    assert_eq!(ready.status(), 503, "ready before the folder was loaded");
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{admin}/ready")).send().unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `hive serve` and returns as soon as the admin API is up, before
/// the services are loaded.
fn spawn_until_admin(dir: &Path, extra: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let state = tempfile::tempdir().unwrap().keep();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hive"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--dir")
        .arg(dir)
        .arg("--data")
        .arg(state.join("data"))
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let admin = loop {
        let line = lines.next().expect("hive exited").unwrap();
        if let Some(address) = line.split("admin API on ").nth(1) {
            break address.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, admin)
}

#[test]
fn metrics_count_requests_failures_and_loads() {
    let dir = demo_dir();
    install(test_components(), "hostile", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    for _ in 0..3 {
        assert_eq!(http.get(hive.url("/hello")).send().unwrap().status(), 200);
    }
    assert_eq!(
        http.get(hive.url("/hostile/panic"))
            .send()
            .unwrap()
            .status(),
        500
    );
    assert_eq!(http.get(hive.url("/nowhere")).send().unwrap().status(), 404);

    let (status, text) = admin_get(&hive, "/metrics");
    assert_eq!(status, 200);
    for expected in [
        r#"hive_requests_total{component="hello",status="200"} 3"#,
        r#"hive_requests_total{component="hostile",status="500"} 1"#,
        r#"hive_requests_total{component="-",status="404"} 1"#,
        r#"hive_failures_total{component="hostile",kind="trap"} 1"#,
        r#"hive_instances_in_flight{component="hello"} 0"#,
        "hive_components_loaded 3",
        "hive_component_loads_total 3",
        r#"hive_instantiations_total{component="hello"} 3"#,
        r#"hive_request_duration_seconds_count{component="hello"} 3"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}

#[test]
fn components_lists_state_routes_world_limits_and_links() {
    let dir = demo_dir();
    install(demo_components(), "orders", dir.path());
    install(demo_components(), "hello-http", dir.path());
    std::fs::write(dir.path().join("broken.wasm"), b"junk").unwrap();
    let hive = Hive::start(dir.path(), &[]);
    let list = components(&hive);

    let hello = find(&list, "hello");
    assert_eq!(hello["state"], "ready");
    assert_eq!(hello["world"], "hive:service/service@0.1.0");
    assert_eq!(
        hello["routes"],
        serde_json::json!(["/hello", "/hello/:name"])
    );
    assert_eq!(hello["digest"].as_str().unwrap().len(), 64);
    assert_eq!(hello["limits"]["memory_bytes"], 64 << 20);
    assert!(hello["loaded_at"].as_u64().unwrap() > 1_700_000_000);

    assert_eq!(find(&list, "hello-http")["world"], "wasi:http/proxy@0.2");
    let orders = find(&list, "orders");
    assert_eq!(orders["state"], "waiting");
    assert!(
        orders["reason"].as_str().unwrap().contains("shop:"),
        "{orders}"
    );
    assert!(orders["imports"].as_array().unwrap().len() == 2, "{orders}");
    let broken = find(&list, "broken");
    assert_eq!(broken["state"], "failed");
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file")
    );
}

#[test]
fn deploy_and_remove_over_http() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    let echo = std::fs::read(demo_components().join("echo.wasm")).unwrap();

    let manifest = http
        .put(hive.admin_url("/components/mirror/manifest"))
        .body(r#"routes = ["/mirror/..."]"#)
        .send()
        .unwrap();
    assert_eq!(manifest.status(), 202);
    let upload = http
        .put(hive.admin_url("/components/mirror"))
        .body(echo)
        .send()
        .unwrap();
    assert_eq!(upload.status(), 202);
    let accepted: Value = upload.json().unwrap();
    assert_eq!(accepted["file"], "mirror.wasm");
    wait_for(&hive, "/mirror/x", 200);
    assert!(dir.path().join("mirror.wasm").exists());

    // Garbage and bad manifests are refused before touching the folder.
    let garbage = http
        .put(hive.admin_url("/components/junk"))
        .body("not wasm")
        .send()
        .unwrap();
    assert_eq!(garbage.status(), 400);
    assert!(!dir.path().join("junk.wasm").exists());
    let bad = http
        .put(hive.admin_url("/components/mirror/manifest"))
        .body("routes = 1")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let traversal = http
        .put(hive.admin_url("/components/..%2Fescape"))
        .body(std::fs::read(demo_components().join("echo.wasm")).unwrap())
        .send()
        .unwrap();
    assert_eq!(traversal.status(), 400);
    // Refused before its body was read: the connection is not reused.
    let connection = traversal.headers().get("connection");
    assert_eq!(connection.map(|v| v.as_bytes()), Some(&b"close"[..]));
    // A name too long for a file is a bad request, not a server error.
    let long = "a".repeat(10_000);
    for path in [
        format!("/components/{long}"),
        format!("/components/{long}/manifest"),
    ] {
        let response = http
            .put(hive.admin_url(&path))
            .body(std::fs::read(demo_components().join("echo.wasm")).unwrap())
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{}", response.text().unwrap());
    }

    let removed = http
        .delete(hive.admin_url("/components/mirror"))
        .send()
        .unwrap();
    assert_eq!(removed.status(), 200);
    wait_for(&hive, "/mirror/x", 404);
    let missing = http
        .delete(hive.admin_url("/components/mirror"))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
}

fn wait_for(hive: &Hive, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client().get(hive.url(path)).send().unwrap().status() != status {
        assert!(Instant::now() < deadline, "{path} never answered {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_token_guards_everything_but_the_probes() {
    let dir = demo_dir();
    let token_file = dir.path().join("token.txt");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let hive = Hive::start(
        dir.path(),
        &["--admin-token-file", token_file.to_str().unwrap()],
    );
    let http = client();
    assert_eq!(
        http.get(hive.admin_url("/health")).send().unwrap().status(),
        200
    );
    assert_eq!(
        http.get(hive.admin_url("/ready")).send().unwrap().status(),
        200
    );
    for path in ["/components", "/metrics"] {
        let none = http.get(hive.admin_url(path)).send().unwrap();
        assert_eq!(none.status(), 401, "{path}");
        let wrong = http
            .get(hive.admin_url(path))
            .bearer_auth("guess")
            .send()
            .unwrap();
        assert_eq!(wrong.status(), 403, "{path}");
        let right = http
            .get(hive.admin_url(path))
            .bearer_auth("s3cret")
            .send()
            .unwrap();
        assert_eq!(right.status(), 200, "{path}");
    }
    let upload = http
        .put(hive.admin_url("/components/x"))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(upload.status(), 401);
}

#[test]
fn without_a_token_the_admin_api_binds_only_to_loopback() {
    let dir = demo_dir();
    let (ok, log) = Hive::run_to_exit(dir.path(), &["--admin-listen", "0.0.0.0:0"]);
    assert!(!ok);
    assert!(log.contains("refusing to serve the admin API"), "{log}");
    assert!(log.contains("HIVE_ADMIN_TOKEN"), "{log}");
}

#[test]
fn request_logs_can_be_json_with_one_object_per_request() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &["--log-format", "json"]);
    let response = client().get(hive.url("/hello?name=j")).send().unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let line = hive.wait_for_log(&[&id, "\"status\":200"]);
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["request_id"], id.as_str());
    assert_eq!(event["component"], "hello");
    assert_eq!(event["route"], "/hello");
    assert_eq!(event["digest"].as_str().unwrap().len(), 12);
    assert!(event["duration_us"].as_u64().is_some());
    // The guest's own log line, attributed to it, is JSON too.
    let guest = hive.wait_for_log(&["greeting j"]);
    let guest: Value = serde_json::from_str(&guest).unwrap();
    assert_eq!(guest["component"], "hello");
}

fn hive_cli(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hive"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn ls_deploy_and_rm_drive_a_running_host() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let admin = hive.admin.clone();

    let (ok, out) = hive_cli(&["ls", "--admin", &admin]);
    assert!(ok, "{out}");
    assert!(
        out.contains("hello") && out.contains("ready") && out.contains("/hello/:name"),
        "{out}"
    );

    let wasm = demo_components().join("echo.wasm");
    let (ok, out) = hive_cli(&[
        "deploy",
        wasm.to_str().unwrap(),
        "--name",
        "copy",
        "--admin",
        &admin,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("copy is ready"), "{out}");
    assert_eq!(
        client().get(hive.url("/copy/x")).send().unwrap().status(),
        200
    );

    // A file that cannot load is reported, not silently accepted.
    let bad = dir.path().join("notes.wasm.txt");
    std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
    let (ok, out) = hive_cli(&[
        "deploy",
        bad.to_str().unwrap(),
        "--name",
        "core",
        "--admin",
        &admin,
    ]);
    assert!(!ok);
    assert!(out.contains("core WebAssembly module"), "{out}");

    let (ok, out) = hive_cli(&["rm", "copy", "--admin", &admin]);
    assert!(ok, "{out}");
    wait_for(&hive, "/copy/x", 404);
    let (ok, out) = hive_cli(&["rm", "copy", "--admin", &admin]);
    assert!(!ok);
    assert!(out.contains("no component named copy"), "{out}");

    // No host there: the error says what to check.
    let (ok, out) = hive_cli(&["ls", "--admin", "http://127.0.0.1:9"]);
    assert!(!ok);
    assert!(out.contains("is `hive serve` running"), "{out}");
}

#[test]
fn inspect_reports_world_imports_exports_and_loadability() {
    let (ok, out) = hive_cli(&[
        "inspect",
        demo_components().join("hello.wasm").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("world:    hive:service/service@0.1.0"),
        "{out}"
    );
    assert!(out.contains("hive:service/handler@0.1.0"), "{out}");
    assert!(out.contains("loadable: yes"), "{out}");

    let (ok, out) = hive_cli(&[
        "inspect",
        demo_components().join("hello-http.wasm").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("wasi:http/proxy"), "{out}");

    let (ok, out) = hive_cli(&[
        "inspect",
        test_components()
            .join("not-a-service.wasm")
            .to_str()
            .unwrap(),
    ]);
    assert!(!ok);
    assert!(out.contains("exports:\n  wasi:cli/run"), "{out}");
    assert!(out.contains("loadable: no: not a Hive service"), "{out}");
}

#[test]
fn new_creates_a_component_that_builds_and_loads() {
    let root = tempfile::tempdir().unwrap();
    let workspace = scratch_workspace(root.path(), "[]");
    // The template finds the contract at ../wit, as in this repository.
    copy_dir(&repo_root().join("wit"), &root.path().join("wit"));

    let (ok, out) = hive_cli(&[
        "new",
        "greeter",
        "--components",
        workspace.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(workspace.join("greeter/src/lib.rs").exists());
    let members = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    assert!(members.contains("greeter"), "{members}");
    let (ok, out) = hive_cli(&[
        "new",
        "greeter",
        "--components",
        workspace.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(out.contains("already exists"), "{out}");
    let (ok, _) = hive_cli(&[
        "new",
        "bad name",
        "--components",
        workspace.to_str().unwrap(),
    ]);
    assert!(!ok);

    let deploy = root.path().join("deploy");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-test-target");
    let built = Command::new(env!("CARGO_BIN_EXE_hive"))
        .args(["build", "--components"])
        .arg(&workspace)
        .arg("--out")
        .arg(&deploy)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(built.success());
    let hive = Hive::start(&deploy, &[]);
    let body = client()
        .get(hive.url("/greeter/hi"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "Hello from greeter: you asked for /greeter/hi\n");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target: PathBuf = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn the_status_page_renders_components_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok())
        .expect(
            "Chromium is needed for this test: run scripts/test.sh, or apt-get install chromium",
        );
    let dir = demo_dir();
    std::fs::write(dir.path().join("broken.wasm"), b"junk").unwrap();
    let hive = Hive::start(dir.path(), &[]);
    for _ in 0..5 {
        client().get(hive.url("/hello")).send().unwrap();
    }
    let profile = tempfile::tempdir().unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let browse = |extra: &[String]| {
        Command::new(chromium)
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
                "--window-size=1280,720",
                // Lets the page's fetches and two refreshes run before capture.
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(hive.admin_url("/"))
            .output()
            .unwrap()
    };
    let dom = browse(&["--dump-dom".to_string()]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains(r#"data-component="hello""#), "{dom}");
    assert!(dom.contains(r#"data-component="broken""#), "{dom}");
    assert!(
        dom.contains("state ready") && dom.contains("state failed"),
        "{dom}"
    );
    assert!(dom.contains("3 components, 2 ready"), "{dom}");

    browse(&[format!("--screenshot={}", screenshot.display())]);
    let png = std::fs::read(&screenshot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "suspiciously small screenshot: {} bytes",
        png.len()
    );
    eprintln!("status page screenshot: {}", screenshot.display());
}

/// The resident memory of process `pid`, in MiB.
fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib / 1024.0
}

#[test]
fn shared_wit_asked_for_in_parallel_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["users", "reviews", "notifications", "catalog"] {
        install(demo_components(), name, dir.path());
    }
    let hive = Hive::start(dir.path(), &[]);
    // Let the loads settle.
    std::thread::sleep(Duration::from_secs(2));
    let before = resident_mib(hive.pid());
    let ask_eight = || {
        let askers: Vec<_> = (0..8)
            .map(|_| {
                let url = hive.admin_url("/wit");
                std::thread::spawn(move || {
                    let response = client().get(url).send().unwrap();
                    assert_eq!(response.status(), 200);
                    let body: Value = response.json().unwrap();
                    body["packages"].as_object().map_or(0, |p| p.len())
                })
            })
            .collect();
        askers
            .into_iter()
            .map(|a| a.join().unwrap())
            .collect::<Vec<_>>()
    };
    let first = ask_eight();
    let after_first = resident_mib(hive.pid());
    let second = ask_eight();
    let after_second = resident_mib(hive.pid());
    println!(
        "GET /wit, 8 at once, twice: resident {before:.0} -> {after_first:.0} -> {after_second:.0} MiB"
    );
    assert!(
        first.iter().chain(&second).all(|n| *n >= 3),
        "{first:?} {second:?}"
    );
    // One reading at a time, kept: eight askers cost about one reading,
    // and asking again costs nothing more.
    assert!(
        after_first - before < 140.0,
        "{before:.0} -> {after_first:.0} MiB"
    );
    assert!(
        after_second - after_first < 16.0,
        "{after_first:.0} -> {after_second:.0} MiB"
    );
}
