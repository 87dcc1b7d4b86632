//! Python services, built from `components/reviews` and
//! `test-components/py-hello` with componentize-py by `hive build`: typed
//! calls from Python into Rust and from Rust into Python, componentize-py's
//! private `exports` interface kept out of linking, and a memory limit
//! below a component's own size refused at load.

mod common;

use common::{Hive, client, demo_components, hive_in, install, test_components};
use serde_json::{Value, json};

/// A compile cache shared by this file's hosts: compiling CPython's 18 MB
/// component takes seconds, and every test would pay it again.
fn shared_cache() -> String {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("python-compile-cache")
        .to_string_lossy()
        .into_owned()
}

fn start(dir: &std::path::Path) -> Hive {
    Hive::start(dir, &["--cache-dir", &shared_cache()])
}

fn send(hive: &Hive, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = client();
    let request = match method {
        "POST" => http.post(hive.url(path)),
        "PUT" => http.put(hive.url(path)),
        _ => http.get(hive.url(path)),
    };
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn typed_calls_go_from_python_to_rust_and_from_rust_to_python() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["users", "inventory", "reviews", "catalog"] {
        install(demo_components(), name, dir.path());
    }
    let hive = start(dir.path());
    hive.wait_for_log(&[
        "reviews.wasm linked",
        "shop:users/directory@0.1.0 from users.wasm",
    ]);
    hive.wait_for_log(&[
        "catalog.wasm linked",
        "shop:reviews/reviews@0.1.0 from reviews.wasm",
    ]);
    let (status, _) = send(
        &hive,
        "PUT",
        "/users/ana",
        Some(json!({"name": "Ana", "email": "ana@example.com"})),
    );
    assert_eq!(status, 201);
    let (status, _) = send(&hive, "PUT", "/inventory/mug", Some(json!({"count": 4})));
    assert_eq!(status, 200);

    // Python -> Rust: reviews asks users (shop:users/directory) who wrote it.
    let (status, review) = send(
        &hive,
        "POST",
        "/reviews/mug",
        Some(json!({"user": "ana", "stars": 4, "text": "Sturdy."})),
    );
    assert_eq!(status, 201, "{review}");
    assert_eq!(review["name"], "Ana");
    let (status, error) = send(
        &hive,
        "POST",
        "/reviews/mug",
        Some(json!({"user": "zed", "stars": 1})),
    );
    assert_eq!(status, 404, "{error}");
    send(
        &hive,
        "POST",
        "/reviews/mug",
        Some(json!({"user": "ana", "stars": 5, "text": "Still sturdy."})),
    );
    // Its own kv data.
    let (status, listing) = send(&hive, "GET", "/reviews/mug", None);
    assert_eq!(status, 200);
    assert_eq!(listing["rating"], json!({"count": 2, "stars_total": 9}));
    assert_eq!(listing["reviews"][1]["text"], "Still sturdy.");

    // Rust -> Python: catalog asks reviews (shop:reviews/reviews) for the
    // rating, and inventory for the stock.
    let (status, item) = send(&hive, "GET", "/catalog/mug", None);
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["stock"], 4);
    assert_eq!(item["reviews"], 2);
    assert_eq!(item["average_stars"], 4.5);
}

