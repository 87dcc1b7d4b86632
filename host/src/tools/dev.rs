//! `hive dev`: the edit, save, curl loop. Watches the component crates'
//! sources, rebuilds them into the services folder when they change, and
//! lets the folder watcher deploy the result.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use super::build::build_components;
use crate::fswatch::{self, Watching};

/// How long sources must be quiet before a rebuild (editors save in bursts).
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

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
pub fn spawn(components: &Path, out_dir: &Path) -> Result<Watching> {
    let (watcher, mut events) = fswatch::watch(components, true, is_source)?;
    tracing::info!(
        "dev mode: rebuilding {} into {} on every change",
        components.display(),
        out_dir.display()
    );
    let (components, out_dir) = (components.to_path_buf(), out_dir.to_path_buf());
    let task = tokio::spawn(async move {
        while let Some(changed) = fswatch::next_batch(&mut events, QUIET_PERIOD).await {
            rebuild(
                &components,
                &out_dir,
                &changed.into_iter().collect::<Vec<_>>(),
            )
            .await;
            // Our own build touches the workspace (Cargo.lock, ...): drop the
            // events it caused so one save means one rebuild.
            fswatch::drain(&mut events);
        }
    });
    Ok(Watching::new(watcher, task))
}

async fn rebuild(components: &Path, out_dir: &Path, changed: &[PathBuf]) {
    let shown: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
    tracing::info!("sources changed ({}); rebuilding", shown.join(", "));
    let (components, out_dir) = (components.to_path_buf(), out_dir.to_path_buf());
    let built = tokio::task::spawn_blocking(move || build_components(&components, &out_dir)).await;
    match built {
        Ok(Ok(built)) => tracing::info!("rebuilt {} component(s)", built.len()),
        Ok(Err(err)) => {
            tracing::error!("rebuild failed; still serving the last good build: {err:#}")
        }
        Err(err) => tracing::error!("rebuild task failed: {err}"),
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
