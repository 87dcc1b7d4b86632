//! The Python half of `hive build`: a folder of the components workspace
//! with an `app.py` is a Python service, built with componentize-py.
//!
//! - Its world is Hive's `hive:service/service`, or, when the folder has a
//!   `wit/` with a world of its own (to import or export typed interfaces),
//!   that world. Its WIT dependencies are assembled for it: Hive's contract
//!   and the WASI WIT from the project's `wit/`, and the shared packages in
//!   the workspace's `*-wit/` folders (like `shop-wit/`).
//! - `requirements.txt` (pure-Python packages, as wheels; pip options,
//!   paths and URLs are refused, see [`super::requirements`]) is installed
//!   into a folder of its own under `target/python/<name>/deps` and bundled;
//!   a package with a compiled extension is refused by name.
//! - The `hive` package ([`super::python_package`]) goes on its path too.
//! - A build takes 10 to 20 s and about 400 MB, so services are built one
//!   at a time, and the result is kept under `target/python/<name>` with a
//!   digest of everything that went into it: an unchanged service is not
//!   rebuilt (componentize-py's output is not byte-for-byte reproducible,
//!   so only the inputs can tell).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::cargo::Artifact;
use super::python_package;
use super::requirements::plain_requirements;
use crate::config::is_valid_name;
use crate::tools::componentize::{self, Componentize};

/// The file that makes a folder a Python service.
pub const APP_FILE: &str = "app.py";

/// A Python service in the workspace.
#[derive(Debug, Clone)]
pub struct PythonService {
    /// Its name: the folder's name.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
}

