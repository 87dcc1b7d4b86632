//! The last few versions of each component, kept beside the services
//! folder in `.versions/<name>/` (`<digest>.wasm`, `<manifest digest>.toml`
//! and a `history.json`), so a bad deploy can be undone without the old
//! files at hand. A version is a `.wasm` with its manifest: a change to
//! either is a new version. It is kept when it starts serving; the oldest
//! beyond [`KEEP`] is deleted. Keeping is best effort: a read-only folder
//! only means no rollback, never a failed deploy.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::digest::hex_digest;
use crate::runtime::service::Service;

/// Versions kept per component: the one serving and three before it.
pub const KEEP: usize = 4;

/// A version that mixes the one before it with the one after it, and was
/// replaced within this many milliseconds, is not kept: it is half of one
/// deploy (a manifest and a `.wasm` written one after the other, which the
/// folder watcher can load in between), not a version anyone chose.
const IN_PASSING_MS: u64 = 1000;

/// The folder inside the services folder; hidden, so neither the watcher
/// nor the folder scan takes it for a service.
const FOLDER: &str = ".versions";

/// One kept version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    /// SHA-256 of its `.wasm`.
    pub digest: String,
    /// SHA-256 of its manifest, if it had one.
    pub manifest_digest: Option<String>,
    /// When it first served, Unix milliseconds.
    pub first_served_ms: u64,
    /// When it last started serving (a rollback serves it again), Unix
    /// milliseconds.
    pub served_at_ms: u64,
}

impl Version {
    fn is(&self, digest: &str, manifest_digest: Option<&str>) -> bool {
        self.digest == digest && self.manifest_digest.as_deref() == manifest_digest
    }
}

/// The identity of the version `service` serves: its `.wasm` digest and its
/// manifest's.
pub fn identity(service: &Service) -> (String, Option<String>) {
    let manifest = service.source.manifest_text.as_deref();
    (
        service.digest().to_string(),
        manifest.map(|text| hex_digest(text.as_bytes())),
    )
}

/// A component's kept version, read back for a rollback.
pub struct Stored {
    /// Which version.
    pub version: Version,
    /// Its `.wasm`.
    pub wasm: Vec<u8>,
    /// Its manifest text, if it had one.
    pub manifest: Option<String>,
}

/// The kept versions of every component in one services folder.
pub struct Versions {
    root: PathBuf,
}

impl Versions {
    /// The store for the services folder `dir`.
    pub fn new(dir: &Path) -> Versions {
        Versions {
            root: dir.join(FOLDER),
        }
    }

