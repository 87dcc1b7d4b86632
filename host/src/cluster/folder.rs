//! Bringing one host's services folder to the cluster's set: write each
//! component whose file differs (manifest first, then the `.wasm`, each
//! under a hidden name and renamed into place, so the folder watcher sees
//! whole files), and remove what the cluster no longer has.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::{Cluster, Record};
use crate::digest::file_digest;

/// Reconciles `dir` to `records`; returns how many files it wrote or
/// removed.
pub async fn reconcile(
    cluster: &Cluster,
    dir: &Path,
    records: &BTreeMap<String, Record>,
) -> Result<usize> {
    let mut changed = 0;
    for (name, record) in records {
        let manifest = dir.join(format!("{name}.toml"));
        let current = tokio::fs::read_to_string(&manifest).await.ok();
        if current != record.manifest {
            match &record.manifest {
                Some(text) => write_atomically(&manifest, text.as_bytes()).await?,
                None => remove(&manifest).await?,
            }
            changed += 1;
        }
        let wasm = dir.join(format!("{name}.wasm"));
        let local = file_digest(&wasm);
        if let Some(digest) = &record.digest
            && local.as_deref() != Some(digest.as_str())
        {
            let bytes = cluster.wasm(digest).await?;
            write_atomically(&wasm, &bytes).await?;
            changed += 1;
        }
    }
    // What the cluster does not have goes.
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .with_context(|| format!("reading {}", dir.display()))?;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        let Some(name) = crate::registry::folder::watched_name(&path) else {
            continue;
        };
        let known = records.get(&name);
        let is_wasm = path.extension().is_some_and(|ext| ext == "wasm");
        let keep = match known {
            Some(record) if is_wasm => record.digest.is_some(),
            Some(record) => record.manifest.is_some(),
            None => false,
        };
        if !keep {
            tracing::info!(component = %name, "removing {} (not in the cluster)", path.file_name().unwrap_or_default().to_string_lossy());
            remove(&path).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
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
