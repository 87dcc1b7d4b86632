//! The service host end to end: real components built from their crates,
//! the real `hive` binary on an ephemeral port, real HTTP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Hive, client, demo_components, install, test_components};
use serde_json::Value;

/// A folder with the demo services `hello` and `echo`.
fn demo_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(demo_components(), "echo", dir.path());
    dir
}

#[test]
fn hello_greets_from_the_query_string() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let response = client().get(hive.url("/hello?name=ana")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers()["x-request-id"].len(), 32);
    assert_eq!(response.text().unwrap(), "Hello, ana!\n");
}

#[test]
fn hello_reads_a_decoded_path_parameter() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let body = client()
        .get(hive.url("/hello/b%C3%A9a"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "Hello, béa!\n");
}

#[test]
fn config_values_come_from_the_manifest() {
    let dir = demo_dir();
    // The built manifest sets default-name = "world".
    let hive = Hive::start(dir.path(), &[]);
    let body = client()
        .get(hive.url("/hello"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "Hello, world!\n");
    drop(hive);

    std::fs::write(
        dir.path().join("hello.toml"),
        "routes = [\"/hi\"]\n[config]\ngreeting = \"Hi\"\ndefault-name = 42\n",
    )
    .unwrap();
    let hive = Hive::start(dir.path(), &[]);
    let body = client()
        .get(hive.url("/hi"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "Hi, 42!\n");
    // The manifest's routes replace the defaults.
    assert_eq!(
        client().get(hive.url("/hello")).send().unwrap().status(),
        404
    );
}

#[test]
fn guest_log_calls_and_stderr_reach_the_host_log_tagged_with_the_component() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let response = client().get(hive.url("/hello?name=zoe")).send().unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let line = hive.wait_for_log(&["greeting zoe", "hello"]);
    assert!(line.contains(&request_id), "{line}");

    client()
        .post(hive.url("/echo/x"))
        .body("hi")
        .send()
        .unwrap();
    hive.wait_for_log(&["echo", "stderr", "echo: POST /echo/x"]);
    // One summary line per request, naming component, route and status.
    hive.wait_for_log(&["request", "component=echo", "route=/echo/...", "status=200"]);
    hive.wait_for_log(&["greeting zoe", "component=hello"]);
}

#[test]
fn echo_reflects_headers_body_and_params() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let response = client()
        .post(hive.url("/echo/deep/path?status=201&x=1"))
        .header("x-custom", "value-1")
        .header("content-type", "application/json")
        .body(r#"{"order": 7}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-echo-body-length"], "12");
    let echoed: Value = response.json().unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo/deep/path");
    assert_eq!(echoed["query"], "status=201&x=1");
    assert_eq!(echoed["route"], "/echo/...");
    assert_eq!(echoed["headers"]["x-custom"], "value-1");
    assert_eq!(echoed["body"]["json"]["order"], 7);
}

#[test]
fn default_routes_are_the_name_and_everything_below_it() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    for path in ["/echo", "/echo/", "/echo/a/b"] {
        assert_eq!(
            http.get(hive.url(path)).send().unwrap().status(),
            200,
            "{path}"
        );
    }
    assert_eq!(http.get(hive.url("/echoes")).send().unwrap().status(), 404);
}

#[test]
fn unknown_paths_get_a_json_404() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let response = client().get(hive.url("/nothing/here")).send().unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/json");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().unwrap();
    assert_eq!(body["status"], 404);
    assert_eq!(body["path"], "/nothing/here");
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(body["error"].as_str().unwrap().contains("no service"));
}

