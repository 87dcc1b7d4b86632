//! The standard interfaces Hive serves so that components written for
//! other hosts run unchanged, version by version: one list that the loader
//! checks imports against (an unserved version is refused with the
//! versions Hive does serve) and that `hive inspect` reports from.

/// Packages whose interfaces this catalog speaks for: an import from one
/// of them is served only if listed in [`SERVED`].
const PACKAGES: &[&str] = &[
    "wasi:keyvalue",
    "wasi:config",
    "wasi:logging",
    "fermyon:spin",
];

/// Each served interface (`package/interface`) and its versions (`""`:
/// the unversioned name).
pub const SERVED: &[(&str, &[&str])] = &[
    ("wasi:keyvalue/store", &["0.2.0-draft", "0.2.0-draft2"]),
    ("wasi:keyvalue/atomics", &["0.2.0-draft", "0.2.0-draft2"]),
    ("wasi:keyvalue/batch", &["0.2.0-draft", "0.2.0-draft2"]),
    (
        "wasi:config/store",
        &["0.2.0-rc.1", "0.2.0-draft", "0.2.0-draft-2024-09-27"],
    ),
    ("wasi:config/runtime", &["0.2.0-draft"]),
    ("wasi:logging/logging", &["0.1.0-draft", ""]),
    ("fermyon:spin/key-value", &["2.0.0"]),
    ("fermyon:spin/variables", &["2.0.0"]),
];

/// Whether `import` (a full interface name) belongs to a package this
/// catalog speaks for.
pub fn is_standard(import: &str) -> bool {
    let package = import.split('/').next().unwrap_or(import);
    PACKAGES.contains(&package)
}

/// Why Hive cannot serve `import`, if it is a standard interface in a
/// version (or an interface of a known package) it does not serve.
pub fn unserved(import: &str) -> Option<String> {
    if !is_standard(import) {
        return None;
    }
    let (interface, version) = import.split_once('@').unwrap_or((import, ""));
    match SERVED.iter().find(|(name, _)| *name == interface) {
        Some((_, versions)) if versions.contains(&version) => None,
        Some((_, versions)) => Some(format!(
            "it imports `{import}`, a version Hive does not serve; Hive serves {interface} at {}",
            versions
                .iter()
                .map(|v| if v.is_empty() { "(unversioned)" } else { v })
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => {
            let package = interface.split('/').next().unwrap_or(interface);
            let served: Vec<String> = SERVED
                .iter()
                .filter(|(name, _)| name.starts_with(&format!("{package}/")))
                .map(|(name, versions)| format!("{name} ({})", versions.join(", ")))
                .collect();
            Some(format!(
                "it imports `{import}`, which Hive does not serve; of {package} it serves {}",
                served.join("; ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_versions_pass_and_others_are_named() {
        assert_eq!(unserved("wasi:keyvalue/store@0.2.0-draft2"), None);
        assert_eq!(unserved("wasi:logging/logging"), None);
        assert_eq!(unserved("wasi:http/types@0.2.6"), None);
        let refusal = unserved("wasi:keyvalue/store@0.1.0").unwrap();
        assert!(refusal.contains("wasi:keyvalue/store@0.1.0"), "{refusal}");
        assert!(refusal.contains("0.2.0-draft, 0.2.0-draft2"), "{refusal}");
        let refusal = unserved("fermyon:spin/sqlite@2.0.0").unwrap();
        assert!(
            refusal.contains("fermyon:spin/key-value (2.0.0)"),
            "{refusal}"
        );
    }
}
