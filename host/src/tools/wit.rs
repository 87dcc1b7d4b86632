//! `hive wit --out DIR`: every WIT a guest may target, written out for any
//! language's bindings generator (componentize-py, componentize-js,
//! wit-bindgen ...): Hive's world as `DIR/service.wit`, the WASI 0.2
//! packages Hive links in `DIR/deps/`, and in `DIR/deps/` too the packages
//! of the typed interfaces that the components of a folder (or of a running
//! host, through its admin API) share.
//!
//! `componentize-py -d DIR -w service ...` then targets Hive's world; a
//! world of your own in `DIR` may import and export the shared interfaces.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::wit_text::{self, HIVE_SERVICE, WASI};

/// Writes the WIT into `out`, with `shared` (package name -> text) beside
/// WASI; returns the files written.
pub fn write_wit(out: &Path, shared: &BTreeMap<String, String>) -> Result<Vec<String>> {
    let deps = out.join("deps");
    std::fs::create_dir_all(&deps).with_context(|| format!("creating {}", deps.display()))?;
    let mut written = Vec::new();
    let mut put = |path: &Path, text: &str| -> Result<()> {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path.display().to_string());
        Ok(())
    };
    put(&out.join("service.wit"), HIVE_SERVICE)?;
    for (file, text) in WASI {
        put(&deps.join(file), text)?;
    }
    for (name, text) in shared {
        put(&deps.join(wit_text::file_name(name)), text)?;
    }
    Ok(written)
}
