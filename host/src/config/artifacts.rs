//! What a host accepts as a component, from any source (an admin upload,
//! a cluster record in Redis, a rollback): the largest `.wasm` and manifest,
//! the WebAssembly magic, and the manifest check a load would make, so the
//! same file is judged the same way whichever door it came through.

use anyhow::{Context, Result};

use super::limits::Limits;
use super::manifest::Manifest;

/// Largest `.wasm` a host accepts.
pub const MAX_WASM_BYTES: u64 = 256 << 20;

/// Largest manifest a host accepts.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The first bytes of every WebAssembly file.
pub const WASM_MAGIC: &[u8] = b"\0asm";

/// Parses `text` as a manifest and applies its `[limits]` over
/// `host_limits`, as loading the service would: a manifest that passes
/// here fails a load only for reasons of its `.wasm` (routes taken, a
/// world that does not fit).
pub fn check_manifest(text: &str, host_limits: &Limits) -> Result<Manifest> {
    anyhow::ensure!(
        text.len() as u64 <= MAX_MANIFEST_BYTES,
        "the manifest is over the limit of {MAX_MANIFEST_BYTES} bytes"
    );
    let manifest = Manifest::parse(text)?;
    manifest
        .limits
        .apply(host_limits)
        .context("invalid [limits]")?;
    Ok(manifest)
}

/// Checks that `bytes` can be a component: within the size limit and
/// starting with the WebAssembly magic.
pub fn check_wasm(bytes: &[u8]) -> Result<()> {
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_WASM_BYTES,
        "the .wasm is over the limit of {MAX_WASM_BYTES} bytes"
    );
    anyhow::ensure!(
        bytes.starts_with(WASM_MAGIC),
        "it is not a WebAssembly file"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_checked_with_their_limits() {
        let limits = Limits::default();
        assert!(check_manifest("routes = [\"/a\"]", &limits).is_ok());
        let err = check_manifest("[limits]\nmemory-mib = 999999999", &limits).unwrap_err();
        assert!(format!("{err:#}").contains("memory-mib"), "{err:#}");
        assert!(check_manifest("route = 1", &limits).is_err());
    }

    #[test]
    fn wasm_must_start_with_the_magic() {
        assert!(check_wasm(b"\0asm\x0d\0\x01\0").is_ok());
        assert!(check_wasm(b"MZ").is_err());
    }
}
