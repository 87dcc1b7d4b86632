//! Test support: builds real components from their crates, starts the real
//! `hive` binary on an ephemeral port, and collects its log.

#![allow(dead_code)]

pub mod cluster;
pub mod sentinel;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the host may take to compile its components and start listening.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn build_once(cell: &'static OnceLock<PathBuf>, workspace: &str) -> &'static Path {
    cell.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{workspace}-wasm"));
        hive::build_components(&repo_root().join(workspace), &out)
            .unwrap_or_else(|err| panic!("building {workspace}: {err:#}"));
        out
    })
}

/// Folder holding the demo services built from `components/`.
pub fn demo_components() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    build_once(&BUILT, "components")
}

/// Folder holding the test-only components built from `test-components/`.
pub fn test_components() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    build_once(&BUILT, "test-components")
}

/// Folder holding the components written for Spin, built from
/// `interop/spin/` with spin-sdk.
pub fn spin_components() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    build_once(&BUILT, "interop/spin")
}

/// Folder holding the components written for wasmCloud, built from
/// `interop/wasmcloud/` with wasmcloud-component.
pub fn wasmcloud_components() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    build_once(&BUILT, "interop/wasmcloud")
}

/// Copies `<name>.wasm` (and its manifest, if built with one) from `from`
/// into `to`.
pub fn install(from: &Path, name: &str, to: &Path) {
    std::fs::copy(
        from.join(format!("{name}.wasm")),
        to.join(format!("{name}.wasm")),
    )
    .unwrap_or_else(|err| panic!("copying {name}.wasm: {err}"));
    let manifest = from.join(format!("{name}.toml"));
    if manifest.exists() {
        std::fs::copy(&manifest, to.join(format!("{name}.toml"))).unwrap();
    }
}

/// The `hive` binary under test: this build's, or the one `HIVE_TEST_BIN`
/// names (to run the suite against an older build and see which tests it
/// fails).
pub fn hive_binary() -> PathBuf {
    std::env::var_os("HIVE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hive")))
}

