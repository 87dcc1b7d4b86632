//! Hot deploy: dropping, replacing or removing files in the folder changes
//! what is served, live, without failed requests.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Hive, client, demo_components, deploy_atomically, install};

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(demo_components().join(format!("{name}.wasm"))).unwrap()
}

/// Polls `path` until it answers `status`, returning how long that took.
fn wait_for_status(hive: &Hive, path: &str, status: u16) -> Duration {
    let started = Instant::now();
    let http = client();
    loop {
        if http.get(hive.url(path)).send().unwrap().status() == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{path} never answered {status}; log:\n{}",
            hive.logs()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn body(hive: &Hive, path: &str) -> String {
    client().get(hive.url(path)).send().unwrap().text().unwrap()
}

/// Which build answered: `hello` greets in text, `echo` answers JSON.
fn version_of(body: &str) -> &'static str {
    if body.starts_with("Hello") {
        "hello"
    } else if body.starts_with('{') {
        "echo"
    } else {
        "other"
    }
}

#[test]
fn ten_swaps_under_load_lose_no_request_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    deploy_atomically(dir.path(), "svc.wasm", &wasm("hello"));
    let hive = Arc::new(Hive::start(dir.path(), &[]));

    // Each record: when the request was sent, its status and its version.
    type Record = (Instant, u16, &'static str);
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let hive = hive.clone();
        let stop = stop.clone();
        load.push(thread::spawn(move || {
            let http = client();
            let mut records: Vec<Record> = Vec::new();
            // Bounded by the swaps finishing, or 20,000 requests.
            while !stop.load(Ordering::Relaxed) && records.len() < 20_000 {
                let sent = Instant::now();
                match http.get(hive.url("/svc")).send() {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let text = response.text().unwrap_or_default();
                        records.push((sent, status, version_of(&text)));
                    }
                    Err(_) => records.push((sent, 0, "error")),
                }
            }
            records
        }));
    }

    // Swap i is live once the host logs it; from then on, every request
    // sent must get that version (until the next swap starts).
    let mut swaps: Vec<(Instant, Instant, &'static str)> = Vec::new();
    for i in 0..10 {
        let next = if i % 2 == 0 { "echo" } else { "hello" };
        let started = Instant::now();
        deploy_atomically(dir.path(), "svc.wasm", &wasm(next));
        hive.wait_for_log_count(&["swapped in svc.wasm"], i + 1);
        let live = Instant::now();
        swaps.push((started, live, next));
        thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    let records: Vec<Record> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();

    let failed: Vec<&Record> = records.iter().filter(|r| r.1 != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed",
        failed.len(),
        records.len()
    );
    let mut checked = 0;
    for (index, (_, live, version)) in swaps.iter().enumerate() {
        let next_start = swaps.get(index + 1).map(|s| s.0);
        for (sent, _, got) in &records {
            if sent > live && next_start.is_none_or(|next| *sent < next) {
                assert_eq!(got, version, "old version answered after swap {index}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} requests fell after a swap");
    eprintln!(
        "{} requests over 10 swaps, 0 failed, {checked} checked as the new version",
        records.len()
    );
}

#[test]
fn components_come_and_go_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    assert_eq!(
        client().get(hive.url("/echo")).send().unwrap().status(),
        404
    );

    let landed = Instant::now();
    deploy_atomically(dir.path(), "echo.wasm", &wasm("echo"));
    wait_for_status(&hive, "/echo", 200);
    eprintln!("file landing to serving: {:?}", landed.elapsed());

    // A manifest arriving later changes the service's routes.
    deploy_atomically(
        dir.path(),
        "echo.toml",
        br#"routes = ["/mirror/..."]"#.as_slice(),
    );
    wait_for_status(&hive, "/mirror/x", 200);
    assert_eq!(
        client().get(hive.url("/echo")).send().unwrap().status(),
        404
    );

    std::fs::remove_file(dir.path().join("echo.wasm")).unwrap();
    wait_for_status(&hive, "/mirror/x", 404);
    hive.wait_for_log(&["removed echo.wasm"]);
    // The neighbour never noticed.
    assert_eq!(body(&hive, "/hello?name=n"), "Hello, n!\n");
}

#[test]
fn a_half_written_file_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &[]);
    let echo = wasm("echo");
    let (first, rest) = echo.split_at(echo.len() / 2);

    // A new file written in two chunks with a pause longer than the debounce.
    let mut file = std::fs::File::create(dir.path().join("late.wasm")).unwrap();
    file.write_all(first).unwrap();
    file.flush().unwrap();
    hive.wait_for_log(&["skipping late.wasm", "not serving"]);
    assert_eq!(
        client().get(hive.url("/late")).send().unwrap().status(),
        404
    );
    file.write_all(rest).unwrap();
    drop(file);
    wait_for_status(&hive, "/late", 200);

    // An existing file rewritten in place: the old version serves meanwhile.
    let mut file = std::fs::File::create(dir.path().join("hello.wasm")).unwrap();
    file.write_all(first).unwrap();
    file.flush().unwrap();
    hive.wait_for_log(&["skipping hello.wasm", "previous version keeps serving"]);
    assert_eq!(body(&hive, "/hello?name=a"), "Hello, a!\n");
    file.write_all(rest).unwrap();
    drop(file);
    let deadline = Instant::now() + Duration::from_secs(30);
    while version_of(&body(&hive, "/hello")) != "echo" {
        assert!(Instant::now() < deadline, "completed file never loaded");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_broken_update_keeps_the_old_version_and_a_fix_recovers() {
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "echo", dir.path());
    deploy_atomically(dir.path(), "svc.wasm", &wasm("hello"));
    let hive = Hive::start(dir.path(), &[]);
    assert_eq!(version_of(&body(&hive, "/svc")), "hello");

    // Garbage.
    deploy_atomically(dir.path(), "svc.wasm", b"garbage");
    hive.wait_for_log(&[
        "skipping svc.wasm",
        "not a WebAssembly file",
        "previous version",
    ]);
    assert_eq!(version_of(&body(&hive, "/svc")), "hello");

    // A component for another world... is not at hand here, so a bad
    // manifest next to a valid new version.
    deploy_atomically(dir.path(), "svc.toml", b"routes = 3");
    deploy_atomically(dir.path(), "svc.wasm", &wasm("echo"));
    hive.wait_for_log(&["skipping svc.wasm", "svc.toml", "previous version"]);
    assert_eq!(version_of(&body(&hive, "/svc")), "hello");

    // A route conflict with the neighbour.
    deploy_atomically(dir.path(), "svc.toml", br#"routes = ["/echo"]"#.as_slice());
    hive.wait_for_log(&[
        "skipping svc.wasm",
        "conflicts",
        "echo.wasm",
        "previous version",
    ]);
    assert_eq!(version_of(&body(&hive, "/svc")), "hello");
    assert_eq!(version_of(&body(&hive, "/echo")), "echo");

    // The fix: a good manifest. No restart.
    deploy_atomically(dir.path(), "svc.toml", br#"routes = ["/svc2"]"#.as_slice());
    wait_for_status(&hive, "/svc2", 200);
    assert_eq!(version_of(&body(&hive, "/svc2")), "echo");
    assert_eq!(client().get(hive.url("/svc")).send().unwrap().status(), 404);
}

#[test]
fn a_service_waiting_for_a_route_takes_it_when_the_owner_leaves() {
    let dir = tempfile::tempdir().unwrap();
    deploy_atomically(dir.path(), "a.wasm", &wasm("hello"));
    deploy_atomically(dir.path(), "a.toml", br#"routes = ["/x"]"#.as_slice());
    deploy_atomically(dir.path(), "b.wasm", &wasm("echo"));
    deploy_atomically(dir.path(), "b.toml", br#"routes = ["/x"]"#.as_slice());
    let hive = Hive::start(dir.path(), &[]);
    assert_eq!(version_of(&body(&hive, "/x")), "hello");
    std::fs::remove_file(dir.path().join("a.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while version_of(&body(&hive, "/x")) != "echo" {
        assert!(Instant::now() < deadline, "b never took over /x");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Appends a custom section so each copy has its own content hash, and so
/// its own compile and cache entry.
fn unique_copy(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = format!("hive-test-{tag}");
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    let mut size = content.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&content);
    out
}

/// Time from spawning the host to it listening, with everything loaded.
fn startup(dir: &std::path::Path, extra: &[&str]) -> (Duration, Hive) {
    let started = Instant::now();
    let hive = Hive::start(dir, extra);
    (started.elapsed(), hive)
}

/// A benchmark, printed rather than asserted: restart time for 50 distinct
/// components, cold (empty cache), warm (cache filled) and with no cache.
#[test]
fn restart_with_and_without_the_compile_cache_for_50_components() {
    let dir = tempfile::tempdir().unwrap();
    let hello = wasm("hello");
    for i in 0..50 {
        deploy_atomically(
            dir.path(),
            &format!("svc{i:02}.wasm"),
            &unique_copy(&hello, &i.to_string()),
        );
    }
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let args = ["--cache-dir", cache_arg, "--no-watch"];

    let (cold, hive) = startup(dir.path(), &args);
    assert_eq!(hive.count_log(&["loaded svc", "cache=Miss"]), 50);
    drop(hive);
    let (warm, hive) = startup(dir.path(), &args);
    assert_eq!(hive.count_log(&["loaded svc", "cache=Hit"]), 50);
    assert_eq!(body(&hive, "/svc49?name=x"), "Hello, x!\n");
    drop(hive);
    let (uncached, hive) = startup(dir.path(), &["--no-cache", "--no-watch"]);
    assert_eq!(hive.count_log(&["loaded svc"]), 50);
    drop(hive);

    eprintln!(
        "startup with 50 components: cold cache {cold:?}, warm cache {warm:?}, no cache {uncached:?} \
         (warm is {:.1}x faster than no cache)",
        uncached.as_secs_f64() / warm.as_secs_f64()
    );
}

/// `hive_folder_refreshes_total` from the admin API.
fn folder_refreshes(hive: &Hive) -> u64 {
    hive.metrics()
        .lines()
        .find_map(|line| line.strip_prefix("hive_folder_refreshes_total "))
        .and_then(|count| count.trim().parse().ok())
        .expect("the host counts folder refreshes")
}

#[test]
fn the_watcher_rests_after_a_hot_deploy_and_says_a_bad_file_once() {
    let dir = tempfile::tempdir().unwrap();
    deploy_atomically(dir.path(), "svc.wasm", &wasm("hello"));
    let hive = Hive::start(dir.path(), &[]);
    wait_for_status(&hive, "/svc", 200);
    // A hot deploy, and a file that does not load.
    deploy_atomically(dir.path(), "svc.wasm", &wasm("echo"));
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm but not really").unwrap();
    let started = Instant::now();
    while version_of(&body(&hive, "/svc")) != "echo" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            hive.logs()
        );
        thread::sleep(Duration::from_millis(20));
    }
    hive.wait_for_log(&["skipping broken.wasm"]);
    // Let the last batch of events settle, then count for 10 s.
    thread::sleep(Duration::from_secs(1));
    let before = folder_refreshes(&hive);
    thread::sleep(Duration::from_secs(10));
    let after = folder_refreshes(&hive);
    let said = hive.count_log(&["skipping broken.wasm"]);
    println!(
        "watcher idle: {} refreshes in 10 s after a hot deploy; the bad file logged {said} time(s)",
        after - before
    );
    assert_eq!(
        after,
        before,
        "the watcher kept refreshing:\n{}",
        hive.logs()
    );
    assert_eq!(said, 1, "{}", hive.logs());
    // A real change to the bad file is tried (and said) again.
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm still not").unwrap();
    hive.wait_for_log_count(&["skipping broken.wasm"], 2);
}
