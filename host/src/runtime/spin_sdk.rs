//! Whether a component was built for Spin, so that its `wasi:http`
//! requests get the headers Spin sets (see `http/spin_headers.rs`). Only
//! such a component reads them, and a component that is not pays for each
//! header it is handed: wasi:http guests such as `wstd` copy every request
//! header into their own map (measured: about a tenth of a reused
//! `hello-http`'s throughput, `docs/benchmarks.md`).
//!
//! A component counts as built for Spin when one of its core modules
//! exports a `spin-sdk-*` marker (spin-sdk writes `spin-sdk-version-*` and
//! `spin-sdk-language-*` into every component it builds, whatever the
//! component imports) or when it imports one of Spin's own interfaces
//! (`fermyon:spin/...`, `spin:...`).

use wasmparser::{Parser, Payload};

/// The prefix of spin-sdk's marker exports.
const SDK_MARK: &str = "spin-sdk-";

/// Namespaces of Spin's own interfaces.
const SPIN_NAMESPACES: [&str; 2] = ["fermyon:spin/", "spin:"];

/// Whether the component in `bytes` was built for Spin. A file that does
/// not parse is not (the loader reports why it cannot run).
pub fn built_for_spin(bytes: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::ExportSection(exports)) => {
                if exports
                    .into_iter()
                    .flatten()
                    .any(|export| export.name.starts_with(SDK_MARK))
                {
                    return true;
                }
            }
            Ok(Payload::ComponentImportSection(imports)) => {
                if imports.into_iter().flatten().any(|import| {
                    SPIN_NAMESPACES
                        .iter()
                        .any(|namespace| import.name.name.starts_with(namespace))
                }) {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_export_or_a_spin_import_says_spin() {
        let marked = wat::parse_str(r#"(module (func (export "spin-sdk-version-5-2")))"#).unwrap();
        assert!(built_for_spin(&marked));
        let plain = wat::parse_str(r#"(module (func (export "handle")))"#).unwrap();
        assert!(!built_for_spin(&plain));
        let importing =
            wat::parse_str(r#"(component (import "fermyon:spin/variables@2.0.0" (instance)))"#)
                .unwrap();
        assert!(built_for_spin(&importing));
        let standard =
            wat::parse_str(r#"(component (import "wasi:http/types@0.2.0" (instance)))"#).unwrap();
        assert!(!built_for_spin(&standard));
        assert!(!built_for_spin(b"not wasm"));
    }
}