/// A running `hive serve` process, killed on drop.
pub struct Hive {
    child: Child,
    /// This host's own compile cache and data folder, unless the test
    /// chose them.
    _cache: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The admin API, `http://127.0.0.1:PORT`.
    pub admin: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Hive {
    /// Starts `hive serve --dir <dir> --listen 127.0.0.1:0 <extra...>` and
    /// waits until it listens.
    pub fn start(dir: &Path, extra: &[&str]) -> Hive {
        Hive::start_command("serve", dir, extra, &[])
    }

    /// Starts `hive <subcommand> --dir <dir> ...` with extra environment
    /// variables, and waits until it listens.
    pub fn start_command(
        subcommand: &str,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Hive {
        Hive::start_wrapped(&[], subcommand, dir, extra, env)
    }

    /// Starts `hive <subcommand> ...` as an argument of `wrapper` (e.g.
    /// `["prlimit", "--nofile=256:256"]`), and waits until it listens.
    pub fn start_wrapped(
        wrapper: &[&str],
        subcommand: &str,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Hive {
        let (child, logs, listening, cache) = spawn(wrapper, subcommand, dir, extra, env);
        let base = match listening.recv_timeout(START_TIMEOUT) {
            Ok(address) => format!("http://{address}"),
            Err(_) => panic!(
                "hive did not start listening; its log:\n{}",
                logs.lock().unwrap().join("\n")
            ),
        };
        let admin = logs
            .lock()
            .unwrap()
            .iter()
            .find_map(|line| line.split("admin API on ").nth(1))
            .map(address_prefix)
            .unwrap_or_default();
        Hive {
            child,
            _cache: cache,
            base,
            admin,
            logs,
        }
    }

    /// Runs `hive serve` expecting it to exit by itself; returns its exit
    /// success and its log.
    pub fn run_to_exit(dir: &Path, extra: &[&str]) -> (bool, String) {
        Hive::run_to_exit_with_env(dir, extra, &[])
    }

    /// `run_to_exit` with extra environment variables.
    pub fn run_to_exit_with_env(
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> (bool, String) {
        let (mut child, logs, _listening, _cache) = spawn(&[], "serve", dir, extra, env);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // Give the reader thread a moment to drain the pipe.
                std::thread::sleep(Duration::from_millis(200));
                return (status.success(), logs.lock().unwrap().join("\n"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("hive did not exit by itself");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The full URL for `path` on the admin API.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{}", self.admin, path)
    }

    /// The Prometheus text of `GET /metrics` on the admin API.
    pub fn metrics(&self) -> String {
        client()
            .get(self.admin_url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// Waits until no instance of `component` is running. A response can
    /// reach the client before its call has ended and its instance is back
    /// in the pool; a test that counts instances waits for that between
    /// requests. A component that has not run yet has no gauge: idle too.
    pub fn wait_until_idle(&self, component: &str) {
        let gauge = format!(r#"hive_instances_in_flight{{component="{component}"}} "#);
        let running = |metrics: String| {
            metrics
                .lines()
                .filter_map(|line| line.strip_prefix(&gauge))
                .any(|count| count != "0")
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while running(self.metrics()) {
            assert!(
                Instant::now() < deadline,
                "{component} still has an instance running after 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` the host listens on.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Everything the host has logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains every one of `needles`.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self
                .logs
                .lock()
                .unwrap()
                .iter()
                .find(|line| needles.iter().all(|n| line.contains(n)))
            {
                return line.clone();
            }
            if Instant::now() > deadline {
                panic!("no log line contains {needles:?}; log:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until at least `count` log lines contain every one of `needles`.
    pub fn wait_for_log_count(&self, needles: &[&str], count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self
                .logs
                .lock()
                .unwrap()
                .iter()
                .filter(|line| needles.iter().all(|n| line.contains(n)))
                .count();
            if seen >= count {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "saw {seen} of {count} lines with {needles:?}; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Log lines containing every one of `needles`.
    pub fn count_log(&self, needles: &[&str]) -> usize {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .count()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "hive ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Logs = Arc<Mutex<Vec<String>>>;

/// The `[http://]host:port` at the start of `text`, which may be followed
/// by more of a text or JSON log line.
fn address_prefix(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/'))
        .collect()
}

fn spawn(
    wrapper: &[&str],
    subcommand: &str,
    dir: &Path,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> (Child, Logs, mpsc::Receiver<String>, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let binary = hive_binary();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&binary);
            command
        }
        None => Command::new(&binary),
    };
    command.envs(env.iter().copied());
    command
        .arg(subcommand)
        .arg("--dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"]);
    if !extra
        .iter()
        .any(|arg| *arg == "--cache-dir" || *arg == "--no-cache")
    {
        command.arg("--cache-dir").arg(cache.path().join("cache"));
    }
    if !extra.contains(&"--data") {
        command.arg("--data").arg(cache.path().join("data"));
    }
    if !extra.contains(&"--admin-listen") {
        command.args(["--admin-listen", "127.0.0.1:0"]);
    }
    let mut child = command
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the hive binary");
    let stderr = child.stderr.take().unwrap();
    let logs: Logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line
                .split("listening on http://")
                .nth(1)
                .or_else(|| line.split("listening on https://").nth(1))
            {
                let _ = tx.send(address_prefix(rest));
            }
            sink.lock().unwrap().push(line);
        }
    });
    (child, logs, rx, cache)
}

/// Writes `bytes` to `dir/name` the recommended way: under a hidden
/// temporary name, then renamed into place.
pub fn deploy_atomically(dir: &Path, name: &str, bytes: &[u8]) {
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, dir.join(name)).unwrap();
}

/// An empty components workspace under `root/components`, set up like the
/// repository's (same workspace settings, lock file and wasm target) but
/// with `members` as its only members. Returns its folder.
pub fn scratch_workspace(root: &Path, members: &str) -> PathBuf {
    let source = repo_root().join("components");
    let workspace = root.join("components");
    std::fs::create_dir_all(workspace.join(".cargo")).unwrap();
    for file in ["Cargo.lock", ".cargo/config.toml"] {
        std::fs::copy(source.join(file), workspace.join(file)).unwrap();
    }
    let manifest: String = std::fs::read_to_string(source.join("Cargo.toml"))
        .unwrap()
        .lines()
        .map(|line| {
            if line.starts_with("members") {
                format!("members = {members}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(workspace.join("Cargo.toml"), manifest).unwrap();
    workspace
}

/// Runs the `hive` binary in `dir` with the repository's tools folder (so
/// componentize-py is installed once for the whole suite); returns whether
/// it succeeded and what it printed.
pub fn hive_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(hive_binary())
        .args(args)
        .current_dir(dir)
        .env("HIVE_TOOLS", repo_root().join(".hive/tools"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A blocking HTTP client with a timeout, so a hung host fails the test.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The DOM of `url` after its scripts ran, as headless Chromium renders it.
pub fn chromium_dom(url: &str) -> String {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok())
        .expect(
            "Chromium is needed for this test: run scripts/test.sh, or apt-get install chromium",
        );
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,2200",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}
