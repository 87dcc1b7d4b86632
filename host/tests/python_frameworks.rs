//! Python services as Python developers write them: a Flask app (WSGI) and
//! a Starlette app (ASGI), each made a Hive service by one line of glue
//! (`Handler = hive.wsgi(app)` / `hive.asgi(app)`), answer exactly as they
//! do under gunicorn and uvicorn run beside them; and a Flask app reaches
//! Hive's config, key-value store and other services through `hive`.

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Process, free_port};
use common::{Hive, client, demo_components, hive_in, install, repo_root, test_components};

/// gunicorn and uvicorn, installed by `scripts/tools.sh` (from
/// `scripts/test.sh`) in a virtualenv of their own.
fn server_binary(name: &str) -> PathBuf {
    let path = repo_root().join(".hive/tools/servers/bin").join(name);
    assert!(
        path.exists(),
        "{} is needed: run scripts/test.sh, which installs it",
        path.display()
    );
    path
}

/// Starts `command` and waits until it listens on `port`.
fn start_native(mut command: Command, port: u16) -> Process {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let native = Process(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the native server did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    native
}

/// One request: method, path, extra headers, body.
type Probe = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// What is compared of an answer: the status, the headers that carry
/// meaning (not `date`, `server` or the request id), and the body.
fn answer(base: &str, (method, path, headers, body): &Probe) -> String {
    let mut request = client().request(method.parse().unwrap(), format!("{base}{path}"));
    for (name, value) in *headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body.to_string()).send().unwrap();
    let mut kept = vec![format!("status {}", response.status().as_u16())];
    for name in [
        "content-type",
        "content-length",
        "location",
        "allow",
        "set-cookie",
        "x-tag",
        "x-served-by",
    ] {
        for value in response.headers().get_all(name) {
            let mut value = value.to_str().unwrap().to_string();
            if name == "allow" {
                // Werkzeug lists the methods from a set: the order is the
                // interpreter's hash seed's, not the server's.
                let mut methods: Vec<&str> = value.split(", ").collect();
                methods.sort_unstable();
                value = methods.join(", ");
            }
            kept.push(format!("{name}: {value}"));
        }
    }
    kept.push(response.text().unwrap());
    kept.join("\n")
}

/// Sends every probe to both servers and requires the same answers.
fn compare(hive: &str, native: &str, probes: &[Probe]) {
    for probe in probes {
        let (under_hive, natively) = (answer(hive, probe), answer(native, probe));
        assert_eq!(
            under_hive, natively,
            "{} {} answered differently under Hive (left) and natively (right)",
            probe.0, probe.1
        );
    }
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];
const TAGGED: &[(&str, &str)] = &[("x-tag", "blue")];

