//! Hot deploy: watches the services folder and refreshes the registry when a
//! `.wasm` or manifest appears, changes or disappears.
//!
//! Events are debounced per batch: a refresh starts only after the folder
//! has been quiet for [`QUIET_PERIOD`], so a file being copied in chunks is
//! not read mid-copy. A file that is still incomplete fails validation and is
//! skipped (the previous version keeps serving); the next write retries it.
//! Writing under a temporary name and renaming into place avoids even that.
//! Compiling runs on the blocking pool, never on a request's thread.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::host::Host;
use crate::registry::watched_name;

/// How long the folder must be quiet before changes are applied.
pub const QUIET_PERIOD: Duration = Duration::from_millis(200);

/// A running folder watcher; stops when dropped.
pub struct FolderWatcher {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for FolderWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `host`'s services folder. Must be called inside a Tokio
/// runtime.
pub fn spawn(host: Arc<Host>) -> Result<FolderWatcher> {
    let dir = host.registry.dir().to_path_buf();
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) => {
                for path in event.paths {
                    // The receiver only goes away when the host shuts down.
                    let _ = tx.send(path);
                }
            }
            Err(err) => tracing::warn!("watching the services folder: {err}"),
        }
    })
    .context("starting the folder watcher")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    tracing::info!(
        "watching {} for new, changed and removed services",
        dir.display()
    );
    let task = tokio::spawn(apply_changes(host, rx));
    Ok(FolderWatcher {
        _watcher: watcher,
        task,
    })
}

/// Collects event batches and refreshes the services they name.
async fn apply_changes(host: Arc<Host>, mut events: mpsc::UnboundedReceiver<PathBuf>) {
    while let Some(first) = events.recv().await {
        let mut names = BTreeSet::new();
        names.extend(watched_name(&first));
        loop {
            match tokio::time::timeout(QUIET_PERIOD, events.recv()).await {
                Ok(Some(path)) => names.extend(watched_name(&path)),
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        if names.is_empty() {
            continue;
        }
        let host = host.clone();
        let refreshed = tokio::task::spawn_blocking(move || {
            host.registry.refresh(&names);
        })
        .await;
        if let Err(err) = refreshed {
            tracing::error!("applying folder changes failed: {err}");
        }
    }
}
