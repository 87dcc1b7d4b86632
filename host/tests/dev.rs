//! `hive dev`: editing a component's source rebuilds and redeploys it.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Hive, client, repo_root, scratch_workspace};

/// Copies the `hello` crate into a workspace of its own under `root`.
fn scratch_hello(root: &Path) -> std::path::PathBuf {
    let source = repo_root().join("components");
    let workspace = scratch_workspace(root, r#"["hello"]"#);
    std::fs::create_dir_all(workspace.join("hello/src")).unwrap();
    for file in ["hello/Cargo.toml", "hello/service.toml"] {
        std::fs::copy(source.join(file), workspace.join(file)).unwrap();
    }
    let wit = repo_root().join("wit");
    let code = std::fs::read_to_string(source.join("hello/src/lib.rs"))
        .unwrap()
        .replace("\"../../wit\"", &format!("{:?}", wit.to_str().unwrap()));
    std::fs::write(workspace.join("hello/src/lib.rs"), code).unwrap();
    workspace
}

#[test]
fn saving_a_source_file_redeploys_the_component() {
    let root = tempfile::tempdir().unwrap();
    let workspace = scratch_hello(root.path());
    let deploy = root.path().join("deploy");
    // A build folder of this test's own, kept between runs so dependencies
    // compile once. (Sharing the demos' folder would overwrite their
    // hello.wasm with this edited one.)
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dev-test-target");
    let workspace_arg = workspace.to_str().unwrap();
    let hive = Hive::start_command(
        "dev",
        &deploy,
        &["--components", workspace_arg],
        &[("CARGO_TARGET_DIR", &target)],
    );
    let http = client();
    let first = http
        .get(hive.url("/hello?name=dev"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(first, "Hello, dev!\n");

    let lib = workspace.join("hello/src/lib.rs");
    let edited = std::fs::read_to_string(&lib)
        .unwrap()
        .replace("\"{greeting}, {name}!\\n\"", "\"{greeting}, {name}!!\\n\"");
    assert!(edited.contains("!!"), "the edit did not apply");
    std::fs::write(&lib, edited).unwrap();

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let body = http
            .get(hive.url("/hello?name=dev"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if body == "Hello, dev!!\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edit never went live; log:\n{}",
            hive.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    hive.wait_for_log(&["swapped in hello.wasm"]);
}
