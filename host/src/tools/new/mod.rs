//! `hive new <name>`: a ready-to-build service in the components workspace,
//! in Rust (a crate added to the cargo workspace) or in Python (a folder
//! with an `app.py`: a `Handler`, a Flask app or a Starlette app), so a new service is one command, one edit and one
//! build away.

pub mod python;
pub mod rust;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::config::is_valid_name;

/// The languages `hive new` writes services in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// A Rust crate using wit-bindgen.
    #[default]
    Rust,
    /// A Python app built with componentize-py.
    Python,
}

/// What a Python service is written with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Framework {
    /// A `Handler` class over Hive's own request record.
    #[default]
    None,
    /// A Flask app, served through `hive.wsgi`.
    Flask,
    /// A Starlette app, served through `hive.asgi`.
    Starlette,
}

/// Creates `components/<name>` in `lang` (with `framework`, for Python).
/// Returns its folder.
pub fn new_component(
    components: &Path,
    name: &str,
    lang: Lang,
    framework: Framework,
) -> Result<PathBuf> {
    if lang == Lang::Rust && framework != Framework::None {
        bail!("--framework is for Python services: add --lang python");
    }
    if !is_valid_name(name) {
        bail!("{name:?} cannot be a service name; use letters, digits, '-' or '_'");
    }
    let dir = components.join(name);
    if dir.exists() {
        bail!("{} already exists; pick another name", dir.display());
    }
    match lang {
        Lang::Rust => rust::new_crate(components, &dir, name),
        Lang::Python => python::new_app(components, &dir, name, framework),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