/// Python services in `workspace`: folders with an `app.py` and no
/// `Cargo.toml`, whose name is a valid service name.
pub fn services_in(workspace: &Path) -> Result<Vec<PythonService>> {
    let Ok(entries) = std::fs::read_dir(workspace) else {
        return Ok(Vec::new());
    };
    let mut services = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join(APP_FILE).is_file() || dir.join("Cargo.toml").exists() {
            continue;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_valid_name(&name) {
            bail!(
                "{} has an {APP_FILE} but {name:?} cannot be a service name; use letters, \
                 digits, '-' or '_'",
                dir.display()
            );
        }
        services.push(PythonService { name, dir });
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(services)
}

/// Builds `service` (or takes the unchanged earlier build) and returns its
/// `.wasm`.
pub fn build(workspace: &Path, service: &PythonService) -> Result<Artifact> {
    let work = workspace.join("target/python").join(&service.name);
    let wasm = work.join(format!("{}.wasm", service.name));
    let project_wit = workspace.parent().unwrap_or(Path::new(".")).join("wit");
    let shared = shared_packages(workspace);
    let inputs = inputs_digest(service, &project_wit, &shared)?;
    let stamp = work.join("inputs.sha256");
    let fresh = std::fs::read_to_string(&stamp).is_ok_and(|old| old == inputs);
    if fresh && wasm.is_file() {
        tracing::info!(component = %service.name, "{} is unchanged; not rebuilt", service.name);
        return Ok(artifact(service, wasm));
    }

    // Refused before anything is installed or run.
    requirements(service)?;
    let tool = Componentize::ensure(&Componentize::tools_dir(workspace)).with_context(|| {
        format!(
            "componentize-py {} is needed to build Python services",
            componentize::VERSION
        )
    })?;
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let deps = install_requirements(&tool, service, &work)?;
    let package = python_package::write_into(&work)?;
    let (wit, world) = assemble_wit(service, &project_wit, &shared, &work)?;

    tracing::info!(component = %service.name, "building {} with componentize-py", service.name);
    let temporary = work.join(format!(".{}.wasm.tmp", service.name));
    let mut command = tool.command();
    command
        .current_dir(&service.dir)
        .arg("-d")
        .arg(&wit)
        .args(["-w", &world, "componentize", "app", "-p", "."])
        .arg("-p")
        .arg(&package)
        .args(
            deps.iter()
                .flat_map(|deps| [Path::new("-p"), deps.as_path()]),
        )
        .arg("-o")
        .arg(&temporary);
    let output = command.output().context("running componentize-py")?;
    componentize::check(&output, "componentize-py componentize")?;
    std::fs::rename(&temporary, &wasm).with_context(|| format!("moving {}", wasm.display()))?;
    std::fs::write(&stamp, inputs).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(artifact(service, wasm))
}

fn artifact(service: &PythonService, wasm: PathBuf) -> Artifact {
    Artifact {
        name: service.name.clone(),
        wasm,
        crate_dir: service.dir.clone(),
    }
}

/// The plain requirement lines of `service`'s `requirements.txt` (none
/// when it has no such file); an option, path or URL is an error.
fn requirements(service: &PythonService) -> Result<Vec<String>> {
    let path = service.dir.join("requirements.txt");
    match std::fs::read_to_string(&path) {
        Ok(text) => plain_requirements(&text).with_context(|| format!("building {}", service.name)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Installs `requirements.txt` (if it asks for anything) into
/// `work/deps`; returns that folder.
fn install_requirements(
    tool: &Componentize,
    service: &PythonService,
    work: &Path,
) -> Result<Option<PathBuf>> {
    let wanted = requirements(service)?;
    if wanted.is_empty() {
        return Ok(None);
    }
    let deps = work.join("deps");
    if deps.exists() {
        std::fs::remove_dir_all(&deps).with_context(|| format!("clearing {}", deps.display()))?;
    }
    // pip reads only the checked lines, from a file of Hive's own.
    let checked = work.join("requirements.checked.txt");
    std::fs::write(&checked, wanted.join("\n") + "\n")
        .with_context(|| format!("writing {}", checked.display()))?;
    let output = tool
        .pip()
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--only-binary",
            ":all:",
            "--target",
        ])
        .arg(&deps)
        .arg("-r")
        .arg(&checked)
        .output()
        .context("running pip")?;
    componentize::check(&output, "pip install -r requirements.txt")?;
    refuse_native_extensions(&deps)?;
    let marker = deps.join(python_package::REQUIREMENTS_MARKER);
    std::fs::write(&marker, "installed by hive build from requirements.txt\n")
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok(Some(deps))
}

/// Packages whose compiled speedups are optional: without them they run
/// as pure Python, so their extension files are dropped, not refused.
const PURE_FALLBACK: &[&str] = &["markupsafe"];

/// pip installs a package's wheel for this machine; a compiled extension
/// in it cannot run in a component. Such a package is refused, naming it
/// and the file, unless it has a pure-Python fallback.
fn refuse_native_extensions(deps: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect_files(deps, &mut files)?;
    for file in files {
        let native = file
            .extension()
            .is_some_and(|ext| ext == "so" || ext == "pyd" || ext == "dylib");
        if !native {
            continue;
        }
        let relative = file.strip_prefix(deps).unwrap_or(&file);
        let package = relative
            .components()
            .next()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        if PURE_FALLBACK.contains(&package.as_str()) {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
            continue;
        }
        bail!(
            "requirements.txt: package `{package}` has a native extension ({}), compiled \
             for this machine and not for WebAssembly; a Python service can use pure-Python \
             packages only",
            relative.display()
        );
    }
    Ok(())
}

/// Shared WIT packages of the workspace: each folder with `.wit` files
/// inside a `*-wit` folder (e.g. `shop-wit/users`).
fn shared_packages(workspace: &Path) -> Vec<PathBuf> {
    let mut packages = Vec::new();
    let Ok(entries) = std::fs::read_dir(workspace) else {
        return packages;
    };
    for entry in entries.flatten() {
        let group = entry.path();
        let is_group = group.is_dir()
            && group
                .file_name()
                .is_some_and(|name| name.to_string_lossy().ends_with("-wit"));
        if !is_group {
            continue;
        }
        for package in std::fs::read_dir(&group).into_iter().flatten().flatten() {
            let package = package.path();
            if !wit_files(&package).is_empty() {
                packages.push(package);
            }
        }
    }
    packages.sort();
    packages
}

/// The `.wit` files directly in `dir`, sorted.
fn wit_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .collect();
    files.sort();
    files
}

/// The WIT folder componentize-py reads, and the world to target. With a
/// `wit/` of its own, the service's world is the one its files define, and
/// everything it may use goes in `deps/`; otherwise it is Hive's own world,
/// read from the project's `wit/`.
fn assemble_wit(
    service: &PythonService,
    project_wit: &Path,
    shared: &[PathBuf],
    work: &Path,
) -> Result<(PathBuf, String)> {
    let own = service.dir.join("wit");
    if !own.is_dir() {
        return Ok((
            project_wit.to_path_buf(),
            "hive:service/service@0.1.0".into(),
        ));
    }
    let root = work.join("wit");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    let deps = root.join("deps");
    std::fs::create_dir_all(deps.join("hive-service"))
        .with_context(|| format!("creating {}", deps.display()))?;
    let mut world = None;
    for file in wit_files(&own) {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        world = world.or_else(|| world_name(&text));
        copy_into(&file, &root)?;
    }
    let Some(world) = world else {
        bail!(
            "{} defines no world; write one that includes hive:service/service@0.1.0",
            own.display()
        );
    };
    for file in wit_files(project_wit) {
        copy_into(&file, &deps.join("hive-service"))?;
    }
    for file in wit_files(&project_wit.join("deps")) {
        copy_into(&file, &deps)?;
    }
    for (index, package) in shared.iter().enumerate() {
        let target = deps.join(format!("shared-{index}"));
        std::fs::create_dir_all(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        for file in wit_files(package) {
            copy_into(&file, &target)?;
        }
    }
    Ok((root, world))
}

fn copy_into(file: &Path, dir: &Path) -> Result<()> {
    let target = dir.join(file.file_name().unwrap_or_default());
    std::fs::copy(file, &target)
        .map(|_| ())
        .with_context(|| format!("copying {} to {}", file.display(), target.display()))
}

/// The name of the first `world` a WIT file defines.
fn world_name(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("world ")?;
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        (!name.is_empty()).then_some(name)
    })
}

