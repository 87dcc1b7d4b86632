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
