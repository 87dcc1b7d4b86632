//! `hive new <name>`: a ready-to-build service in the components workspace,
//! in Rust (a crate added to the cargo workspace) or in Python (a folder
//! with an `app.py`), so a new service is one command, one edit and one
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

/// Creates `components/<name>` in `lang`. Returns its folder.
pub fn new_component(components: &Path, name: &str, lang: Lang) -> Result<PathBuf> {
    if !is_valid_name(name) {
        bail!("{name:?} cannot be a service name; use letters, digits, '-' or '_'");
    }
    let dir = components.join(name);
    if dir.exists() {
        bail!("{} already exists; pick another name", dir.display());
    }
    match lang {
        Lang::Rust => rust::new_crate(components, &dir, name),
        Lang::Python => python::new_app(components, &dir, name),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
