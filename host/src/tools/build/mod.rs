//! `hive build` (and `just build`): builds every component of a components
//! workspace into `.wasm` files in a folder. Rust crates (the cargo
//! workspace's members) are built with cargo; Python services (a folder
//! with an `app.py`) with componentize-py, one at a time. Each component's
//! `.wasm`, and its `service.toml` renamed `<name>.toml`, are copied into
//! the output folder under a temporary name and renamed into place, so a
//! host watching the folder never sees a half-written file.
//!
//! A component that fails to build is reported by name (with the tool that
//! failed); the others are still built and installed.

pub mod cargo;
pub mod python;
pub mod python_package;
pub mod requirements;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::cargo::Artifact;

/// The manifest file name inside a component's folder.
pub const CRATE_MANIFEST: &str = "service.toml";

/// One built component.
#[derive(Debug, Clone)]
pub struct Built {
    /// The service name.
    pub name: String,
    /// Where the `.wasm` was copied to.
    pub wasm: PathBuf,
    /// Where the manifest was copied to, if the component has one.
    pub manifest: Option<PathBuf>,
}

/// Builds every component in the workspace at `workspace` and copies the
/// results into `out_dir`, replacing older copies. Blocking. Fails, after
/// installing everything that did build, if any component failed.
pub fn build_components(workspace: &Path, out_dir: &Path) -> Result<Vec<Built>> {
    // Tools run in the services' own folders: give them paths that hold there.
    let workspace = &std::path::absolute(workspace)
        .with_context(|| format!("resolving {}", workspace.display()))?;
    let manifest = workspace.join("Cargo.toml");
    let pythons = python::services_in(workspace)?;
    if !manifest.is_file() && pythons.is_empty() {
        bail!(
            "no Cargo.toml and no Python service (a folder with an app.py) in {}: point \
             --components at a workspace of components",
            workspace.display()
        );
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("creating the output folder {}", out_dir.display()))?;
    let mut built = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    if manifest.is_file() {
        match cargo::build_workspace(&manifest) {
            Ok(artifacts) if artifacts.is_empty() && pythons.is_empty() => bail!(
                "building {} produced no .wasm files; component crates need \
                 `crate-type = [\"cdylib\"]` (or a `main`)",
                workspace.display()
            ),
            Ok(artifacts) => {
                for artifact in artifacts {
                    built.push(install(&artifact, out_dir)?);
                }
            }
            Err(err) => failed.push(format!("the Rust components: {err:#}")),
        }
    }
    for service in &pythons {
        match python::build(workspace, service) {
            Ok(artifact) => built.push(install(&artifact, out_dir)?),
            Err(err) => {
                tracing::error!(component = %service.name, "{err:#}");
                failed.push(format!("{}: {err:#}", service.name));
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of the components in {} did not build (the rest are in {}): {}",
            failed.len(),
            workspace.display(),
            out_dir.display(),
            failed.join("; ")
        );
    }
    Ok(built)
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
