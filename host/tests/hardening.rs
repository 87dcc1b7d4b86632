//! The host under attack: slow and huge bodies, connection floods, log
//! forging, hostile manifests, cross-site admin requests, racing uploads
//! and malformed requests. Each test is something that once took the host,
//! or a neighbour, down or lied to a client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Hive, client, demo_components, install, test_components};
use sha2::{Digest, Sha256};

/// Sends `head` (and `body`) on a new connection and returns what comes
/// back until the host closes it or `wait` passes.
fn raw_exchange(address: &str, head: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(head).unwrap();
    read_until_closed(&mut stream, wait)
}

fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> String {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    String::from_utf8_lossy(&received).into_owned()
}

fn echo_dir(manifest: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "echo", dir.path());
    install(demo_components(), "hello", dir.path());
    if let Some(manifest) = manifest {
        std::fs::write(dir.path().join("echo.toml"), manifest).unwrap();
    }
    dir
}

#[test]
fn a_body_that_trickles_in_gets_408_at_the_deadline_and_the_connection_closes() {
    let dir = echo_dir(Some("[limits]\nbody-timeout-ms = 1000\n"));
    let hive = Hive::start(dir.path(), &[]);
    let mut stream = TcpStream::connect(hive.address()).unwrap();
    stream
        .write_all(b"POST /echo/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    stream.set_nonblocking(false).unwrap();
    // One byte every 300 ms: the connection is never idle, yet the whole
    // body would take 30 s.
    let mut received = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while started.elapsed() < Duration::from_secs(8) {
        if stream.write_all(b"x").is_err() {
            break;
        }
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.to_lowercase().contains("connection: close"), "{text}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    // Neighbours never noticed.
    let hello = client().get(hive.url("/hello")).send().unwrap();
    assert_eq!(hello.status(), 200);
}

#[test]
fn a_keep_alive_client_survives_answers_that_leave_its_body_unread() {
    let dir = echo_dir(None);
    install(demo_components(), "hello-http", dir.path());
    install(demo_components(), "users", dir.path());
    install(test_components(), "wasi-http-faults", dir.path());
    let mut manifest = std::fs::read_to_string(dir.path().join("hello-http.toml")).unwrap();
    manifest.push_str("\n[limits]\nrequest-body-kib = 128\n");
    std::fs::write(dir.path().join("hello-http.toml"), manifest).unwrap();
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    let body = vec![b'z'; 256 * 1024];
    // Each of these is answered before the body is read: no route, a path
    // parameter that is not UTF-8, a wasi:http body announced over the
    // limit, and a wasi:http guest that traps before it reads. The host then
    // closes the connection, and must say so, or the client sends its next
    // request into a closing socket.
    let unread = [
        ("/nowhere", 404),
        ("/users/%FF", 400),
        ("/hello-http", 413),
        ("/wasi-http-faults/head-then-trap", 500),
    ];
    for _ in 0..5 {
        for (path, status) in unread {
            let response = http.post(hive.url(path)).body(body.clone()).send().unwrap();
            assert_eq!(response.status(), status, "{path}");
            let connection = response.headers().get("connection");
            assert_eq!(
                connection.map(|v| v.as_bytes()),
                Some(&b"close"[..]),
                "{path}"
            );
            // The same client at once: a new connection, not the closed one.
            let hello = http.get(hive.url("/hello")).send().unwrap();
            assert_eq!(hello.status(), 200, "after {path}");
        }
    }
}

#[test]
fn a_wasi_http_guest_that_ignores_the_body_leaves_the_client_a_working_connection() {
    let dir = echo_dir(None);
    // `hello-http` answers without reading any request body.
    install(demo_components(), "hello-http", dir.path());
    install(test_components(), "wasi-http-faults", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let http = client();
    for size in [10 * 1024, 256 * 1024, 1024 * 1024] {
        let body = vec![b'z'; size];
        for _ in 0..3 {
            // The guest's own 200, given with the body unread: hyper closes
            // the connection after it, and the response must say so.
            let response = http
                .post(hive.url("/hello-http"))
                .body(body.clone())
                .send()
                .unwrap();
            assert_eq!(response.status(), 200, "{size} bytes");
            let connection = response.headers().get("connection");
            assert_eq!(
                connection.map(|v| v.as_bytes()),
                Some(&b"close"[..]),
                "{size} bytes"
            );
            assert_eq!(response.text().unwrap(), "Hello, world!\n");
            let next = http.get(hive.url("/hello-http")).send().unwrap();
            assert_eq!(next.status(), 200, "after {size} bytes");
            // A guest that reads the whole body first keeps the connection.
            let echoed = http
                .post(hive.url("/wasi-http-faults/buffered-echo"))
                .body(body.clone())
                .send()
                .unwrap();
            assert_eq!(echoed.status(), 200);
            assert!(echoed.headers().get("connection").is_none(), "{size} bytes");
            assert_eq!(echoed.text().unwrap(), format!("read {size} bytes"));
        }
    }
}

#[test]
fn bodies_beyond_the_host_wide_budget_get_503_at_once() {
    let dir = echo_dir(None);
    let hive = Hive::start(dir.path(), &["--body-budget-mib", "1"]);
    // One client announces 900 KiB and sends 10 bytes: the budget is held.
    let mut holder = TcpStream::connect(hive.address()).unwrap();
    holder
        .write_all(b"POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 921600\r\n\r\n0123456789")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The next 200 KiB no longer fit: 503, told when to retry, right away.
    let started = Instant::now();
    let refused = raw_exchange(
        hive.address(),
        b"POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 204800\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // Once the first client is gone, its bytes are free again.
    drop(holder);
    std::thread::sleep(Duration::from_millis(300));
    let body = vec![b'y'; 204800];
    let response = client()
        .post(hive.url("/echo/c"))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn a_connection_flood_never_exhausts_descriptors_and_admin_stays_reachable() {
    let dir = echo_dir(None);
    let hive = Hive::start_wrapped(
        &["prlimit", "--nofile=256:256"],
        "serve",
        dir.path(),
        &[],
        &[],
    );
    // More idle connections than the process has descriptors.
    let flood: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(hive.address()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let health = client().get(hive.admin_url("/health")).send().unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    hive.wait_for_log(&["connections open (the cap)"]);
    drop(flood);
    // The flood gone, the public listener serves again.
    let hello = client().get(hive.url("/hello")).send().unwrap();
    assert_eq!(hello.status(), 200);
    let logs = hive.logs();
    assert!(!logs.contains("Too many open files"), "{logs}");
}

#[test]
fn clients_cannot_forge_log_lines_through_a_guest() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(test_components(), "hostile", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let forged = "x%0A2026-11-26T00:00:00Z%20%20INFO%20hive::admin:%20received%20evil.wasm%0D";
    // Through `log` (hello logs the name it greets) ...
    let response = client()
        .get(hive.url(&format!("/hello?name={forged}")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // ... and through stdout and stderr.
    let response = client()
        .get(hive.url(&format!("/hostile/say?text={forged}%1B[2J")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    hive.wait_for_log(&["greeting x\\n2026-11-26T00:00:00Z"]);
    // Output is logged line by line, each line tagged; what a line carries
    // is escaped.
    hive.wait_for_log_count(&["evil.wasm\\r\\u{1b}[2J", "stream="], 2);
    let logs = hive.logs();
    for line in logs.lines() {
        assert!(!line.starts_with("2026-11-26T00:00:00Z"), "forged: {line}");
        assert!(!line.contains('\u{1b}'), "raw escape: {line}");
        assert!(!line.contains('\r'), "raw CR: {line}");
    }
}

#[test]
fn guest_text_cannot_pose_as_the_hosts_own_log_fields() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    // hello logs "greeting <name>"; the name claims to be other fields.
    let response = client()
        .get(hive.url("/hello?name=x%20component%3Devil%20request_id%3Dfake"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let line = hive.wait_for_log(&["greeting x"]);
    // The guest's text is quoted, so the only unquoted fields are real.
    assert!(
        line.contains(r#""greeting x component=evil request_id=fake""#),
        "{line}"
    );
    let unquoted: String = line.split('"').step_by(2).collect();
    assert!(!unquoted.contains("component=evil"), "{line}");
    assert!(unquoted.contains("component=hello"), "{line}");
}

#[test]
fn out_of_range_limits_are_manifest_errors_and_never_stop_the_host() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    install(test_components(), "hostile", dir.path());
    std::fs::write(
        dir.path().join("hostile.toml"),
        "[limits]\nconcurrency = 4611686018427387904\n",
    )
    .unwrap();
    // Without --strict a bad file is skipped, even one that once panicked.
    let hive = Hive::start(dir.path(), &[]);
    let line = hive.wait_for_log(&["skipping hostile.wasm"]);
    for expected in ["concurrency", "4611686018427387904", "between 1 and 100000"] {
        assert!(line.contains(expected), "{expected}: {line}");
    }
    assert_eq!(
        client().get(hive.url("/hello")).send().unwrap().status(),
        200
    );
    // At runtime too: a batch with a bad manifest still applies the rest.
    std::fs::write(
        dir.path().join("hostile.toml"),
        "[limits]\nmemory-mib = 17592186044417\n",
    )
    .unwrap();
    std::fs::copy(
        demo_components().join("echo.wasm"),
        dir.path().join("echo.wasm"),
    )
    .unwrap();
    let line = hive.wait_for_log(&["skipping hostile.wasm", "memory-mib"]);
    assert!(line.contains("17592186044417"), "{line}");
    hive.wait_for_log(&["loaded echo.wasm"]);
    assert_eq!(
        client().get(hive.url("/echo/x")).send().unwrap().status(),
        200
    );
}

#[test]
fn a_tokenless_admin_api_answers_only_loopback_names_and_same_origin_writes() {
    let dir = echo_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let admin = hive.admin.trim_start_matches("http://").to_string();
    let port = admin.rsplit(':').next().unwrap();
    let get = |host: &str| {
        raw_exchange(
            &admin,
            format!("GET /components HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(5),
        )
    };
    assert!(get(&admin).starts_with("HTTP/1.1 200"));
    assert!(get(&format!("localhost:{port}")).starts_with("HTTP/1.1 200"));
    // DNS rebinding: the browser sends the attacker's name.
    let rebound = get(&format!("evil.example:{port}"));
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    // A page posting across origins.
    let cross = raw_exchange(
        &admin,
        format!(
            "DELETE /components/echo HTTP/1.1\r\nHost: {admin}\r\nOrigin: http://evil.example\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(5),
    );
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    assert!(dir.path().join("echo.wasm").exists());
}

#[test]
fn an_upload_announced_over_the_limit_is_refused_before_it_is_read() {
    let dir = echo_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let admin = hive.admin.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let answer = raw_exchange(
        &admin,
        format!(
            "PUT /components/big HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 1073741824\r\n\r\n"
        )
        .as_bytes(),
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A manifest that is not UTF-8 is refused, not accepted and then failed.
    let response = client()
        .put(hive.admin_url("/components/echo/manifest"))
        .body(b"routes = [\"/\xff\"]".to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("UTF-8"));
}

#[test]
fn concurrent_uploads_of_one_name_each_describe_their_own_file() {
    let dir = echo_dir(None);
    let hive = Hive::start(dir.path(), &[]);
    let wasm = std::fs::read(demo_components().join("hello.wasm")).unwrap();
    for round in 0..10u8 {
        let uploads: Vec<_> = (0..2u8)
            .map(|which| {
                // Same component, different trailing custom bytes: the
                // digests differ, both are valid uploads.
                let mut body = wasm.clone();
                body.extend_from_slice(&[0, 3, b'h', round, which]);
                let url = hive.admin_url("/components/racer");
                std::thread::spawn(move || {
                    let answer: serde_json::Value = client()
                        .put(url)
                        .body(body.clone())
                        .send()
                        .unwrap()
                        .json()
                        .unwrap();
                    (answer, body)
                })
            })
            .collect();
        for upload in uploads {
            let (answer, body) = upload.join().unwrap();
            let expected: String = Sha256::digest(&body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(answer["digest"], expected.as_str(), "round {round}");
        }
    }
}

#[test]
fn admin_errors_name_the_component_not_the_hosts_folders() {
    let dir = echo_dir(None);
    std::fs::create_dir(dir.path().join("blocked.wasm")).unwrap();
    let hive = Hive::start(dir.path(), &[]);
    let wasm = std::fs::read(demo_components().join("hello.wasm")).unwrap();
    let response = client()
        .put(hive.admin_url("/components/blocked"))
        .body(wasm)
        .send()
        .unwrap();
    assert_eq!(response.status(), 500);
    let text = response.text().unwrap();
    assert!(text.contains("blocked.wasm"), "{text}");
    let folder = dir.path().to_string_lossy().to_string();
    assert!(!text.contains(&folder), "{text}");
}

#[test]
fn malformed_hosts_and_parameters_are_the_clients_400_not_a_trap() {
    let dir = echo_dir(None);
    install(demo_components(), "hello-http", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    for host in [&b"\xff"[..], b"", b"a b"] {
        let mut head = b"GET /hello-http HTTP/1.1\r\nHost: ".to_vec();
        head.extend_from_slice(host);
        head.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(hive.address(), &head, Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 400"), "{host:?}: {answer}");
    }
    // Two different paths must not reach the same parameter value.
    for path in ["/hello/%ff", "/hello/%fe"] {
        let response = client().get(hive.url(path)).send().unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    assert!(!hive.logs().contains("kind=trap"), "{}", hive.logs());
}
