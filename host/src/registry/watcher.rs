//! Hot deploy: watches the services folder and refreshes the registry when a
//! `.wasm` or manifest appears, changes or disappears.
//!
//! Events are taken in batches: a refresh starts only after the folder has
//! been quiet for [`QUIET_PERIOD`], so a file being copied in chunks is not
//! read mid-copy. A file that is still incomplete fails validation and is
//! skipped (the previous version keeps serving); the next write retries it.
//! Writing under a temporary name and renaming into place avoids even that.
//! Compiling runs on the blocking pool, never on a request's thread.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::Registry;
use super::folder::watched_name;
use crate::fswatch::{self, Watching};

/// How long the folder must be quiet before changes are applied.
pub const QUIET_PERIOD: Duration = Duration::from_millis(200);

/// Starts watching `registry`'s services folder. Must be called inside a
/// Tokio runtime; watching stops when the result is dropped.
pub fn spawn(registry: Arc<Registry>) -> Result<Watching> {
    let dir = registry.dir().to_path_buf();
    let (watcher, mut events) = fswatch::watch(&dir, false, |_| true)?;
    tracing::info!(
        "watching {} for new, changed and removed services",
        dir.display()
    );
    let task = tokio::spawn(async move {
        while let Some(paths) = fswatch::next_batch(&mut events, QUIET_PERIOD).await {
            let names: BTreeSet<String> = paths.iter().filter_map(|p| watched_name(p)).collect();
            if names.is_empty() {
                continue;
            }
            registry.metrics().folder_refreshed();
            let registry = registry.clone();
            let refreshed = tokio::task::spawn_blocking(move || registry.refresh(&names)).await;
            if let Err(err) = refreshed {
                tracing::error!("applying folder changes failed: {err}");
            }
        }
    });
    Ok(Watching::new(watcher, task))
}

/// Starts watching the host's secrets folder, if it has one: when a secret
/// file appears, changes or goes, every service that names a secret is
/// loaded again (so one waiting for a secret starts serving, and a rotated
/// key takes effect). Watching stops when the result is dropped.
pub fn spawn_secrets(registry: Arc<Registry>) -> Result<Option<Watching>> {
    let Some(dir) = registry.policy().secrets.dir().map(|d| d.to_path_buf()) else {
        return Ok(None);
    };
    let (watcher, mut events) = fswatch::watch(&dir, false, |_| true)?;
    tracing::info!("watching {} for secrets", dir.display());
    let task = tokio::spawn(async move {
        while fswatch::next_batch(&mut events, QUIET_PERIOD)
            .await
            .is_some()
        {
            let registry = registry.clone();
            if let Err(err) = tokio::task::spawn_blocking(move || registry.reload_secrets()).await {
                tracing::error!("reloading after a change of secrets failed: {err}");
            }
        }
    });
    Ok(Some(Watching::new(watcher, task)))
}
