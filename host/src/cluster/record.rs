//! One component as the cluster records it, and the checks a record and
//! its `.wasm` must pass before a host acts on them. Anything that can
//! write to Redis could have written the record, so it is input like an
//! admin upload: the same name rules, the same manifest check a load
//! makes, and a blob that must hash to the digest its record names.

use serde::{Deserialize, Serialize};

use crate::config::{Limits, check_manifest, check_wasm, name_problem};
use crate::digest::hex_digest;

/// One deployed component as the cluster records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// SHA-256 of its `.wasm`, when one was deployed.
    pub digest: Option<String>,
    /// Its manifest's text, when it has one.
    pub manifest: Option<String>,
}

/// A record that failed its checks, and why: the host leaves that
/// component as it is and says so once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// The record's name, escaped for the log (it may be anything).
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks the record stored as `name` with the JSON text `raw`, against the
/// host's limits (which a manifest's `[limits]` must fit, as at load).
pub fn check(name: &str, raw: &str, host_limits: &Limits) -> Result<Record, String> {
    if let Some(problem) = name_problem(name) {
        return Err(problem);
    }
    let record: Record =
        serde_json::from_str(raw).map_err(|err| format!("the record is not readable: {err}"))?;
    if let Some(digest) = &record.digest
        && !is_digest(digest)
    {
        return Err(format!(
            "the digest {:?} is not a SHA-256 in hex",
            crate::logging::escape(digest)
        ));
    }
    if let Some(text) = &record.manifest {
        check_manifest(text, host_limits).map_err(|err| format!("invalid manifest: {err:#}"))?;
    }
    Ok(record)
}

/// Checks a `.wasm` fetched for `digest`: a WebAssembly file within the
/// size limit whose SHA-256 is exactly `digest`.
pub fn check_blob(digest: &str, bytes: &[u8]) -> Result<(), String> {
    check_wasm(bytes).map_err(|err| format!("its .wasm: {err:#}"))?;
    let actual = hex_digest(bytes);
    if actual != digest {
        return Err(format!(
            "its .wasm hashes to {actual}, not to the digest {digest} the record names"
        ));
    }
    Ok(())
}

/// 64 lower-case hex digits, as [`hex_digest`] writes them.
pub fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        let limits = Limits::default();
        for name in ["../p7esc", "/etc/passwd", "nodir/x", "..", "", ".hidden"] {
            assert!(check(name, "{}", &limits).is_err(), "{name:?} accepted");
        }
        assert!(check("hello", "{}", &limits).is_ok());
    }

    #[test]
    fn unreadable_records_bad_digests_and_bad_manifests_are_refused() {
        let limits = Limits::default();
        assert!(check("a", "not json", &limits).is_err());
        assert!(check("a", r#"{"digest":"../../x"}"#, &limits).is_err());
        assert!(check("a", r#"{"digest":"ABC"}"#, &limits).is_err());
        let absurd = r#"{"manifest":"[limits]\nconcurrency = 99999999999"}"#;
        assert!(
            check("a", absurd, &limits)
                .unwrap_err()
                .contains("concurrency")
        );
        let good = format!(
            r#"{{"digest":"{}","manifest":"routes = []"}}"#,
            hex_digest(WASM)
        );
        assert!(check("a", &good, &limits).is_ok());
    }

    #[test]
    fn a_blob_must_hash_to_its_digest() {
        assert!(check_blob(&hex_digest(WASM), WASM).is_ok());
        let zeros = "0".repeat(64);
        assert!(check_blob(&zeros, WASM).unwrap_err().contains("hashes to"));
        assert!(check_blob(&hex_digest(b"MZ"), b"MZ").is_err());
    }
}
