//! Components written for Spin and wasmCloud, built from those hosts' own
//! SDKs (`interop/`), served unchanged beside Hive services: they answer
//! as on their home hosts, keep their data across a kill -9, share it
//! across a cluster, and a version Hive does not serve is refused by name.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::cluster::{Node, deploy_from, start_redis, wait_until};
use common::{
    Hive, client, demo_components, install, spin_components, test_components, wasmcloud_components,
};

/// Every interop component, and where it was built.
fn interop() -> Vec<(&'static Path, &'static str)> {
    vec![
        (spin_components(), "spin-router"),
        (spin_components(), "spin-cas"),
        (wasmcloud_components(), "wc-counter"),
        (wasmcloud_components(), "wc-config"),
        (wasmcloud_components(), "wc-logging"),
    ]
}

fn install_interop(dir: &Path) {
    for (from, name) in interop() {
        install(from, name, dir);
    }
}

/// Status and body text of `GET path`.
fn get(base: &str, path: &str) -> (u16, String) {
    let response = client().get(format!("{base}{path}")).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

/// Status and body text of `POST path`.
fn post(base: &str, path: &str) -> (u16, String) {
    let response = client().post(format!("{base}{path}")).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn spin_and_wasmcloud_components_answer_as_on_their_home_hosts() {
    let dir = tempfile::tempdir().unwrap();
    install_interop(dir.path());
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    hive.wait_for_log(&["loaded wc-logging.wasm"]);
    hive.wait_for_log(&["loaded spin-router.wasm"]);
    let base = hive.base.as_str();

    // spin-sdk's Router on the full path, with a path parameter; its own
    // 404 for a path it has no route for.
    assert_eq!(
        get(base, "/spin-router/hello/bob"),
        (200, "Hello, bob!".into())
    );
    assert_eq!(get(base, "/spin-router/nope"), (404, "Not Found".into()));
    // Spin's variables: the manifest's config, with Spin's errors.
    assert_eq!(
        get(base, "/spin-router/variables/greeting"),
        (200, "Hello from Spin".into())
    );
    let (status, body) = get(base, "/spin-router/variables/missing");
    assert_eq!(status, 500);
    assert!(body.starts_with("Error::Undefined("), "{body}");
    let (status, body) = get(base, "/spin-router/variables/Bad");
    assert_eq!(status, 500);
    assert!(body.starts_with("Error::InvalidName("), "{body}");
    // Spin's key-value: the default store opens; a label the manifest does
    // not grant is access-denied, as on Spin.
    assert_eq!(
        get(base, "/spin-router/stores/default"),
        (200, "opened default".into())
    );
    assert_eq!(
        get(base, "/spin-router/stores/secret"),
        (500, "Error::AccessDenied".into())
    );
    assert_eq!(post(base, "/spin-router/visits"), (200, "1".into()));
    assert_eq!(post(base, "/spin-router/visits"), (200, "2".into()));

    // The headers Spin sets, whatever the client sent under those names.
    let response = client()
        .get(format!("{base}/spin-router/headers"))
        .header("spin-path-info", "/forged")
        .header("spin-matched-route", "/forged")
        .send()
        .unwrap();
    let headers = response.text().unwrap();
    let port = base.rsplit(':').next().unwrap();
    for line in [
        format!("spin-full-url: http://127.0.0.1:{port}/spin-router/headers"),
        "spin-path-info: /headers".into(),
        "spin-matched-route: /spin-router/...".into(),
        "spin-base-path: /".into(),
        "spin-component-route: /spin-router".into(),
        "spin-raw-component-route: /spin-router/...".into(),
        "spin-client-addr: 127.0.0.1:".into(),
    ] {
        assert!(headers.contains(&line), "{line:?} not in:\n{headers}");
    }

    // wasi:keyvalue draft2 as Spin vendors it. Its router matches on
    // spin-path-info, so it works only if the host sets it.
    assert_eq!(
        get(base, "/spin-cas/open/secret"),
        (500, "open: Error::AccessDenied".into())
    );
    assert_eq!(
        get(base, "/spin-cas/open/default"),
        (200, "opened default".into())
    );
    assert_eq!(post(base, "/spin-cas/add/hits"), (200, "1".into()));
    // 600 keys in one batch, listed back in pages of 256 by string cursors.
    assert_eq!(post(base, "/spin-cas/fill/600"), (200, "wrote 600".into()));
    assert_eq!(
        get(base, "/spin-cas/keys"),
        (200, "600 keys in 3 pages".into())
    );
    // Compare-and-swap from four clients at once: each swap that wins
    // counts once, so no increment is lost.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let base = base.to_string();
            thread::spawn(move || {
                for _ in 0..25 {
                    let (status, body) = post(&base, "/spin-cas/swap/counter");
                    assert_eq!(status, 200, "{body}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let (status, body) = post(base, "/spin-cas/swap/counter");
    assert_eq!(status, 200);
    assert!(body.starts_with("101 after "), "{body}");

    // wasmCloud's counter: wasi:keyvalue draft atomics; an unknown bucket
    // is no-such-store, as on wasmtime's and wasmCloud's hosts.
    assert_eq!(
        get(base, "/wc-counter/apples"),
        (200, "Counter apples: 1\n".into())
    );
    assert_eq!(
        get(base, "/wc-counter/apples"),
        (200, "Counter apples: 2\n".into())
    );
    assert_eq!(
        get(base, "/wc-counter/apples?bucket=elsewhere"),
        (500, "open elsewhere: Error::NoSuchStore\n".into())
    );
    hive.wait_for_log(&["counter: apples is now 2", "component=wc-counter"]);

    // wasi:config/store: the manifest's [config], every value a string.
    assert_eq!(
        get(base, "/wc-config"),
        (200, "region=eu-west\nreplicas=3\n".into())
    );
    assert_eq!(get(base, "/wc-config/region"), (200, "eu-west".into()));
    assert_eq!(
        get(base, "/wc-config/zone"),
        (404, "no config value zone\n".into())
    );

    // wasi:logging: into Hive's log with the service and request id, the
    // context first, critical as an error.
    let response = client()
        .get(format!("{base}/wc-logging?note=n42"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    for (level, text) in [
        ("INFO", "audit: info n42"),
        ("WARN", "audit: warn n42"),
        ("ERROR", "audit: error n42"),
        ("ERROR", "audit: critical n42"),
        ("INFO", "no context n42"),
    ] {
        let line = hive.wait_for_log(&[text, &id, "component=wc-logging"]);
        assert!(line.contains(level), "{level} not in {line}");
    }

    // Hive's own services beside them are untouched.
    assert_eq!(get(base, "/hello").0, 200);
}

#[test]
fn their_data_survives_a_kill_9_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap();
    install_interop(dir.path());

    let hive = Hive::start(dir.path(), &["--data", data_arg]);
    hive.wait_for_log(&["loaded spin-cas.wasm"]);
    hive.wait_for_log(&["loaded wc-counter.wasm"]);
    let base = hive.base.clone();
    for n in 1..=3 {
        assert_eq!(
            get(&base, "/wc-counter/pears"),
            (200, format!("Counter pears: {n}\n"))
        );
        assert_eq!(post(&base, "/spin-router/visits"), (200, n.to_string()));
        assert!(
            post(&base, "/spin-cas/swap/kept")
                .1
                .starts_with(&format!("{n} after"))
        );
    }
    // Drop kills the process with SIGKILL: no shutdown, no flush.
    drop(hive);

    let hive = Hive::start(dir.path(), &["--data", data_arg]);
    hive.wait_for_log(&["loaded spin-cas.wasm"]);
    hive.wait_for_log(&["loaded wc-counter.wasm"]);
    let base = hive.base.clone();
    assert_eq!(
        get(&base, "/wc-counter/pears"),
        (200, "Counter pears: 4\n".into())
    );
    assert_eq!(post(&base, "/spin-router/visits"), (200, "4".into()));
    assert!(post(&base, "/spin-cas/swap/kept").1.starts_with("4 after"));
}

#[test]
fn two_hosts_on_redis_share_their_counters() {
    let work = tempfile::tempdir().unwrap();
    let redis_port = common::cluster::free_port();
    let _redis = start_redis(&work.path().join("redis"), redis_port);
    let redis = format!("redis://127.0.0.1:{redis_port}/0");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let a = Node::new(work.path(), "a", &redis);
    let b = Node::new(work.path(), "b", &redis);
    let _a = a.start();
    let _b = b.start();
    for node in [&a, &b] {
        wait_until("host ready", Duration::from_secs(120), || node.ready(&http));
    }
    // Deployed once, through A: the cluster carries them to B.
    for (from, name) in interop() {
        deploy_from(&http, &a, from, name);
    }
    for node in [&a, &b] {
        wait_until("deployed on both hosts", Duration::from_secs(120), || {
            [
                "/spin-router/hello/x",
                "/spin-cas/open/default",
                "/wc-counter/probe",
            ]
            .iter()
            .all(|path| node.status(&http, path) == 200)
        });
    }

    // Turn by turn through A and B: one count.
    for n in 1..=6 {
        let node = if n % 2 == 1 { &a } else { &b };
        let base = node.url("");
        assert_eq!(
            get(&base, "/wc-counter/shared"),
            (200, format!("Counter shared: {n}\n"))
        );
        assert_eq!(post(&base, "/spin-router/visits"), (200, n.to_string()));
        assert_eq!(post(&base, "/spin-cas/add/shared"), (200, n.to_string()));
    }
    // Compare-and-swap through both hosts at once loses no increment.
    let workers: Vec<_> = [a.url(""), b.url("")]
        .into_iter()
        .map(|base| {
            thread::spawn(move || {
                for _ in 0..20 {
                    let (status, body) = post(&base, "/spin-cas/swap/both");
                    assert_eq!(status, 200, "{body}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(
        post(&b.url(""), "/spin-cas/swap/both")
            .1
            .starts_with("41 after")
    );
}

#[test]
fn an_unserved_version_is_refused_at_load_naming_the_interface_and_the_served_versions() {
    let dir = tempfile::tempdir().unwrap();
    install(test_components(), "old-keyvalue", dir.path());
    install(wasmcloud_components(), "wc-counter", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let line = hive.wait_for_log(&["skipping old-keyvalue.wasm"]);
    assert!(
        line.contains("wasi:keyvalue/store@0.1.0")
            && line.contains("Hive serves wasi:keyvalue/store at 0.2.0-draft, 0.2.0-draft2"),
        "{line}"
    );
    // Its neighbour is served.
    hive.wait_for_log(&["loaded wc-counter.wasm"]);
    assert_eq!(get(&hive.base, "/wc-counter/x").0, 200);

    // `hive inspect` says which standard interfaces each uses, and whether
    // this host serves them.
    let inspect = |path: &Path| {
        let out = std::process::Command::new(common::hive_binary())
            .arg("inspect")
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let old = inspect(&dir.path().join("old-keyvalue.wasm"));
    assert!(
        old.contains("wasi:keyvalue/store@0.1.0: NOT served"),
        "{old}"
    );
    let counter = inspect(&dir.path().join("wc-counter.wasm"));
    for served in [
        "wasi:keyvalue/store@0.2.0-draft: served",
        "wasi:keyvalue/atomics@0.2.0-draft: served",
        "wasi:logging/logging@0.1.0-draft: served",
    ] {
        assert!(counter.contains(served), "{served} not in {counter}");
    }
}

#[test]
fn a_store_outage_reaches_the_guest_as_other_never_as_a_trap() {
    let work = tempfile::tempdir().unwrap();
    let redis_port = common::cluster::free_port();
    let redis = start_redis(&work.path().join("redis"), redis_port);
    let dir = tempfile::tempdir().unwrap();
    install(spin_components(), "spin-cas", dir.path());
    install(wasmcloud_components(), "wc-counter", dir.path());
    let url = format!("redis://127.0.0.1:{redis_port}/0");
    let hive = Hive::start(dir.path(), &["--kv", &url]);
    hive.wait_for_log(&["loaded spin-cas.wasm"]);
    hive.wait_for_log(&["loaded wc-counter.wasm"]);
    assert_eq!(post(&hive.base, "/spin-cas/add/n"), (200, "1".into()));

    // Redis goes away: each call answers the guest with `other(...)`, and
    // the guest decides what its client sees.
    drop(redis);
    let (status, body) = post(&hive.base, "/spin-cas/add/n");
    assert_eq!(status, 500, "{body}");
    assert!(body.starts_with("increment: Error::Other("), "{body}");
    let (status, body) = get(&hive.base, "/spin-cas/keys");
    assert_eq!(status, 500, "{body}");
    assert!(body.starts_with("list-keys: Error::Other("), "{body}");
    // wasmCloud's counter turns the error into its own HTTP error.
    assert_eq!(get(&hive.base, "/wc-counter/x").0, 500);
    // No call trapped: the instances answered.
    assert_eq!(
        hive.count_log(&["request failed", "kind=trap"]),
        0,
        "{}",
        hive.logs()
    );
}