#[test]
fn componentize_pys_own_exports_interface_is_never_linked() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "users", dir.path());
    install(demo_components(), "reviews", dir.path());
    install(test_components(), "py-hello", dir.path());
    let hive = start(dir.path());
    hive.wait_for_log(&["loaded py-hello.wasm"]);
    hive.wait_for_log(&["loaded reviews.wasm"]);
    let body = client()
        .get(hive.url("/py-hello/x"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "python says hello to /py-hello/x (1)\n");
    // Two Python services, each with componentize-py's `exports`: no
    // conflict, and it is nobody's API.
    let logs = hive.logs();
    assert!(!logs.contains("both export"), "{logs}");
    let listing: Value = client()
        .get(hive.admin_url("/components"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for component in listing["components"].as_array().unwrap() {
        let exports = component["exports"].as_array().cloned().unwrap_or_default();
        assert!(!exports.contains(&json!("exports")), "{component}");
    }
}

#[test]
fn a_memory_limit_below_the_components_own_size_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    install(test_components(), "py-hello", dir.path());
    std::fs::write(
        dir.path().join("py-hello.toml"),
        "[limits]\nmemory-mib = 8\n",
    )
    .unwrap();
    let hive = start(dir.path());
    let line = hive.wait_for_log(&["skipping py-hello.wasm"]);
    assert!(line.contains("memory starts at"), "{line}");
    assert!(line.contains("memory-mib = 13"), "{line}");
    // Nothing is served that would fail every request.
    let response = client().get(hive.url("/py-hello")).send().unwrap();
    assert_eq!(response.status(), 404);
}

#[test]
fn new_lang_python_then_build_then_serve_answers() {
    // The suite's own build installs componentize-py first, so two tests
    // never install it into the same folder at once.
    let _ = demo_components();
    // A project as a newcomer has it: the contract in wit/, a components/
    // folder.
    let root = tempfile::tempdir().unwrap();
    let wit = common::repo_root().join("wit");
    std::fs::create_dir_all(root.path().join("wit/deps")).unwrap();
    for dir in [wit.clone(), wit.join("deps")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let relative = path.strip_prefix(&wit).unwrap();
                std::fs::copy(&path, root.path().join("wit").join(relative)).unwrap();
            }
        }
    }
    std::fs::create_dir(root.path().join("components")).unwrap();

    let (ok, out) = hive_in(root.path(), &["new", "--lang", "python", "greeter"]);
    assert!(ok, "{out}");
    let app = root.path().join("components/greeter");
    for file in [
        "app.py",
        "service.toml",
        "requirements.txt",
        "stubs/wit_world/__init__.py",
    ] {
        assert!(app.join(file).exists(), "{file} missing: {out}");
    }
    let manifest = std::fs::read_to_string(app.join("service.toml")).unwrap();
    assert!(manifest.contains("instance-reuse"), "{manifest}");

    let (ok, out) = hive_in(root.path(), &["build"]);
    assert!(ok, "{out}");
    assert!(root.path().join("deploy/greeter.wasm").is_file(), "{out}");

    let hive = Hive::start(
        &root.path().join("deploy"),
        &["--cache-dir", &shared_cache()],
    );
    for visit in 1..=2 {
        let body = client()
            .get(hive.url("/greeter/hi"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(
            body,
            format!("Hello from greeter: you asked for /greeter/hi (visit {visit})\n")
        );
    }

    // A broken app is reported by name and tool; nothing else is lost.
    std::fs::write(app.join("app.py"), "this is not python\n").unwrap();
    let (ok, out) = hive_in(root.path(), &["build"]);
    assert!(!ok);
    assert!(out.contains("greeter"), "{out}");
    assert!(out.contains("componentize-py"), "{out}");
}

#[test]
fn hive_wit_writes_what_a_bindings_generator_needs() {
    let deploy = tempfile::tempdir().unwrap();
    for name in ["users", "reviews"] {
        install(demo_components(), name, deploy.path());
    }
    let out = tempfile::tempdir().unwrap();
    let (ok, said) = hive_in(
        deploy.path(),
        &["wit", "--out", out.path().to_str().unwrap(), "--dir", "."],
    );
    assert!(ok, "{said}");
    let read = |path: &str| std::fs::read_to_string(out.path().join(path)).unwrap();
    assert!(read("service.wit").contains("package hive:service@0.1.0;"));
    assert!(read("deps/http.wit").contains("package wasi:http@0.2.12;"));
    let users = read("deps/shop-users.wit");
    assert!(users.contains("interface directory"), "{users}");
    assert!(users.contains("get-user: func"), "{users}");
    assert!(read("deps/shop-reviews.wit").contains("rating-of: func"));

    // A bindings generator takes it as it is.
    let tools = common::repo_root().join(".hive/tools/venv/bin/componentize-py");
    let output = std::process::Command::new(tools)
        .arg("-d")
        .arg(out.path())
        .args(["-w", "service", "bindings"])
        .arg(out.path().join("bindings"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.path().join("bindings/wit_world/imports/kv.py").exists());
}

#[test]
fn requirements_may_name_packages_only_never_options_paths_or_urls() {
    let root = tempfile::tempdir().unwrap();
    let service = root.path().join("components/evil");
    std::fs::create_dir_all(&service).unwrap();
    std::fs::write(service.join("app.py"), "# never built\n").unwrap();
    for line in [
        "--index-url http://127.0.0.1:9/simple",
        "-r /etc/hostname",
        "./local-project",
        "pkg @ https://127.0.0.1:9/pkg.whl",
    ] {
        std::fs::write(
            service.join("requirements.txt"),
            format!("# pure Python only\n{line}\n"),
        )
        .unwrap();
        let (ok, out) = hive_in(
            root.path(),
            &["build", "--components", "components", "--out", "deploy"],
        );
        assert!(!ok, "{line}: {out}");
        assert!(out.contains("requirements.txt line 2"), "{line}: {out}");
        assert!(!root.path().join("deploy/evil.wasm").exists());
    }
}