    fn folder(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Keeps the version `service` serves, logging (not failing) when it
    /// cannot. Blocking.
    pub fn keep(&self, service: &Service) {
        if let Err(err) = self.try_keep(service) {
            tracing::warn!(
                component = %service.name(),
                "cannot keep this version of {} for rollback: {err:#}",
                service.file_name()
            );
        }
    }

    fn try_keep(&self, service: &Service) -> Result<()> {
        let (digest, manifest_digest) = identity(service);
        let folder = self.folder(service.name());
        fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        let wasm = folder.join(format!("{digest}.wasm"));
        if !wasm.is_file() {
            let bytes = fs::read(&service.source.wasm_path)
                .with_context(|| format!("reading {}", service.source.wasm_path.display()))?;
            // The file may already have been replaced by the next version,
            // which is kept when it serves; this one is gone.
            if hex_digest(&bytes) != digest {
                return Ok(());
            }
            write_atomically(&wasm, &bytes)?;
        }
        if let (Some(text), Some(manifest)) = (&service.source.manifest_text, &manifest_digest) {
            let path = folder.join(format!("{manifest}.toml"));
            if !path.is_file() {
                write_atomically(&path, text.as_bytes())?;
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let mut history = self.list(service.name());
        let mut dropped = Vec::new();
        if let Some(head) = history.first()
            && is_half_of_a_deploy(
                head,
                history.get(1),
                (&digest, manifest_digest.as_deref()),
                now,
            )
        {
            dropped.push(history.remove(0));
        }
        let first_served_ms = history
            .iter()
            .find(|v| v.is(&digest, manifest_digest.as_deref()))
            .map_or(now, |v| v.first_served_ms);
        history.retain(|v| !v.is(&digest, manifest_digest.as_deref()));
        history.insert(
            0,
            Version {
                digest,
                manifest_digest,
                first_served_ms,
                served_at_ms: now,
            },
        );
        dropped.extend(history.split_off(KEEP.min(history.len())));
        let json = serde_json::to_vec_pretty(&history)?;
        write_atomically(&folder.join("history.json"), &json)?;
        // Files no kept version uses any more.
        for old in dropped {
            if !history.iter().any(|v| v.digest == old.digest) {
                remove_if_present(&folder.join(format!("{}.wasm", old.digest)))?;
            }
            if let Some(manifest) = &old.manifest_digest
                && !history
                    .iter()
                    .any(|v| v.manifest_digest.as_ref() == Some(manifest))
            {
                remove_if_present(&folder.join(format!("{manifest}.toml")))?;
            }
        }
        Ok(())
    }

    /// `name`'s kept versions, newest first (the serving one, normally,
    /// then those before it).
    pub fn list(&self, name: &str) -> Vec<Version> {
        let path = self.folder(name).join("history.json");
        fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Reads the kept version of `name` to roll back to: the newest one
    /// whose digest starts with `to` (other than the one serving, if it has
    /// another), or else the newest one other than `current`.
    pub fn pick(
        &self,
        name: &str,
        current: Option<(String, Option<String>)>,
        to: Option<&str>,
    ) -> Result<Stored> {
        let history = self.list(name);
        if history.is_empty() {
            bail!("no versions of {name} are kept");
        }
        let is_current = |v: &Version| {
            current
                .as_ref()
                .is_some_and(|(digest, manifest)| v.is(digest, manifest.as_deref()))
        };
        let version = match to {
            Some(prefix) => {
                let prefix = prefix.to_ascii_lowercase();
                let matching: Vec<&Version> = history
                    .iter()
                    .filter(|v| v.digest.starts_with(&prefix))
                    .collect();
                let digests: std::collections::BTreeSet<&str> =
                    matching.iter().map(|v| v.digest.as_str()).collect();
                if digests.len() > 1 {
                    bail!("{prefix:?} matches several versions of {name}; give more digits");
                }
                match matching
                    .iter()
                    .find(|v| !is_current(v))
                    .or(matching.first())
                {
                    Some(version) => (*version).clone(),
                    None => bail!(
                        "no kept version of {name} has a digest starting with {prefix:?} \
                         (kept: {})",
                        short_list(&history)
                    ),
                }
            }
            None => match history.iter().find(|v| !is_current(v)) {
                Some(version) => version.clone(),
                None => bail!("no version of {name} before the one serving is kept"),
            },
        };
        let folder = self.folder(name);
        let wasm_path = folder.join(format!("{}.wasm", version.digest));
        let wasm = fs::read(&wasm_path)
            .with_context(|| format!("reading the kept {}", wasm_path.display()))?;
        if hex_digest(&wasm) != version.digest {
            bail!("the kept {} is damaged", wasm_path.display());
        }
        let manifest = match &version.manifest_digest {
            Some(manifest) => {
                let path = folder.join(format!("{manifest}.toml"));
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("reading the kept {}", path.display()))?;
                if &hex_digest(text.as_bytes()) != manifest {
                    bail!("the kept {} is damaged", path.display());
                }
                Some(text)
            }
            None => None,
        };
        Ok(Stored {
            version,
            wasm,
            manifest,
        })
    }
}

/// Whether `head`, about to be replaced by `next` (wasm and manifest
/// digests) at `now`, was only the first half of that deploy: new less than
/// a second ago, and made of one part of the version `before` it and the
/// other part of `next`. Two deliberate deploys in quick succession change
/// the `.wasm` both times, so both are kept.
fn is_half_of_a_deploy(
    head: &Version,
    before: Option<&Version>,
    next: (&str, Option<&str>),
    now: u64,
) -> bool {
    let (next_wasm, next_manifest) = next;
    let before_wasm = before.map(|v| v.digest.as_str());
    let before_manifest = before.and_then(|v| v.manifest_digest.as_deref());
    let head_manifest = head.manifest_digest.as_deref();
    let mixed = (head.digest == next_wasm && head_manifest == before_manifest)
        || (Some(head.digest.as_str()) == before_wasm && head_manifest == next_manifest);
    !head.is(next_wasm, next_manifest)
        && mixed
        && now.saturating_sub(head.first_served_ms) < IN_PASSING_MS
}

fn short_list(history: &[Version]) -> String {
    history
        .iter()
        .map(|v| crate::digest::short(&v.digest))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `bytes` under a hidden name beside `path`, then renames it into
/// place, so no reader ever sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    fs::write(&temporary, bytes).with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| {
        let _ = fs::remove_file(&temporary);
        format!("renaming into {}", path.display())
    })
}

/// Removes `path`; a file already gone is fine.
pub fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(wasm: &str, manifest: Option<&str>, first_served_ms: u64) -> Version {
        Version {
            digest: wasm.into(),
            manifest_digest: manifest.map(Into::into),
            first_served_ms,
            served_at_ms: first_served_ms,
        }
    }

    #[test]
    fn a_new_manifest_loaded_before_its_wasm_is_half_of_a_deploy() {
        let before = version("w1", Some("m1"), 0);
        let head = version("w1", Some("m2"), 10_000);
        assert!(is_half_of_a_deploy(
            &head,
            Some(&before),
            ("w2", Some("m2")),
            10_200
        ));
        // The same pair a second later was served on its own: kept.
        assert!(!is_half_of_a_deploy(
            &head,
            Some(&before),
            ("w2", Some("m2")),
            11_200
        ));
    }

    #[test]
    fn a_wasm_loaded_before_its_manifest_is_half_of_a_deploy() {
        let before = version("w1", Some("m1"), 0);
        let head = version("w2", Some("m1"), 10_000);
        assert!(is_half_of_a_deploy(
            &head,
            Some(&before),
            ("w2", Some("m2")),
            10_200
        ));
        // A first deploy whose manifest follows its wasm.
        let head = version("w1", None, 10_000);
        assert!(is_half_of_a_deploy(&head, None, ("w1", Some("m1")), 10_200));
    }

    #[test]
    fn two_deploys_in_quick_succession_are_both_kept() {
        let head = version("w1", Some("m1"), 10_000);
        assert!(!is_half_of_a_deploy(
            &head,
            None,
            ("w2", Some("m1")),
            10_200
        ));
        let before = version("w0", Some("m1"), 0);
        assert!(!is_half_of_a_deploy(
            &head,
            Some(&before),
            ("w2", Some("m1")),
            10_200
        ));
        // Serving the same version again is not a replacement.
        assert!(!is_half_of_a_deploy(
            &head,
            None,
            ("w1", Some("m1")),
            10_200
        ));
    }
}
