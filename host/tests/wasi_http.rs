//! Standard `wasi:http/proxy` components beside Hive's own, through the same
//! router, limits and logs; streaming bodies; outbound HTTP by allow-list.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{Hive, client, demo_components, install};

/// A folder with `hello` (Hive world) and `hello-http` (wasi:http world),
/// with `manifest` as hello-http's manifest.
fn mixed_dir(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(demo_components(), "hello-http", dir.path());
    std::fs::write(dir.path().join("hello-http.toml"), manifest).unwrap();
    dir
}

const ROUTES: &str = "routes = [\"/hello-http\", \"/hello-http/...\"]\n";

#[test]
fn both_worlds_serve_side_by_side() {
    let dir = mixed_dir(ROUTES);
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["loaded hello-http.wasm", "world=wasi:http/proxy@0.2"]);
    hive.wait_for_log(&["loaded hello.wasm", "world=hive:service/service@0.1.0"]);

    let http = client();
    let response = http.get(hive.url("/hello-http?name=ana")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.text().unwrap(), "Hello, ana!\n");
    assert_eq!(
        http.get(hive.url("/hello?name=bo"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "Hello, bo!\n"
    );
    // The same per-request log line for both kinds.
    hive.wait_for_log(&[
        "request",
        "component=hello-http",
        "route=/hello-http",
        "status=200",
    ]);
    hive.wait_for_log(&["request", "component=hello ", "status=200"]);
}

#[test]
fn a_component_not_built_for_spin_gets_no_spin_headers_and_never_a_clients() {
    let dir = mixed_dir(ROUTES);
    let hive = Hive::start(dir.path(), &[]);
    let response = client()
        .get(hive.url("/hello-http/headers"))
        .header("spin-path-info", "/forged")
        .header("x-kept", "1")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let names = response.text().unwrap();
    assert!(names.lines().any(|name| name == "x-kept"), "{names}");
    assert!(names.lines().any(|name| name == "traceparent"), "{names}");
    assert!(
        !names.lines().any(|name| name.starts_with("spin-")),
        "hello-http is no Spin component, yet got:\n{names}"
    );
}

#[test]
fn a_body_larger_than_the_components_memory_streams_through() {
    // 16 MiB of memory, 96 MiB of body: only streaming can do this.
    let manifest = format!(
        "{ROUTES}[limits]\nmemory-mib = 16\nrequest-body-kib = 131072\nresponse-body-kib = 131072\n"
    );
    let dir = mixed_dir(&manifest);
    let hive = Hive::start(dir.path(), &[]);
    let body: Vec<u8> = (0..96u32 << 20).map(|i| (i % 251) as u8).collect();
    let response = client()
        .post(hive.url("/hello-http/echo"))
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response.bytes().unwrap();
    assert_eq!(echoed.len(), body.len());
    assert!(echoed == body, "the streamed body came back changed");
}

#[test]
fn a_streamed_body_over_the_limit_is_cut_off() {
    let dir = mixed_dir(&format!("{ROUTES}[limits]\nrequest-body-kib = 1024\n"));
    let hive = Hive::start(dir.path(), &[]);
    // Announced up front: refused before reading.
    let response = client()
        .post(hive.url("/hello-http/echo"))
        .body(vec![0u8; 2 << 20])
        .send();
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    // The host is fine afterwards.
    assert_eq!(
        client()
            .get(hive.url("/hello-http"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

/// A one-route HTTP server on loopback that counts its connections.
fn upstream() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let body = "from upstream";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (origin, hits)
}

#[test]
fn outbound_http_is_denied_unless_the_origin_is_allowed() {
    let (origin, hits) = upstream();

    // No allowed-outbound: denied, with a clear error in the guest and a log line.
    let dir = mixed_dir(ROUTES);
    let hive = Hive::start(dir.path(), &[]);
    let response = client()
        .get(hive.url(&format!("/hello-http/fetch?url={origin}/data")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 502);
    let text = response.text().unwrap();
    assert!(text.contains("HttpRequestDenied"), "{text}");
    hive.wait_for_log(&["outbound request to", "denied", "component=hello-http"]);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a denied request reached the upstream"
    );
    drop(hive);

    // Allowed origin: the request goes through.
    let dir = mixed_dir(&format!("{ROUTES}allowed-outbound = [\"{origin}\"]\n"));
    let hive = Hive::start(dir.path(), &[]);
    let response = client()
        .get(hive.url(&format!("/hello-http/fetch?url={origin}/data")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().unwrap(), "fetched: from upstream");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Another port on the same host is another origin: still denied.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_origin = format!("http://{}", other.local_addr().unwrap());
    let response = client()
        .get(hive.url(&format!("/hello-http/fetch?url={other_origin}/")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 502);
}

#[test]
fn a_reused_instance_logs_outbound_requests_under_each_requests_own_id() {
    let (origin, _hits) = upstream();
    let dir = mixed_dir(&format!("{ROUTES}[limits]\ninstance-reuse = 10\n"));
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        // So each request finds the one instance back in the pool.
        hive.wait_until_idle("hello-http");
        // Denied (no allowed-outbound), so the host logs the attempt.
        let response = http
            .get(hive.url(&format!("/hello-http/fetch?url={origin}/data")))
            .send()
            .unwrap();
        assert_eq!(response.status(), 502);
        ids.push(
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    // Three requests on one instance...
    let metrics = hive.metrics();
    assert!(
        metrics.contains(r#"hive_instantiations_total{component="hello-http"} 1"#),
        "{metrics}"
    );
    // ...and each denial is logged under the id of the request that made it.
    for id in &ids {
        hive.wait_for_log(&["outbound request to", "denied", &format!("request_id={id}")]);
    }
}

#[test]
fn a_component_for_neither_world_is_rejected_naming_both() {
    let dir = mixed_dir(ROUTES);
    install(common::test_components(), "not-a-service", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let line = hive.wait_for_log(&["skipping not-a-service.wasm"]);
    for expected in [
        "exports wasi:cli/run",
        "and imports wasi:io/poll",
        "wasi:cli/environment",
        "hive:service/handler@0.1.0",
        "wasi:http/incoming-handler@0.2.x",
    ] {
        assert!(line.contains(expected), "{expected:?} missing from: {line}");
    }
}

#[test]
fn reused_wasi_http_instances_answer_every_request_correctly() {
    let dir = mixed_dir(&format!("{ROUTES}[limits]\ninstance-reuse = 5\n"));
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    // Each request waits for the one before to give its instance back, so
    // the count below is exact.
    for i in 0..12 {
        hive.wait_until_idle("hello-http");
        let body = http
            .get(hive.url(&format!("/hello-http?name=n{i}")))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(body, format!("Hello, n{i}!\n"));
    }
    for round in 0..3u8 {
        hive.wait_until_idle("hello-http");
        let body = vec![round; 1 << 20];
        let echoed = http
            .post(hive.url("/hello-http/echo"))
            .body(body.clone())
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert!(echoed == body, "round {round} came back changed");
    }
    // 15 sequential requests, 5 per instance: 3 instances, not 15.
    let metrics = hive.metrics();
    assert!(
        metrics.contains(r#"hive_instantiations_total{component="hello-http"} 3"#),
        "{metrics}"
    );
}

#[test]
fn a_failure_after_the_response_head_cuts_the_body_and_is_logged() {
    // The echo route sends its head at once, then waits for body bytes that
    // never come, until the 500 ms timeout stops it mid-body. The same on a
    // fresh instance and on a reused one.
    for reuse in ["", "instance-reuse = 5\n"] {
        let dir = mixed_dir(&format!("{ROUTES}[limits]\ntimeout-ms = 500\n{reuse}"));
        let hive = Hive::start(dir.path(), &[]);
        let mut stream = std::net::TcpStream::connect(hive.address()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(
                b"POST /hello-http/echo HTTP/1.1\r\nHost: hive\r\nContent-Length: 100\r\n\r\nonly ten b",
            )
            .unwrap();
        // The host closes the connection on a cut-off body; a read timeout
        // would leave the terminating chunk's absence unproven.
        let mut received = Vec::new();
        stream
            .read_to_end(&mut received)
            .expect("the host should close the connection");
        let received = String::from_utf8_lossy(&received);
        assert!(received.starts_with("HTTP/1.1 200"), "{reuse}: {received}");
        assert!(received.contains("only ten b"), "{reuse}: {received}");
        assert!(
            !received.ends_with("0\r\n\r\n"),
            "{reuse}: the cut-off body passed as complete: {received}"
        );

        let line = hive.wait_for_log(&["request failed", "component=hello-http"]);
        assert!(line.contains("kind=timeout"), "{reuse}: {line}");
        let metrics = hive.metrics();
        assert!(
            metrics.contains(r#"hive_failures_total{component="hello-http",kind="timeout"} 1"#),
            "{reuse}: {metrics}"
        );
    }
}

/// A folder with `wasi-http-faults`, answering `/wasi-http-faults/...`.
fn faults_dir(limits: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(common::test_components(), "wasi-http-faults", dir.path());
    std::fs::write(
        dir.path().join("wasi-http-faults.toml"),
        format!("[limits]\n{limits}"),
    )
    .unwrap();
    dir
}

#[test]
fn a_trap_after_the_head_but_before_any_byte_is_a_500_with_the_request_id() {
    for reuse in ["", "instance-reuse = 5\n"] {
        let dir = faults_dir(reuse);
        let hive = Hive::start(dir.path(), &[]);
        let response = client()
            .get(hive.url("/wasi-http-faults/head-then-trap"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 500, "{reuse}");
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["kind"], "trap", "{reuse}: {body}");
        assert_eq!(body["request_id"], id.as_str());
        let line = hive.wait_for_log(&["request", &format!("request_id={id}"), "status="]);
        assert!(line.contains("status=500"), "{reuse}: {line}");
    }
}

#[test]
fn a_trap_after_bytes_went_out_is_logged_with_the_status_sent_and_its_kind() {
    let dir = faults_dir("");
    let hive = Hive::start(dir.path(), &[]);
    let response = client()
        .get(hive.url("/wasi-http-faults/write-then-trap"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    // The body breaks off: the client can tell.
    assert!(response.bytes().is_err());
    let line = hive.wait_for_log(&["request", &format!("request_id={id}"), "status="]);
    assert!(line.contains("status=200"), "{line}");
    assert!(line.contains("failure=trap"), "{line}");
    let metrics = hive.metrics();
    assert!(
        metrics.contains(r#"hive_failures_total{component="wasi-http-faults",kind="trap"} 1"#),
        "{metrics}"
    );
}

/// Sends `GET path` on a connection of its own, and reads nothing yet.
fn send_get(hive: &Hive, path: &str) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(hive.address()).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    stream
}

#[test]
fn a_client_that_leaves_before_the_head_cancels_the_guest() {
    let dir = faults_dir("");
    let hive = Hive::start(dir.path(), &[]);
    let stream = send_get(&hive, "/wasi-http-faults/slow-head");
    thread::sleep(Duration::from_millis(300));
    drop(stream);
    hive.wait_for_log(&["client went away", "component=wasi-http-faults"]);
}

#[test]
fn a_guest_whose_client_leaves_mid_body_still_finishes() {
    let dir = faults_dir("");
    let hive = Hive::start(dir.path(), &[]);
    let mut stream = send_get(&hive, "/wasi-http-faults/slow-body");
    // The head and the first KiB arrive; then the client leaves.
    let mut first = [0u8; 512];
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let read = stream.read(&mut first).unwrap();
    assert!(first[..read].starts_with(b"HTTP/1.1 200"));
    drop(stream);
    hive.wait_for_log(&["slow-body finished", "component=wasi-http-faults"]);
    assert_eq!(
        hive.logs().matches("client went away").count(),
        0,
        "a guest past its head is not cancelled"
    );
}

#[test]
fn a_client_that_stops_reading_does_not_keep_the_guest_past_its_deadline() {
    let dir = faults_dir("timeout-ms = 1000\nconcurrency = 1\nqueue-timeout-ms = 10");
    let hive = Hive::start(dir.path(), &[]);
    let stream = send_get(&hive, "/wasi-http-faults/big-body");
    // The client reads nothing: the 8 MiB body fills the socket, and the
    // guest's writes wait. Its deadline must still end the call and free
    // the service's only slot.
    hive.wait_for_log(&[
        "request failed",
        "kind=timeout",
        "component=wasi-http-faults",
    ]);
    let answer = client()
        .get(hive.url("/wasi-http-faults/unknown"))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 404, "the slot was freed");
    drop(stream);
}

/// Sends `chunks` as a chunked request body to `path`, pausing `pause`
/// after each, and returns everything the host sends back until it closes
/// the connection.
fn chunked_exchange(address: &str, path: &str, chunks: &[usize], pause: Duration) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: hive\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    for &size in chunks {
        let mut chunk = format!("{size:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b'z', size));
        chunk.extend_from_slice(b"\r\n");
        if stream.write_all(&chunk).is_err() {
            break;
        }
        thread::sleep(pause);
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn a_request_body_cut_at_the_limit_never_reaches_the_client_as_a_whole_response() {
    // A buffering guest: the cut comes before its head, so the client gets
    // 413, whatever the guest made of the error it read.
    let dir = faults_dir("request-body-kib = 1\n");
    let hive = Hive::start(dir.path(), &[]);
    let received = chunked_exchange(
        hive.address(),
        "/wasi-http-faults/buffered-echo",
        &[600, 600],
        Duration::from_millis(100),
    );
    assert!(received.starts_with("HTTP/1.1 413"), "{received}");
    assert!(received.contains("request_too_large"), "{received}");

    // A streaming guest: its head and the first bytes are out before the
    // cut, so the body must break off instead of ending properly.
    let dir = mixed_dir(&format!("{ROUTES}[limits]\nrequest-body-kib = 1\n"));
    let hive = Hive::start(dir.path(), &[]);
    let received = chunked_exchange(
        hive.address(),
        "/hello-http/echo",
        &[600, 600, 600],
        Duration::from_millis(300),
    );
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(
        !received.ends_with("0\r\n\r\n"),
        "a cut-off echo arrived as a whole response: {received}"
    );
    let line = hive.wait_for_log(&["request failed", "component=hello-http"]);
    assert!(line.contains("kind=request_too_large"), "{line}");
    let line = hive.wait_for_log(&["request", "component=hello-http", "status=200"]);
    assert!(line.contains("failure=request_too_large"), "{line}");
    let metrics = hive.metrics();
    assert!(
        metrics
            .contains(r#"hive_failures_total{component="hello-http",kind="request_too_large"} 1"#),
        "{metrics}"
    );
}

/// An upstream that announces 100 bytes, sends 10, and hangs up.
fn short_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
        }
    });
    origin
}

#[test]
fn error_text_a_guest_reads_carries_no_host_backtrace() {
    let origin = short_upstream();
    let dir = mixed_dir(&format!("{ROUTES}allowed-outbound = [\"{origin}\"]\n"));
    let hive = Hive::start_command(
        "serve",
        dir.path(),
        &[],
        &[("RUST_BACKTRACE", std::path::Path::new("1"))],
    );
    // hello-http answers with the text of the error it read from the stream.
    let text = client()
        .get(hive.url(&format!("/hello-http/fetch?url={origin}/x")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("reading failed"), "{text}");
    assert!(text.contains("hyper error"), "the cause is kept: {text}");
    for host_detail in ["Stack backtrace", "wasmtime", "tokio", "hyper::"] {
        assert!(!text.contains(host_detail), "{host_detail} in: {text}");
    }
}
