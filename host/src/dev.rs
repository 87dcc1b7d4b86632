//! `hive dev`: the edit, save, curl loop. Watches the component crates'
//! sources, rebuilds them into the services folder when they change, and
//! lets the folder watcher deploy the result.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::builder::build_components;

/// How long sources must be quiet before a rebuild (editors save in bursts).
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// A running source watcher; stops when dropped.
pub struct SourceWatcher {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for SourceWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a changed path should trigger a rebuild: anything in the
/// workspace except build output, VCS data and editor droppings.
fn is_source(path: &Path) -> bool {
    let ignored_dir = path.components().any(|part| match part {
        Component::Normal(name) => name == "target" || name == ".git",
        _ => false,
    });
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let editor_file = name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp");
    !ignored_dir && !editor_file
}

/// Watches `components` and rebuilds into `out_dir` on every change. Must be
/// called inside a Tokio runtime.
pub fn spawn(components: &Path, out_dir: &Path) -> Result<SourceWatcher> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            for path in event.paths.into_iter().filter(|p| is_source(p)) {
                let _ = tx.send(path);
            }
        }
    })
    .context("starting the source watcher")?;
    watcher
        .watch(components, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", components.display()))?;
    tracing::info!(
        "dev mode: rebuilding {} into {} on every change",
        components.display(),
        out_dir.display()
    );
    let task = tokio::spawn(rebuild_on_change(
        components.to_path_buf(),
        out_dir.to_path_buf(),
        rx,
    ));
    Ok(SourceWatcher {
        _watcher: watcher,
        task,
    })
}

async fn rebuild_on_change(
    components: PathBuf,
    out_dir: PathBuf,
    mut events: mpsc::UnboundedReceiver<PathBuf>,
) {
    while let Some(first) = events.recv().await {
        let mut changed = BTreeSet::from([first]);
        loop {
            match tokio::time::timeout(QUIET_PERIOD, events.recv()).await {
                Ok(Some(path)) => {
                    changed.insert(path);
                }
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        let shown: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
        tracing::info!("sources changed ({}); rebuilding", shown.join(", "));
        let (components, out_dir) = (components.clone(), out_dir.clone());
        let built =
            tokio::task::spawn_blocking(move || build_components(&components, &out_dir)).await;
        match built {
            Ok(Ok(built)) => tracing::info!("rebuilt {} component(s)", built.len()),
            Ok(Err(err)) => {
                tracing::error!("rebuild failed; still serving the last good build: {err:#}")
            }
            Err(err) => tracing::error!("rebuild task failed: {err}"),
        }
        // Our own build touches the workspace (Cargo.lock, ...): drop the
        // events it caused so one save means one rebuild.
        while events.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::is_source;
    use std::path::Path;

    #[test]
    fn build_output_and_editor_files_are_ignored() {
        assert!(is_source(Path::new("components/hello/src/lib.rs")));
        assert!(is_source(Path::new("components/hello/service.toml")));
        assert!(!is_source(Path::new("components/target/release/x.wasm")));
        assert!(!is_source(Path::new("components/hello/src/.lib.rs.swp")));
        assert!(!is_source(Path::new("components/hello/src/lib.rs~")));
    }
}
