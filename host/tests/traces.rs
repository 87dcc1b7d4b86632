//! Traces across services: a client's `traceparent` followed through the
//! shop (the request, typed calls, kv operations, the outbox commit and the
//! event's delivery) into an OTLP/HTTP receiver that decodes with the
//! OpenTelemetry project's own protobufs; outbound `wasi:http` carrying the
//! context on; samplers, a collector that is down or slow; and the same
//! trace in the admin API, `hive trace` and the console's waterfall.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::wait_until;
use common::{Hive, chromium_dom, client, demo_components, hive_binary, install, repo_root};
use serde_json::Value;

/// The client's trace and span, as a caller upstream of Hive would send.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn client_traceparent() -> String {
    format!("00-{TRACE_ID}-{CLIENT_SPAN}-01")
}

/// Spans arrive within seconds; a cold, busy machine gets a minute.
const ARRIVAL: Duration = Duration::from_secs(60);

/// `host/tests/support/otlp_receiver.py` under the tools' Python, which
/// has `opentelemetry-proto` (scripts/tools.sh `otel_proto`).
struct Receiver {
    child: Child,
    _stdin: ChildStdin,
    base: String,
}

impl Receiver {
    fn start(extra: &[&str]) -> Receiver {
        let python = repo_root().join(".hive/tools/otel/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/test.sh (or `bash scripts/tools.sh otel_proto`)",
            python.display()
        );
        let script = repo_root().join("host/tests/support/otlp_receiver.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the receiver said {line:?}"));
        Receiver {
            child,
            _stdin: stdin,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Value> {
        let body: Value = client().get(&self.base).send().unwrap().json().unwrap();
        body["spans"].as_array().cloned().unwrap_or_default()
    }

    /// The spans of trace `trace_id` received so far.
    fn trace(&self, trace_id: &str) -> Vec<Value> {
        self.spans()
            .into_iter()
            .filter(|span| span["trace_id"] == trace_id)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host serving `components` with `env` (the OTEL_* variables).
fn host(components: &[&str], extra: &[&str], env: &[(&str, &str)]) -> (tempfile::TempDir, Hive) {
    let dir = tempfile::tempdir().unwrap();
    for name in components {
        install(demo_components(), name, dir.path());
    }
    let env: Vec<(&str, PathBuf)> = env
        .iter()
        .map(|(name, value)| (*name, PathBuf::from(value)))
        .collect();
    let env: Vec<(&str, &Path)> = env.iter().map(|(n, v)| (*n, v.as_path())).collect();
    let hive = Hive::start_command("serve", dir.path(), extra, &env);
    (dir, hive)
}

fn put(hive: &Hive, path: &str, body: &str) {
    let response = client()
        .put(hive.url(path))
        .body(body.to_string())
        .send()
        .unwrap();
    assert!(
        response.status().is_success(),
        "PUT {path}: {}",
        response.status()
    );
}

/// `POST /orders` for one mug with the client's `traceparent`; the request id.
fn place_order(hive: &Hive) -> String {
    let response = client()
        .post(hive.url("/orders"))
        .header("traceparent", client_traceparent())
        .body(r#"{"user": "ana", "sku": "mug", "quantity": 1}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// `GET url` as a client upstream of Hive that sampled its trace.
fn traced_get(url: String) -> reqwest::blocking::Response {
    client()
        .get(url)
        .header("traceparent", client_traceparent())
        .send()
        .unwrap()
}

/// `GET /hello` `count` times, one after another; their request ids.
fn hellos(hive: &Hive, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let response = client().get(hive.url("/hello")).send().unwrap();
            assert_eq!(response.status(), 200);
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

/// The one span matching `pick`, or a failure listing the trace.
fn one<'a>(spans: &'a [Value], what: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span for {what}, found {}; the trace:\n{}",
        found.len(),
        serde_json::to_string_pretty(spans).unwrap()
    );
    found[0]
}

/// The host's own copy of request `request_id`'s trace (`GET
/// /requests/<id>/trace`).
fn kept_trace(hive: &Hive, request_id: &str) -> Value {
    let response = client()
        .get(hive.admin_url(&format!("/requests/{request_id}/trace")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "no trace kept for {request_id}");
    response.json().unwrap()
}

fn a_counter(hive: &Hive, name: &str) -> u64 {
    hive.metrics()
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

#[test]
fn an_order_is_one_trace_from_the_client_through_calls_kv_and_its_event() {
    let receiver = Receiver::start(&[]);
    let (_dir, hive) = host(
        &["users", "inventory", "orders", "notifications"],
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base),
            ("OTEL_SERVICE_NAME", "shop"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    );
    put(
        &hive,
        "/users/ana",
        r#"{"name": "Ana", "email": "ana@example.com"}"#,
    );
    put(&hive, "/inventory/mug", r#"{"count": 100}"#);
    let request_id = place_order(&hive);

    wait_until("the order's delivery span at the receiver", ARRIVAL, || {
        receiver
            .trace(TRACE_ID)
            .iter()
            .any(|span| span["kind"] == "SPAN_KIND_CONSUMER")
    });
    // The delivery ends last; give the rest of its batch a moment.
    thread::sleep(Duration::from_millis(600));
    let spans = receiver.trace(TRACE_ID);
    let by_id = |id: &Value| spans.iter().find(|s| &s["span_id"] == id);

    // The request: a server span below the client's.
    let request = one(&spans, "the request", |s| {
        s["kind"] == "SPAN_KIND_SERVER" && s["name"] == "POST /orders"
    });
    assert_eq!(request["parent_span_id"], CLIENT_SPAN);
    assert_eq!(attr(request, "http.route"), "/orders");
    assert_eq!(attr(request, "http.request.method"), "POST");
    assert_eq!(attr(request, "http.response.status_code"), 201);
    assert_eq!(attr(request, "hive.component"), "orders");
    assert_eq!(attr(request, "hive.request.id"), request_id.as_str());
    assert_eq!(request["resource"]["service.name"], "shop");
    let instance = one(&spans, "orders' instance", |s| {
        s["name"] == "instantiate orders" && s["parent_span_id"] == request["span_id"]
    });
    assert_eq!(instance["kind"], "SPAN_KIND_INTERNAL");
    assert_eq!(attr(instance, "hive.instance"), "fresh");

    // orders -> users and orders -> inventory: typed calls, a client span
    // below the request and the callee's server span below it.
    for (callee, interface) in [
        ("users", "shop:users/directory@0.1.0"),
        ("inventory", "shop:inventory/stock@0.1.0"),
    ] {
        let call = one(&spans, &format!("orders -> {callee}"), |s| {
            s["kind"] == "SPAN_KIND_CLIENT" && attr(s, "hive.callee") == callee
        });
        assert_eq!(call["parent_span_id"], request["span_id"], "{callee}");
        assert_eq!(attr(call, "hive.caller"), "orders");
        assert_eq!(attr(call, "rpc.service"), interface);
        let served = one(&spans, &format!("{callee} serving"), |s| {
            s["kind"] == "SPAN_KIND_SERVER" && s["parent_span_id"] == call["span_id"]
        });
        assert_eq!(attr(served, "hive.component"), callee);
        one(&spans, &format!("{callee}'s instance"), |s| {
            s["name"] == format!("instantiate {callee}").as_str()
                && s["parent_span_id"] == served["span_id"]
        });
        if callee == "inventory" {
            // The reservation's kv operations, below inventory's span,
            // naming the namespace and never a key or a value.
            let kv: Vec<&Value> = spans
                .iter()
                .filter(|s| {
                    s["parent_span_id"] == served["span_id"]
                        && attr(s, "db.namespace") == "inventory"
                })
                .collect();
            assert!(!kv.is_empty(), "no kv span below inventory: {spans:#?}");
            for op in kv {
                assert_eq!(op["kind"], "SPAN_KIND_CLIENT");
                assert_eq!(attr(op, "db.system.name"), "hive.kv");
                assert!(op["name"].as_str().unwrap().starts_with("kv "), "{op}");
                let text = op.to_string();
                assert!(!text.contains("\"mug\""), "a kv span names a key: {text}");
            }
        }
    }

    // The order and its event commit together; the delivery to
    // notifications hangs below the commit.
    let commit = one(&spans, "the outbox commit", |s| {
        s["kind"] == "SPAN_KIND_PRODUCER"
    });
    assert_eq!(commit["parent_span_id"], request["span_id"]);
    assert_eq!(attr(commit, "db.namespace"), "orders");
    let delivery = one(&spans, "the delivery to notifications", |s| {
        s["kind"] == "SPAN_KIND_CONSUMER" && attr(s, "hive.component") == "notifications"
    });
    assert_eq!(delivery["name"], "process order.placed");
    assert_eq!(delivery["parent_span_id"], commit["span_id"]);
    assert_eq!(attr(delivery, "hive.component"), "notifications");
    assert_eq!(attr(delivery, "messaging.destination.name"), "order.placed");

    // orders' own span, through hive:service/trace.
    let stored = one(&spans, "orders' own span", |s| s["name"] == "store order");
    assert_eq!(stored["kind"], "SPAN_KIND_INTERNAL");
    assert_eq!(stored["parent_span_id"], request["span_id"]);
    assert_eq!(attr(stored, "hive.guest"), true);
    assert!(
        attr(stored, "shop.order.id")
            .as_str()
            .is_some_and(|id| id.parse::<u64>().is_ok()),
        "{stored}"
    );

    // Every span's parent is in the trace, but for the client's.
    for span in &spans {
        let parent = &span["parent_span_id"];
        assert!(
            parent == CLIENT_SPAN || by_id(parent).is_some(),
            "{} has a parent outside the trace: {span}",
            span["name"]
        );
        assert_eq!(span["status"], "STATUS_CODE_UNSET", "{span}");
    }

    // The host's own view of the same trace: the admin API and `hive trace`.
    let view = kept_trace(&hive, &request_id);
    assert_eq!(view["trace_id"], TRACE_ID);
    let names: BTreeSet<&str> = view["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for name in ["POST /orders", "instantiate orders", "commit orders"] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    let printed = Command::new(hive_binary())
        .args(["trace", &request_id, "--admin", &hive.admin])
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{tree}\n{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(tree.contains(&format!("trace {TRACE_ID}")), "{tree}");
    assert!(tree.contains("POST /orders [server] (orders)"), "{tree}");
    // Children are indented below their parents.
    assert!(tree.contains("  instantiate orders [internal]"), "{tree}");
    assert!(tree.contains("    kv "), "{tree}");

    // The graph's typed edges carry latencies from the spans.
    let graph: Value = client()
        .get(hive.admin_url("/graph"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let edge = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == "orders" && e["to"] == "users")
        .cloned()
        .unwrap();
    assert_eq!(edge["latency"]["count"], 1, "{edge}");
    assert_eq!(
        edge["latency"]["slowest_request"],
        request_id.as_str(),
        "{edge}"
    );
}

#[test]
fn the_console_draws_a_requests_waterfall() {
    let (_dir, hive) = host(&["users", "inventory", "orders", "notifications"], &[], &[]);
    put(
        &hive,
        "/users/ana",
        r#"{"name": "Ana", "email": "ana@example.com"}"#,
    );
    put(&hive, "/inventory/mug", r#"{"count": 100}"#);
    let request_id = place_order(&hive);
    let dom = chromium_dom(&hive.admin_url(&format!("/#request={request_id}")));
    assert!(dom.contains(&format!("Trace {TRACE_ID}")), "{dom}");
    for name in [
        "POST /orders",
        "instantiate orders",
        "shop:users/directory@0.1.0 get-user",
        "shop:inventory/stock@0.1.0 reserve-for",
        "commit orders",
    ] {
        assert!(
            dom.contains(&format!("data-span=\"{name}\"")),
            "no waterfall row for {name}:\n{dom}"
        );
    }
}

#[test]
fn a_service_reads_its_trace_context_as_a_header_and_through_hive_service_trace() {
    let (_dir, hive) = host(&["echo"], &[], &[]);
    let response = traced_get(hive.url("/echo"));
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let echoed: Value = response.json().unwrap();
    let seen = echoed["traceparent"]
        .as_str()
        .expect("trace.traceparent() answered");
    // The host's request span, below the client's, replaces the client's
    // header: the guest hands on its own span's context, not the caller's.
    assert_eq!(echoed["headers"]["traceparent"], seen);
    let view = kept_trace(&hive, &request_id);
    let request = one(view["spans"].as_array().unwrap(), "the request", |s| {
        s["kind"] == "server"
    });
    assert_eq!(request["parent_span_id"], CLIENT_SPAN);
    assert_eq!(
        seen,
        format!("00-{TRACE_ID}-{}-01", request["span_id"].as_str().unwrap())
    );
    // With traces off there is no context to read.
    let (_dir, off) = host(&["echo"], &["--traces=false"], &[]);
    let echoed: Value = client()
        .get(off.url("/echo"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echoed["traceparent"], Value::Null);
}

#[test]
fn a_trap_is_the_request_spans_error_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    install(common::test_components(), "hostile", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let response = client().get(hive.url("/hostile/panic")).send().unwrap();
    assert_eq!(response.status(), 500);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let view = kept_trace(&hive, &request_id);
    let request = one(view["spans"].as_array().unwrap(), "the request", |s| {
        s["kind"] == "server"
    });
    assert_eq!(request["status"], "error");
    assert_eq!(attr(request, "error.type"), "trap");
    assert_eq!(attr(request, "http.response.status_code"), "500");
    assert!(
        request["status_message"]
            .as_str()
            .is_some_and(|m| m.contains("wasm trap")),
        "{request}"
    );
    assert_eq!(request["events"], serde_json::json!(["exception"]));
}

#[test]
fn a_wasmcloud_components_wasi_keyvalue_calls_are_spans_too() {
    let dir = tempfile::tempdir().unwrap();
    install(common::wasmcloud_components(), "wc-counter", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let response = client().get(hive.url("/wc-counter/apples")).send().unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let view = kept_trace(&hive, &request_id);
    let spans = view["spans"].as_array().unwrap();
    let request = one(spans, "the request", |s| s["kind"] == "server");
    let increment = one(spans, "the increment", |s| s["name"] == "kv increment");
    assert_eq!(increment["parent_span_id"], request["span_id"]);
    assert_eq!(attr(increment, "db.namespace"), "wc-counter");
    assert_eq!(attr(increment, "db.operation.name"), "increment");
}

/// A one-route HTTP server on loopback that keeps each request's
/// `traceparent`.
fn upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            if let Some(value) = head
                .lines()
                .find_map(|line| line.strip_prefix("traceparent:"))
            {
                kept.lock().unwrap().push(value.trim().to_string());
            }
            let body = "from upstream";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (origin, seen)
}

#[test]
fn outbound_wasi_http_carries_the_trace_to_the_upstream() {
    let (origin, seen) = upstream();
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello-http", dir.path());
    std::fs::write(
        dir.path().join("hello-http.toml"),
        format!(
            "routes = [\"/hello-http\", \"/hello-http/...\"]\nallowed-outbound = [\"{origin}\"]\n"
        ),
    )
    .unwrap();
    let hive = Hive::start(dir.path(), &[]);
    let response = traced_get(hive.url(&format!("/hello-http/fetch?url={origin}/data")));
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(response.text().unwrap(), "fetched: from upstream");
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let parts: Vec<&str> = sent[0].split('-').collect();
    assert_eq!(parts.len(), 4, "{sent:?}");
    assert_eq!(parts[1], TRACE_ID, "the upstream is in the client's trace");
    assert_eq!(parts[3], "01");
    // Its parent is the host's client span for that request, below the
    // request's server span.
    let view = kept_trace(&hive, &request_id);
    let spans = view["spans"].as_array().unwrap();
    let outbound = one(spans, "the outbound request", |s| s["kind"] == "client");
    assert_eq!(outbound["span_id"], parts[2]);
    assert_eq!(outbound["name"], "GET");
    assert_eq!(attr(outbound, "http.response.status_code"), "200");
    assert_eq!(
        attr(outbound, "url.full"),
        format!("{origin}/data").as_str()
    );
    let request = one(spans, "the request", |s| s["kind"] == "server");
    assert_eq!(outbound["parent_span_id"], request["span_id"]);
    assert_eq!(request["parent_span_id"], CLIENT_SPAN);
}

#[test]
fn a_sampler_at_zero_exports_nothing_but_follows_a_sampled_caller() {
    let receiver = Receiver::start(&[]);
    let (_dir, hive) = host(
        &["hello"],
        &[
            "--trace-sampler",
            "parentbased_traceidratio",
            "--trace-sampler-arg",
            "0",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let unsampled = hellos(&hive, 20);
    // A caller that sampled its trace decides for it (parent-based): its
    // spans arrive, which shows the receiver would have had the others.
    let response = traced_get(hive.url("/hello"));
    assert_eq!(response.status(), 200);
    wait_until("the sampled caller's spans", ARRIVAL, || {
        !receiver.trace(TRACE_ID).is_empty()
    });
    thread::sleep(Duration::from_millis(500));
    let spans = receiver.spans();
    let other: Vec<&Value> = spans.iter().filter(|s| s["trace_id"] != TRACE_ID).collect();
    assert!(
        other.is_empty(),
        "unsampled requests were exported: {other:#?}"
    );
    let status = client()
        .get(hive.admin_url(&format!("/requests/{}/trace", unsampled[0])))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 404, "an unsampled request has no kept trace");
}

#[test]
fn without_a_collector_new_traces_are_capped_but_a_sampled_caller_is_followed() {
    // The default sampler (none named, no collector) at 5 new traces a
    // second instead of its 100, so a short burst goes past it.
    let (_dir, hive) = host(&["hello"], &["--trace-sampler-arg", "5"], &[]);
    let started = Instant::now();
    let ids = hellos(&hive, 200);
    let elapsed = started.elapsed().as_secs_f64();
    let kept = ids
        .iter()
        .filter(|id| {
            let status = client()
                .get(hive.admin_url(&format!("/requests/{id}/trace")))
                .send()
                .unwrap()
                .status();
            assert!(status == 200 || status == 404, "{id}: {status}");
            status == 200
        })
        .count();
    // Five at once, then five a second for as long as the burst took.
    let allowed = 5 + (5.0 * elapsed).ceil() as usize + 1;
    assert!(
        (1..=allowed).contains(&kept),
        "{kept} of 200 requests in {elapsed:.1} s kept a trace; at most {allowed} may"
    );
    // A caller that sampled its trace has it recorded whatever the cap.
    let response = traced_get(hive.url("/hello"));
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"].to_str().unwrap();
    let trace = hive.admin_url(&format!("/requests/{id}/trace"));
    wait_until("the sampled caller's trace", ARRIVAL, || {
        client().get(&trace).send().is_ok_and(|r| r.status() == 200)
    });
    assert_eq!(kept_trace(&hive, id)["trace_id"], TRACE_ID);
}

#[test]
fn a_collector_that_is_down_costs_requests_nothing_and_drops_are_counted() {
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (_dir, hive) = host(
        &["hello"],
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    for _ in 0..50 {
        let response = client().get(hive.url("/hello")).send().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().unwrap(), "Hello, world!\n");
    }
    wait_until("all 100 spans counted as dropped", ARRIVAL, || {
        a_counter(&hive, "hive_trace_spans_dropped_total") >= 100
    });
    assert_eq!(a_counter(&hive, "hive_trace_spans_exported_total"), 0);
    hive.wait_for_log(&["span export to", "failed", "hive_trace_spans_dropped_total"]);
}

#[test]
fn a_slow_collector_fills_a_bounded_queue_and_the_rest_is_dropped() {
    // Every export waits 30 s for its answer; the host gives up after 1 s.
    let receiver = Receiver::start(&["--delay", "30"]);
    let (_dir, hive) = host(
        &["hello"],
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ],
    );
    // 600 requests, 2 spans each: the queue holds 64 and an export at a
    // time holds 16, so nearly all must be let go rather than kept.
    for _ in 0..600 {
        let response = client().get(hive.url("/hello")).send().unwrap();
        assert_eq!(response.status(), 200);
    }
    let dropped = a_counter(&hive, "hive_trace_spans_dropped_total");
    assert!(
        dropped >= 1200 - 64 - 16 - 16,
        "{dropped} of 1200 spans dropped: more are held than the queue allows"
    );
    assert_eq!(a_counter(&hive, "hive_trace_spans_exported_total"), 0);
}
