//! Bringing one host's services folder to the cluster's set: write each
//! component whose files differ (its `.wasm` fetched and checked against
//! its digest first, then the manifest, then the `.wasm`, each under a
//! hidden name and renamed into place, so the folder watcher sees whole
//! files), and take away what the cluster no longer has.
//!
//! A component whose record or blob is bad is left exactly as it is: its
//! last good version keeps serving and the rest of the folder still
//! follows the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::record::{BadRecord, Record, check_blob};
use crate::config::{Limits, check_manifest, check_wasm, display_name};
use crate::digest::{file_digest, hex_digest};

/// Where a folder's services that a joining host's cluster does not have
/// are moved, so joining never deletes anything.
pub const SET_ASIDE: &str = ".before-cluster";

/// What to do with a local service the cluster does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strays {
    /// It was removed from the cluster: remove it here too.
    Remove,
    /// This host is joining: move it to [`SET_ASIDE`].
    SetAside,
}

/// What a reconcile did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files written or removed.
    pub changed: usize,
    /// Components left as they were, with why.
    pub bad: Vec<BadRecord>,
    /// Components moved to [`SET_ASIDE`].
    pub set_aside: Vec<String>,
}

/// Fetches a blob by digest: `Ok(None)` when Redis does not have it.
pub trait Blobs {
    /// The `.wasm` with `digest`.
    fn blob(&self, digest: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
}

/// Reconciles `dir` to `records`, leaving the components named in `leave`
/// (whose records are bad) untouched.
pub async fn reconcile(
    blobs: &impl Blobs,
    dir: &Path,
    records: &BTreeMap<String, Record>,
    leave: &BTreeSet<String>,
    strays: Strays,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for (name, record) in records {
        let wasm = dir.join(format!("{name}.wasm"));
        let fetched = match &record.digest {
            Some(digest) if file_digest(&wasm).as_deref() != Some(digest.as_str()) => {
                match blobs.blob(digest).await? {
                    None => {
                        outcome.bad.push(BadRecord {
                            name: name.clone(),
                            reason: format!("the cluster has no .wasm with digest {digest}"),
                        });
                        continue;
                    }
                    Some(bytes) => {
                        if let Err(reason) = check_blob(digest, &bytes) {
                            outcome.bad.push(BadRecord {
                                name: name.clone(),
                                reason,
                            });
                            continue;
                        }
                        Some(bytes)
                    }
                }
            }
            _ => None,
        };
        let manifest = dir.join(format!("{name}.toml"));
        let current = tokio::fs::read_to_string(&manifest).await.ok();
        if current != record.manifest {
            match &record.manifest {
                Some(text) => write_atomically(&manifest, text.as_bytes()).await?,
                None => remove(&manifest).await?,
            }
            outcome.changed += 1;
        }
        if let Some(bytes) = fetched {
            write_atomically(&wasm, &bytes).await?;
            outcome.changed += 1;
        }
    }
    // What the cluster does not have goes (or, for a joining host, is set
    // aside).
    for (name, paths) in local_files(dir)? {
        if leave.contains(&name) {
            continue;
        }
        let known = records.get(&name);
        for path in paths {
            let is_wasm = path.extension().is_some_and(|ext| ext == "wasm");
            let keep = match known {
                Some(record) if is_wasm => record.digest.is_some(),
                Some(record) => record.manifest.is_some(),
                None => false,
            };
            if keep {
                continue;
            }
            match strays {
                Strays::Remove => {
                    tracing::info!(component = %name, "removing {} (not in the cluster)", display_name(&path));
                    remove(&path).await?;
                }
                Strays::SetAside => {
                    set_aside(dir, &path).await?;
                    if !outcome.set_aside.contains(&name) {
                        outcome.set_aside.push(name.clone());
                    }
                }
            }
            outcome.changed += 1;
        }
    }
    Ok(outcome)
}

/// A service found in the folder, checked as an upload would be.
pub struct Local {
    /// Its name.
    pub name: String,
    /// Its `.wasm`.
    pub wasm: Vec<u8>,
    /// The `.wasm`'s SHA-256.
    pub digest: String,
    /// Its manifest's text, if it has one.
    pub manifest: Option<String>,
}

/// The services in `dir` that could be published, and those that could
/// not (with why), for starting or adopting a cluster from this folder.
pub fn publishable(dir: &Path, host_limits: &Limits) -> Result<(Vec<Local>, Vec<BadRecord>)> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (name, paths) in local_files(dir)? {
        let wasm_path = dir.join(format!("{name}.wasm"));
        if !paths.contains(&wasm_path) {
            continue; // a manifest alone is not a service
        }
        let checked = (|| -> Result<Local> {
            let wasm = std::fs::read(&wasm_path)
                .with_context(|| format!("reading {}", display_name(&wasm_path)))?;
            check_wasm(&wasm)?;
            let manifest_path = wasm_path.with_extension("toml");
            let manifest = match std::fs::read_to_string(&manifest_path) {
                Ok(text) => {
                    check_manifest(&text, host_limits)
                        .with_context(|| format!("in {}", display_name(&manifest_path)))?;
                    Some(text)
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => return Err(err).context("reading its manifest"),
            };
            Ok(Local {
                digest: hex_digest(&wasm),
                name: name.clone(),
                wasm,
                manifest,
            })
        })();
        match checked {
            Ok(local) => good.push(local),
            Err(err) => bad.push(BadRecord {
                name,
                reason: format!("{err:#}"),
            }),
        }
    }
    Ok((good, bad))
}

/// Each service name in `dir` with its `.wasm` and manifest paths.
fn local_files(dir: &Path) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut found: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if let Some(name) = crate::registry::folder::watched_name(&path) {
            found.entry(name).or_default().push(path);
        }
    }
    Ok(found)
}

/// Moves the service `name`'s files into `dir`'s [`SET_ASIDE`] folder.
pub async fn set_aside_service(dir: &Path, name: &str) -> Result<()> {
    for extension in ["wasm", "toml"] {
        let path = dir.join(format!("{name}.{extension}"));
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            set_aside(dir, &path).await?;
        }
    }
    Ok(())
}

/// Moves `path` into `dir`'s [`SET_ASIDE`] folder.
async fn set_aside(dir: &Path, path: &Path) -> Result<()> {
    let aside = dir.join(SET_ASIDE);
    tokio::fs::create_dir_all(&aside)
        .await
        .with_context(|| format!("creating {}", aside.display()))?;
    let target = aside.join(path.file_name().unwrap_or_default());
    tokio::fs::rename(path, &target)
        .await
        .with_context(|| format!("moving {} aside", display_name(path)))
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = display_name(path);
    let temporary =
        path.with_file_name(format!(".{name}.{}.cluster", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&temporary, bytes)
        .await
        .with_context(|| format!("writing {}", temporary.display()))?;
    tokio::fs::rename(&temporary, path)
        .await
        .with_context(|| format!("renaming into {}", path.display()))
}

async fn remove(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}