#[test]
fn a_flask_app_answers_under_hive_as_under_gunicorn() {
    let dir = tempfile::tempdir().unwrap();
    install(test_components(), "py-flask", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["loaded py-flask.wasm"]);

    let port = free_port();
    let mut gunicorn = Command::new(server_binary("gunicorn"));
    gunicorn
        .current_dir(repo_root().join("test-components/py-flask"))
        .args(["--workers", "1", "--bind", &format!("127.0.0.1:{port}")])
        .arg("web:app");
    let _gunicorn = start_native(gunicorn, port);

    let probes: &[Probe] = &[
        ("GET", "/py-flask/", &[], ""),
        ("POST", "/py-flask/echo", JSON, r#"{"a": [1, 2], "b": "x"}"#),
        ("POST", "/py-flask/echo", TAGGED, "not json"),
        ("GET", "/py-flask/echo", &[], ""),
        ("POST", "/py-flask/form", FORM, "name=ana&tag=a&tag=b"),
        ("GET", "/py-flask/add/2/40", &[], ""),
        ("GET", "/py-flask/add/2/x", &[], ""),
        ("GET", "/py-flask/files/a/b/c.txt", &[], ""),
        ("GET", "/py-flask/query?q=1&q=2", &[], ""),
        ("GET", "/py-flask/lookup/bob", &[], ""),
        ("GET", "/py-flask/teapot", &[], ""),
        ("GET", "/py-flask/boom", &[], ""),
        ("GET", "/py-flask/headers", TAGGED, ""),
        ("GET", "/py-flask/items/", &[], ""),
        ("GET", "/py-flask/items", &[], ""),
        ("GET", "/py-flask/items/mug", &[], ""),
        ("GET", "/py-flask/nope", &[], ""),
        ("DELETE", "/py-flask/add/1/2", &[], ""),
    ];
    compare(&hive.base, &format!("http://127.0.0.1:{port}"), probes);
}

#[test]
fn a_starlette_app_answers_under_hive_as_under_uvicorn() {
    let dir = tempfile::tempdir().unwrap();
    install(test_components(), "py-starlette", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["loaded py-starlette.wasm"]);

    let port = free_port();
    let mut uvicorn = Command::new(server_binary("uvicorn"));
    uvicorn
        .current_dir(repo_root().join("test-components/py-starlette"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--no-access-log", "web:app"]);
    let _uvicorn = start_native(uvicorn, port);

    let probes: &[Probe] = &[
        ("GET", "/py-starlette/", &[], ""),
        ("GET", "/py-starlette/", TAGGED, ""),
        ("GET", "/py-starlette/users/7", &[], ""),
        ("GET", "/py-starlette/users/x", &[], ""),
        ("POST", "/py-starlette/echo", JSON, r#"{"a": [1, 2]}"#),
        ("POST", "/py-starlette/echo", &[], "not json"),
        ("GET", "/py-starlette/echo", &[], ""),
        ("GET", "/py-starlette/query?q=a&q=b", &[], ""),
        ("GET", "/py-starlette/query", &[], ""),
        ("GET", "/py-starlette/plain", &[], ""),
        ("GET", "/py-starlette/boom", &[], ""),
        ("GET", "/py-starlette/items/cup", &[], ""),
        ("GET", "/py-starlette/items/caf%C3%A9", &[], ""),
        ("GET", "/py-starlette/items/", &[], ""),
        ("GET", "/py-starlette/nope", &[], ""),
        ("PUT", "/py-starlette/users/1", &[], ""),
        ("DELETE", "/py-starlette/echo", TAGGED, ""),
    ];
    compare(&hive.base, &format!("http://127.0.0.1:{port}"), probes);
}

#[test]
fn a_flask_app_reaches_config_kv_other_services_and_its_trace_through_hive() {
    let dir = tempfile::tempdir().unwrap();
    install(test_components(), "py-hive", dir.path());
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["loaded py-hive.wasm"]);
    let get = |path: &str| {
        let response = client().get(hive.url(path)).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };

    // Its manifest's [config].
    assert_eq!(
        get("/py-hive/config/greeting"),
        (
            200,
            r#"{"key":"greeting","value":"hej"}"#.to_string() + "\n"
        )
    );
    assert_eq!(get("/py-hive/config/missing").0, 404);

    // Its own key-value store.
    let put = client()
        .put(hive.url("/py-hive/kv/note"))
        .body("kept")
        .send()
        .unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(get("/py-hive/kv/note"), (200, "kept".to_string()));
    assert_eq!(get("/py-hive/kv/other").0, 404);
    for n in 1..=3 {
        let counted = client()
            .post(hive.url("/py-hive/count/visits"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(counted, format!("{{\"count\":{n}}}\n"));
    }

    // A generic call to another service, and one to no service.
    let (status, body) = get("/py-hive/call/hello/hello/ana");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""status":200"#) && body.contains("ana"),
        "{body}"
    );
    let (status, body) = get("/py-hive/call/nobody/x");
    assert_eq!(status, 502);
    assert!(body.contains(r#""error":"not-found""#), "{body}");

    // A durable publish through hive.events, and one the store refuses.
    let published = client()
        .post(hive.url("/py-hive/publish/py.note"))
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(published.status(), 202);
    let body: serde_json::Value = published.json().unwrap();
    assert!(
        !body["id"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
    assert!(
        hive.metrics()
            .contains(r#"hive_events_published_total{topic="py.note"} 1"#),
        "{}",
        hive.metrics()
    );
    let refused = client()
        .post(hive.url("/py-hive/publish/no%20spaces"))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body = refused.text().unwrap();
    assert!(body.contains(r#""error":"invalid-topic""#), "{body}");

    // hive.trace: the request's context, and a span of the app's own below
    // the request's span.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = client()
        .get(hive.url("/py-hive/traced"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .unwrap();
    assert_eq!(traced.status(), 200);
    let request_id = traced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = traced.json().unwrap();
    let seen = body["traceparent"].as_str().unwrap_or_default();
    assert!(seen.starts_with(&format!("00-{trace_id}-")), "{body}");
    let view: serde_json::Value = client()
        .get(hive.admin_url(&format!("/requests/{request_id}/trace")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let spans = view["spans"].as_array().unwrap();
    let request = spans.iter().find(|s| s["kind"] == "server").unwrap();
    let own = spans
        .iter()
        .find(|s| s["name"] == "py-hive work")
        .unwrap_or_else(|| panic!("no span of the app's own: {view}"));
    assert_eq!(own["parent_span_id"], request["span_id"]);
    assert_eq!(own["attributes"]["py.items"], "3");
    assert!(
        seen.contains(request["span_id"].as_str().unwrap()),
        "{seen}"
    );
}

/// A project beside the repository's `wit/` holding one Python service
/// `name` with `app` and `requirements`.
fn python_project(root: &std::path::Path, name: &str, app: &str, requirements: &str) {
    let wit = repo_root().join("wit");
    std::os::unix::fs::symlink(&wit, root.join("wit")).unwrap();
    let service = root.join("components").join(name);
    std::fs::create_dir_all(&service).unwrap();
    std::fs::write(service.join("app.py"), app).unwrap();
    std::fs::write(service.join("requirements.txt"), requirements).unwrap();
}

#[test]
fn an_app_raising_at_import_or_a_native_package_fails_the_build_saying_why() {
    // The suite's own build installs componentize-py first.
    let _ = test_components();
    let build = ["build", "--components", "components", "--out", "deploy"];

    let root = tempfile::tempdir().unwrap();
    python_project(
        root.path(),
        "raiser",
        "from hive import wsgi\n\nraise RuntimeError('no database configured')\n",
        "",
    );
    let (ok, out) = hive_in(root.path(), &build);
    assert!(!ok, "{out}");
    assert!(out.contains("raiser"), "{out}");
    assert!(out.contains("Traceback (most recent call last)"), "{out}");
    assert!(
        out.contains("RuntimeError: no database configured"),
        "{out}"
    );
    assert!(!root.path().join("deploy/raiser.wasm").exists());

    let root = tempfile::tempdir().unwrap();
    python_project(
        root.path(),
        "native",
        "from hive import wsgi\n",
        "# a JSON library written in Rust\norjson==3.13.0\n",
    );
    let (ok, out) = hive_in(root.path(), &build);
    assert!(!ok, "{out}");
    assert!(out.contains("native"), "{out}");
    assert!(
        out.contains("package `orjson` has a native extension")
            && out.contains("pure-Python packages only"),
        "{out}"
    );
    assert!(!root.path().join("deploy/native.wasm").exists());
}

#[test]
fn hive_new_scaffolds_flask_and_starlette_apps_that_build_and_serve() {
    let _ = test_components();
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo_root().join("wit"), root.path().join("wit")).unwrap();
    std::fs::create_dir(root.path().join("components")).unwrap();

    let (ok, out) = hive_in(root.path(), &["new", "--framework", "flask", "nope"]);
    assert!(!ok && out.contains("--lang python"), "{out}");
    for framework in ["flask", "starlette"] {
        let name = format!("web-{framework}");
        let (ok, out) = hive_in(
            root.path(),
            &["new", "--lang", "python", "--framework", framework, &name],
        );
        assert!(ok, "{out}");
        let requirements = std::fs::read_to_string(
            root.path()
                .join("components")
                .join(&name)
                .join("requirements.txt"),
        )
        .unwrap();
        assert!(
            requirements.contains(&format!("{framework}==")),
            "{requirements}"
        );
    }
    let (ok, out) = hive_in(root.path(), &["build"]);
    assert!(ok, "{out}");

    let hive = Hive::start(&root.path().join("deploy"), &[]);
    for framework in ["flask", "starlette"] {
        let name = format!("web-{framework}");
        hive.wait_for_log(&[&format!("loaded {name}.wasm")]);
        for visit in 1..=2 {
            let body: serde_json::Value = client()
                .get(hive.url(&format!("/{name}/hi")))
                .send()
                .unwrap()
                .json()
                .unwrap();
            assert_eq!(body["greeting"], format!("Hello from {name}"), "{body}");
            assert_eq!(body["path"], format!("/{name}/hi"), "{body}");
            assert_eq!(body["visits"], visit, "{body}");
        }
    }
}
