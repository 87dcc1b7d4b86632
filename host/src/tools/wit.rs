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

use anyhow::{Context, Result, bail};

use crate::wit_text::{self, DEPS, HIVE_SERVICE};

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
    // Names come from components or from another host's answer: check
    // them all before writing anything, so none can replace Hive's own
    // files or another package's.
    let mut taken: BTreeMap<String, &str> = DEPS
        .iter()
        .map(|(file, _)| (file.to_string(), "Hive"))
        .collect();
    for name in shared.keys() {
        check_package_name(name)?;
        let file = wit_text::file_name(name);
        if let Some(owner) = taken.insert(file.clone(), name) {
            bail!("the package {name} would be written to deps/{file}, which {owner} uses");
        }
    }
    put(&out.join("service.wit"), HIVE_SERVICE)?;
    for (file, text) in DEPS {
        put(&deps.join(file), text)?;
    }
    for (name, text) in shared {
        put(&deps.join(wit_text::file_name(name)), text)?;
    }
    Ok(written)
}

/// A shared package's name must be a WIT package name, `ns:name` with an
/// optional `@version`, outside the `wasi` and `hive` namespaces (Hive
/// writes those itself).
fn check_package_name(name: &str) -> Result<()> {
    let bare = name.split('@').next().unwrap_or_default();
    let identifier = |part: &str| {
        !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_lowercase())
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let valid = match bare.split_once(':') {
        Some((namespace, package)) => {
            identifier(namespace)
                && package.split('/').next().is_some_and(identifier)
                && !package.contains('/')
                && namespace != "wasi"
                && namespace != "hive"
        }
        None => false,
    };
    let version_ok = name.split_once('@').is_none_or(|(_, version)| {
        !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
    });
    if !valid || !version_ok {
        bail!(
            "{:?} is not a shared WIT package name (`namespace:name@version`, outside wasi \
             and hive); nothing was written",
            crate::logging::escape(name)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_package_cannot_replace_hive_or_wasi_files() {
        let out = tempfile::tempdir().unwrap();
        for name in [
            "cli",
            "wasi:cli@0.2.6",
            "hive:service@0.1.0",
            "../x",
            "a:b/c",
            "A:b",
        ] {
            let shared = BTreeMap::from([(name.to_string(), "evil".to_string())]);
            assert!(write_wit(out.path(), &shared).is_err(), "{name:?} accepted");
        }
        assert!(!out.path().join("deps").join("cli.wit").exists());
        let shared = BTreeMap::from([(
            "shop:users@0.1.0".to_string(),
            "package shop:users@0.1.0;\n".to_string(),
        )]);
        let written = write_wit(out.path(), &shared).unwrap();
        assert!(written.iter().any(|file| file.ends_with("shop-users.wit")));
        let cli = std::fs::read_to_string(out.path().join("deps/cli.wit")).unwrap();
        assert_ne!(cli, "evil");
    }
}
