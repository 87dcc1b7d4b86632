//! The `hive` Python package (`host/python/hive`): Hive's interfaces with
//! Python names, `hive.call`, `hive.events`, and the WSGI and ASGI adapters that make a
//! Flask or Starlette app a service. Built into the binary, so `hive build`
//! bundles the matching version into every Python service wherever it
//! runs; a service that does not `import hive` carries it unused.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Its files, by name.
pub const FILES: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../python/hive/__init__.py"),
    ),
    ("asgi.py", include_str!("../../../python/hive/asgi.py")),
    ("calls.py", include_str!("../../../python/hive/calls.py")),
    (
        "environ.py",
        include_str!("../../../python/hive/environ.py"),
    ),
    ("events.py", include_str!("../../../python/hive/events.py")),
    (
        "failures.py",
        include_str!("../../../python/hive/failures.py"),
    ),
    ("loop.py", include_str!("../../../python/hive/loop.py")),
    (
        "records.py",
        include_str!("../../../python/hive/records.py"),
    ),
    (
        "snapshot.py",
        include_str!("../../../python/hive/snapshot.py"),
    ),
    ("wsgi.py", include_str!("../../../python/hive/wsgi.py")),
];

/// The file `hive build` leaves in the folder it installed a service's
/// `requirements.txt` into, so `hive.snapshot` imports those packages (and
/// not the build tools') while componentize-py takes its snapshot.
pub const REQUIREMENTS_MARKER: &str = ".hive-requirements";

/// Writes the package under `work/python/hive`; returns `work/python`,
/// the folder to put on the Python path.
pub fn write_into(work: &Path) -> Result<PathBuf> {
    let root = work.join("python");
    let package = root.join("hive");
    std::fs::create_dir_all(&package).with_context(|| format!("creating {}", package.display()))?;
    for (name, text) in FILES {
        let path = package.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(root)
}
