//! Builds a workspace of component crates into `.wasm` files in a folder.
//!
//! This is what `hive build` (and `just build`) runs: it adds the
//! `wasm32-wasip2` target if rustup lacks it, compiles every crate of the
//! workspace in release mode, and copies each component (and its
//! `service.toml` manifest, renamed `<name>.toml`) into the output folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The target every component is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The manifest file name inside a component crate.
pub const CRATE_MANIFEST: &str = "service.toml";

/// One built component.
#[derive(Debug, Clone)]
pub struct Built {
    /// The service name (the crate's target name).
    pub name: String,
    /// Where the `.wasm` was copied to.
    pub wasm: PathBuf,
    /// Where the manifest was copied to, if the crate has one.
    pub manifest: Option<PathBuf>,
}

/// Builds every crate in the workspace at `workspace` and copies the results
/// into `out_dir`, replacing older copies. Blocking.
pub fn build_components(workspace: &Path, out_dir: &Path) -> Result<Vec<Built>> {
    let manifest = workspace.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "no Cargo.toml in {}: point --components at a workspace of component crates",
            workspace.display()
        );
    }
    ensure_wasm_target()?;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running `{cargo} build` for {}", workspace.display()))?;
    if !output.status.success() {
        bail!(
            "building the components in {} failed (see the compiler output above)",
            workspace.display()
        );
    }

    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("creating the output folder {}", out_dir.display()))?;
    let mut built = Vec::new();
    for artifact in wasm_artifacts(&output.stdout) {
        built.push(install(&artifact, out_dir)?);
    }
    if built.is_empty() {
        bail!(
            "building {} produced no .wasm files; component crates need \
             `crate-type = [\"cdylib\"]` (or a `main`)",
            workspace.display()
        );
    }
    Ok(built)
}

/// A `.wasm` produced by cargo, with the crate it came from.
struct Artifact {
    name: String,
    wasm: PathBuf,
    crate_dir: PathBuf,
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

/// Copies one artifact (and its manifest) into `out_dir`. Each file is written
/// under a temporary name and renamed, so a host watching the folder never
/// sees a half-written file.
fn install(artifact: &Artifact, out_dir: &Path) -> Result<Built> {
    let wasm = out_dir.join(format!("{}.wasm", artifact.name));
    copy_atomically(&artifact.wasm, &wasm)?;

    let source_manifest = artifact.crate_dir.join(CRATE_MANIFEST);
    let manifest_target = out_dir.join(format!("{}.toml", artifact.name));
    let manifest = if source_manifest.is_file() {
        copy_atomically(&source_manifest, &manifest_target)?;
        Some(manifest_target)
    } else {
        // A manifest left over from an earlier build would change routes.
        match std::fs::remove_file(&manifest_target) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("removing stale {}", manifest_target.display()));
            }
        }
        None
    };
    Ok(Built {
        name: artifact.name.clone(),
        wasm,
        manifest,
    })
}

fn copy_atomically(from: &Path, to: &Path) -> Result<()> {
    let file_name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = to.with_file_name(format!(".{file_name}.tmp"));
    std::fs::copy(from, &temporary)
        .with_context(|| format!("copying {} to {}", from.display(), temporary.display()))?;
    std::fs::rename(&temporary, to)
        .with_context(|| format!("moving {} into place", to.display()))?;
    Ok(())
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
