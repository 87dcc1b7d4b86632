//! WIT as text, for guests in any language: Hive's own contract and the
//! WASI 0.2 interfaces it links (built into the binary, so `hive wit` works
//! anywhere), and the packages of typed interfaces that components share,
//! read back out of the components themselves.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_component::{DecodedWasm, WitPrinter};

/// `hive:service`, the world every Hive service targets.
pub const HIVE_SERVICE: &str = include_str!("../../wit/service.wit");

/// The packages beside Hive's world, by file name: the WASI 0.2 packages
/// Hive links, its own `hive:events`, `wasi:messaging`, and the standard
/// interfaces of other hosts it serves (`wasi:keyvalue`, `wasi:config`,
/// `wasi:logging` in each served version, Spin's key-value and variables).
pub const DEPS: &[(&str, &str)] = &[
    ("cli.wit", include_str!("../../wit/deps/cli.wit")),
    ("clocks.wit", include_str!("../../wit/deps/clocks.wit")),
    (
        "filesystem.wit",
        include_str!("../../wit/deps/filesystem.wit"),
    ),
    ("http.wit", include_str!("../../wit/deps/http.wit")),
    ("io.wit", include_str!("../../wit/deps/io.wit")),
    ("random.wit", include_str!("../../wit/deps/random.wit")),
    ("sockets.wit", include_str!("../../wit/deps/sockets.wit")),
    ("events.wit", include_str!("../../wit/deps/events.wit")),
    (
        "messaging.wit",
        include_str!("../../wit/deps/messaging.wit"),
    ),
    (
        "keyvalue-draft.wit",
        include_str!("../../wit/deps/keyvalue-draft.wit"),
    ),
    (
        "keyvalue-draft2.wit",
        include_str!("../../wit/deps/keyvalue-draft2.wit"),
    ),
    (
        "config-rc.wit",
        include_str!("../../wit/deps/config-rc.wit"),
    ),
    (
        "config-draft.wit",
        include_str!("../../wit/deps/config-draft.wit"),
    ),
    (
        "config-2024-09-27.wit",
        include_str!("../../wit/deps/config-2024-09-27.wit"),
    ),
    ("logging.wit", include_str!("../../wit/deps/logging.wit")),
    (
        "logging-unversioned.wit",
        include_str!("../../wit/deps/logging-unversioned.wit"),
    ),
    ("spin.wit", include_str!("../../wit/deps/spin.wit")),
];

/// The packages of interfaces a component shares with other services
/// (everything it imports or exports but Hive's own and WASI), by name
/// with version (`shop:users@0.1.0`), as WIT text.
pub fn shared_packages(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    let decoded = wit_component::decode(bytes).context("reading the component's WIT")?;
    let DecodedWasm::Component(resolve, world) = decoded else {
        bail!("it is a WIT package, not a component");
    };
    let own = resolve.worlds[world].package;
    let mut packages = BTreeMap::new();
    for (id, package) in resolve.packages.iter() {
        let name = &package.name;
        let host_served = matches!(name.namespace.as_str(), "wasi" | "hive" | "fermyon");
        if Some(id) == own || host_served {
            continue;
        }
        let mut printer = WitPrinter::default();
        printer
            .print(&resolve, id, &[])
            .with_context(|| format!("printing {name}"))?;
        packages.insert(name.to_string(), String::from(printer.output));
    }
    Ok(packages)
}

/// The shared packages of every `.wasm` in `dir`; a file that cannot be
/// read is logged and skipped.
pub fn shared_packages_in(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut packages = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading the folder {}", dir.display()))?;
    let mut files: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    files.sort();
    for file in files {
        let read = std::fs::read(&file)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| shared_packages(&bytes));
        match read {
            Ok(found) => packages.extend(found),
            Err(err) => tracing::warn!(
                "skipping {}: {err:#}",
                file.file_name().unwrap_or_default().to_string_lossy()
            ),
        }
    }
    Ok(packages)
}

/// A file name for the package `name` (`shop:users@0.1.0` ->
/// `shop-users.wit`).
pub fn file_name(name: &str) -> String {
    let bare = name.split('@').next().unwrap_or(name);
    format!("{}.wit", bare.replace([':', '/'], "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_make_file_names() {
        assert_eq!(file_name("shop:users@0.1.0"), "shop-users.wit");
        assert_eq!(file_name("a:b"), "a-b.wit");
    }

    #[test]
    fn the_built_in_wit_is_the_contract() {
        assert!(HIVE_SERVICE.contains("package hive:service@0.1.0;"));
        assert!(
            DEPS.iter()
                .any(|(_, text)| text.contains("package wasi:http@0.2.12;"))
        );
    }
}