/// A digest of everything a build reads: the service's files (not its
/// editor stubs or caches), the WIT it may use, and the tool's version.
fn inputs_digest(
    service: &PythonService,
    project_wit: &Path,
    shared: &[PathBuf],
) -> Result<String> {
    let mut files = Vec::new();
    collect_files(&service.dir, &mut files)?;
    files.extend(wit_files(project_wit));
    files.extend(wit_files(&project_wit.join("deps")));
    for package in shared {
        files.extend(wit_files(package));
    }
    let mut hasher = Sha256::new();
    hasher.update(componentize::VERSION.as_bytes());
    for (name, text) in python_package::FILES {
        hasher.update(name.as_bytes());
        hasher.update(text.as_bytes());
    }
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Every file under `dir`, sorted, except editor stubs, bytecode caches
/// and hidden files.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name == "stubs" || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_found_in_wit_text() {
        let text = "package a:b;\n\n/// doc\nworld reviews-svc {\n  include x;\n}\n";
        assert_eq!(world_name(text), Some("reviews-svc".into()));
        assert_eq!(world_name("package a:b;\ninterface i {}\n"), None);
    }

    #[test]
    fn python_services_are_folders_with_an_app_and_no_cargo_manifest() {
        let dir = tempfile::tempdir().unwrap();
        for (name, files) in [
            ("greeter", &["app.py"][..]),
            ("rusty", &["app.py", "Cargo.toml"][..]),
            ("empty", &[][..]),
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            for file in files {
                std::fs::write(dir.path().join(name).join(file), "").unwrap();
            }
        }
        let found: Vec<String> = services_in(dir.path())
            .unwrap()
            .into_iter()
            .map(|service| service.name)
            .collect();
        assert_eq!(found, ["greeter"]);
    }
}
