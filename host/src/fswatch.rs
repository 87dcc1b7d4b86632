//! Watching a folder for changes, in batches: both the services folder
//! (hot deploy) and the component sources (`hive dev`) react to a burst of
//! file events once the burst is over, so a file copied in chunks or an
//! editor's save-and-rename is seen as one change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A folder being watched and the task reacting to it; both stop when
/// this is dropped.
pub struct Watching {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Watching {
    /// Keeps `watcher` alive for as long as `task` reacts to its events.
    pub fn new(watcher: RecommendedWatcher, task: JoinHandle<()>) -> Watching {
        Watching {
            _watcher: watcher,
            task,
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Paths reported by a [`watch`], in the order they changed.
pub type Events = mpsc::UnboundedReceiver<PathBuf>;

/// Starts watching `dir` (and, with `recursive`, everything below it),
/// passing on the paths `keep` accepts. Events stop when the returned
/// watcher is dropped.
pub fn watch(
    dir: &Path,
    recursive: bool,
    keep: impl Fn(&Path) -> bool + Send + 'static,
) -> Result<(RecommendedWatcher, Events)> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) if changes(&event.kind) => {
                for path in event.paths.into_iter().filter(|path| keep(path)) {
                    // The receiver only goes away when its task stops.
                    let _ = tx.send(path);
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("watching a folder: {err}"),
        }
    })
    .context("starting a folder watcher")?;
    let mode = if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher
        .watch(dir, mode)
        .with_context(|| format!("watching {}", dir.display()))?;
    Ok((watcher, rx))
}

/// Whether an event of `kind` can change a file's contents or presence:
/// creations, writes, renames, removals, and a writer closing its file.
/// Opening, reading and attribute changes cannot; reacting to them would
/// make every reload (which reads the files) cause the next, forever.
fn changes(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any | EventKind::Other => true,
    }
}

/// Waits for the next change, then collects every path that changes until
/// `quiet` passes without one. `None` once the watcher is gone.
pub async fn next_batch(events: &mut Events, quiet: Duration) -> Option<BTreeSet<PathBuf>> {
    let first = events.recv().await?;
    let mut batch = BTreeSet::from([first]);
    loop {
        match tokio::time::timeout(quiet, events.recv()).await {
            Ok(Some(path)) => {
                batch.insert(path);
            }
            Ok(None) => return None,
            Err(_quiet) => return Some(batch),
        }
    }
}

/// Drops events already queued, e.g. those a rebuild caused itself.
pub fn drain(events: &mut Events) {
    while events.try_recv().is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_file_is_not_a_change() {
        use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read_closed = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let touched = EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any));
        for kind in [open, read_closed, touched] {
            assert!(!changes(&kind), "{kind:?}");
        }
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let write_closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let created = EventKind::Create(CreateKind::File);
        let removed = EventKind::Remove(RemoveKind::File);
        for kind in [written, renamed, write_closed, created, removed] {
            assert!(changes(&kind), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn a_burst_of_events_is_one_batch() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for name in ["a", "b", "a"] {
            tx.send(PathBuf::from(name)).unwrap();
        }
        let batch = next_batch(&mut rx, Duration::from_millis(20))
            .await
            .unwrap();
        assert_eq!(batch.len(), 2);
        drop(tx);
        assert!(
            next_batch(&mut rx, Duration::from_millis(20))
                .await
                .is_none()
        );
    }
}
