//! The Rust half of `hive build`: compile every crate of the components
//! workspace for `wasm32-wasip2` in release mode (adding the target through
//! rustup when it is missing), and find the `.wasm` files cargo made.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The target every component is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Builds the workspace whose manifest is `manifest`; returns each `.wasm`
/// cargo produced with the crate it came from.
pub fn build_workspace(manifest: &Path) -> Result<Vec<Artifact>> {
    ensure_wasm_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running `{cargo} build` for {}", manifest.display()))?;
    if !output.status.success() {
        bail!("cargo failed to build the Rust components (see the compiler output above)");
    }
    Ok(wasm_artifacts(&output.stdout))
}

/// A `.wasm` produced by cargo, with the crate it came from.
pub struct Artifact {
    /// The service name (the crate's target name, `_` as `-`).
    pub name: String,
    /// Where cargo put the `.wasm`.
    pub wasm: PathBuf,
    /// The crate's folder, where its `service.toml` is.
    pub crate_dir: PathBuf,
}

#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<CargoTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct CargoTarget {
    name: String,
}

/// Reads cargo's JSON messages for the `.wasm` files it produced. Asking cargo
/// rather than guessing paths keeps this right under any `CARGO_TARGET_DIR`.
fn wasm_artifacts(stdout: &[u8]) -> Vec<Artifact> {
    let mut artifacts = Vec::new();
    for line in stdout.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<CargoMessage>(line) else {
            continue;
        };
        if message.reason != "compiler-artifact" {
            continue;
        }
        let (Some(target), Some(manifest_path)) = (message.target, message.manifest_path) else {
            continue;
        };
        let Some(crate_dir) = manifest_path.parent() else {
            continue;
        };
        for wasm in message.filenames {
            if wasm.extension().is_some_and(|ext| ext == "wasm") {
                artifacts.push(Artifact {
                    name: target.name.replace('_', "-"),
                    wasm,
                    crate_dir: crate_dir.to_path_buf(),
                });
            }
        }
    }
    artifacts
}

/// Adds the wasm target through rustup when it is missing, so a fresh machine
/// with only the host target can build components.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let installed = match installed {
        Ok(output) if output.status.success() => output.stdout,
        // No rustup: the toolchain came some other way; let cargo report a
        // missing target itself.
        _ => return Ok(()),
    };
    let has_target = String::from_utf8_lossy(&installed)
        .lines()
        .any(|line| line.trim() == WASM_TARGET);
    if has_target {
        return Ok(());
    }
    tracing::info!("adding the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .context("running `rustup target add`")?;
    if !status.success() {
        bail!("`rustup target add {WASM_TARGET}` failed; add the target by hand and retry");
    }
    Ok(())
}