#[test]
fn route_parameters_and_specificity_follow_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "echo", dir.path());
    std::fs::copy(
        demo_components().join("echo.wasm"),
        dir.path().join("users.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        r#"routes = ["/api/users/:id/orders/:order", "/api/users/me"]"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("echo.toml"), r#"routes = ["/api/..."]"#).unwrap();
    let hive = Hive::start(dir.path(), &[]);
    let http = client();

    let echoed: Value = http
        .get(hive.url("/api/users/7/orders/a%20b"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echoed["route"], "/api/users/:id/orders/:order");
    assert_eq!(echoed["params"]["id"], "7");
    assert_eq!(echoed["params"]["order"], "a b");

    let echoed: Value = http
        .get(hive.url("/api/users/me"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echoed["route"], "/api/users/me");
    let echoed: Value = http
        .get(hive.url("/api/other"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echoed["route"], "/api/...");
}

#[test]
fn request_bodies_over_the_limit_get_413_without_being_read() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    // Announce a body one byte over the 16 MiB default and send none of it:
    // the host must answer from the headers alone.
    let mut stream = TcpStream::connect(hive.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let announced = 16 * 1024 * 1024 + 1;
    write!(
        stream,
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {announced}\r\n\r\n"
    )
    .unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"limit_bytes\":16777216"), "{response}");

    // A body just under the limit is accepted, and the host is fine.
    let body = vec![b'x'; 16 * 1024 * 1024 - 1];
    let response = client().post(hive.url("/hello")).body(body).send().unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn bad_files_are_skipped_with_a_reason_and_the_rest_keep_serving() {
    let dir = demo_dir();
    let path = dir.path();
    std::fs::write(path.join("garbage.wasm"), b"this is not wasm").unwrap();
    // The smallest valid core module: magic and version 1, no sections.
    std::fs::write(path.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    install(test_components(), "not-a-service", path);
    std::fs::copy(path.join("hello.wasm"), path.join("badmanifest.wasm")).unwrap();
    std::fs::write(path.join("badmanifest.toml"), "routes = [\"no-slash\"]").unwrap();
    std::fs::copy(path.join("hello.wasm"), path.join("typo.wasm")).unwrap();
    std::fs::write(path.join("typo.toml"), "route = [\"/typo\"]").unwrap();
    // A component whose bytes end early: a copy cut in half.
    let hello = std::fs::read(path.join("hello.wasm")).unwrap();
    std::fs::write(path.join("truncated.wasm"), &hello[..hello.len() / 2]).unwrap();

    let hive = Hive::start(path, &[]);
    hive.wait_for_log(&["garbage.wasm", "not a WebAssembly file"]);
    hive.wait_for_log(&["core.wasm", "core WebAssembly module"]);
    hive.wait_for_log(&[
        "not-a-service.wasm",
        "hive:service/handler@0.1.0",
        "wasi:cli/run",
    ]);
    hive.wait_for_log(&["badmanifest.wasm", "badmanifest.toml", "no-slash"]);
    hive.wait_for_log(&["typo.wasm", "typo.toml", "unknown field"]);
    hive.wait_for_log(&["truncated.wasm", "not a valid WebAssembly component"]);

    let http = client();
    assert_eq!(
        http.get(hive.url("/hello?name=ok"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(http.get(hive.url("/echo")).send().unwrap().status(), 200);
    for skipped in [
        "/garbage",
        "/core",
        "/not-a-service",
        "/badmanifest",
        "/typo",
        "/truncated",
    ] {
        assert_eq!(
            http.get(hive.url(skipped)).send().unwrap().status(),
            404,
            "{skipped}"
        );
    }
}

#[test]
fn strict_mode_refuses_to_start_with_a_bad_file() {
    let dir = demo_dir();
    std::fs::write(dir.path().join("garbage.wasm"), b"nope").unwrap();
    let (success, log) = Hive::run_to_exit(dir.path(), &["--strict"]);
    assert!(!success, "hive --strict started despite a bad file:\n{log}");
    assert!(
        log.contains("--strict") && log.contains("garbage.wasm"),
        "{log}"
    );
}

#[test]
fn two_components_claiming_one_route_is_reported_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["alpha", "beta"] {
        std::fs::copy(
            demo_components().join("echo.wasm"),
            dir.path().join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("alpha.toml"), r#"routes = ["/shared/:id"]"#).unwrap();
    std::fs::write(
        dir.path().join("beta.toml"),
        r#"routes = ["/shared/:key", "/beta"]"#,
    )
    .unwrap();
    let hive = Hive::start(dir.path(), &[]);
    let line = hive.wait_for_log(&["beta.wasm", "alpha.wasm", "/shared/:key", "conflicts"]);
    assert!(line.contains("skipping"), "{line}");

    let http = client();
    let echoed: Value = http
        .get(hive.url("/shared/1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echoed["route"], "/shared/:id");
    // beta was rejected whole, not half-routed.
    assert_eq!(http.get(hive.url("/beta")).send().unwrap().status(), 404);
}

#[test]
fn a_missing_folder_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let (success, log) = Hive::run_to_exit(&missing, &[]);
    assert!(!success);
    assert!(log.contains("nope") && log.contains("hive build"), "{log}");
}

#[test]
fn connections_are_kept_alive_across_requests() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let mut stream = TcpStream::connect(hive.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for name in ["one", "two", "three"] {
        write!(
            stream,
            "GET /hello?name={name} HTTP/1.1\r\nHost: test\r\n\r\n"
        )
        .unwrap();
        let response = read_response(&mut stream);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.ends_with(&format!("Hello, {name}!\n")),
            "{response}"
        );
    }
}

#[test]
fn malformed_requests_get_400_and_the_host_keeps_serving() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    let mut stream = TcpStream::connect(hive.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"NOT A REQUEST\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert_eq!(
        client().get(hive.url("/hello")).send().unwrap().status(),
        200
    );
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = demo_dir();
    let hive = Hive::start(dir.path(), &[]);
    assert_eq!(
        client().get(hive.url("/hello")).send().unwrap().status(),
        200
    );
    let status = hive.terminate();
    assert!(status.success(), "exit status {status:?}");
}

/// Reads one HTTP/1.1 response with a content-length from `stream`.
fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).to_string();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}
