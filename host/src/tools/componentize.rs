//! componentize-py, the tool that turns a Python app into a component:
//! pinned to one version and installed on first use into a project-local
//! virtualenv (never into the system Python), the same one
//! `scripts/tools.sh` uses.
//!
//! The virtualenv holds componentize-py and nothing else, and builds run
//! with `VIRTUAL_ENV` pointing at it: otherwise componentize-py falls back
//! to the site-packages of whatever `python3` is on `PATH`, and a missing
//! requirement would go unnoticed on the developer's machine only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// The componentize-py release Hive builds with.
pub const VERSION: &str = "0.25.1";

/// A virtualenv with the pinned componentize-py.
#[derive(Debug, Clone)]
pub struct Componentize {
    venv: PathBuf,
}

impl Componentize {
    /// The tools folder for a components workspace: `$HIVE_TOOLS`, else
    /// `.hive/tools` beside the workspace.
    pub fn tools_dir(workspace: &Path) -> PathBuf {
        match std::env::var_os("HIVE_TOOLS") {
            Some(dir) => PathBuf::from(dir),
            None => workspace
                .parent()
                .unwrap_or(Path::new("."))
                .join(".hive/tools"),
        }
    }

    /// componentize-py in `tools/venv`, installed there first if it is
    /// missing or another version. Blocking; takes about 20 s the first time.
    pub fn ensure(tools: &Path) -> Result<Componentize> {
        let tool = Componentize {
            venv: tools.join("venv"),
        };
        if tool.installed_version().as_deref() == Some(VERSION) {
            return Ok(tool);
        }
        if !tool.venv.join("bin/python").exists() {
            tracing::info!(
                "creating the Python tools virtualenv in {}",
                tool.venv.display()
            );
            std::fs::create_dir_all(tools)
                .with_context(|| format!("creating {}", tools.display()))?;
            let created = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&tool.venv)
                .output()
                .context(
                    "Python services need python3 (with its venv module) to install \
                     componentize-py, and `python3` could not be run",
                )?;
            check(&created, "python3 -m venv")?;
        }
        tracing::info!(
            "installing componentize-py {VERSION} into {}",
            tool.venv.display()
        );
        let installed = tool
            .pip()
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={VERSION}"))
            .output()
            .context("running pip from the tools virtualenv")?;
        check(&installed, "pip install componentize-py")?;
        Ok(tool)
    }

    /// The version installed in the virtualenv, if any.
    fn installed_version(&self) -> Option<String> {
        let output = Command::new(self.venv.join("bin/componentize-py"))
            .arg("--version")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.split_whitespace().last().map(str::to_string)
    }

    /// `componentize-py`, run with the virtualenv as its only site-packages.
    pub fn command(&self) -> Command {
        let mut command = Command::new(self.venv.join("bin/componentize-py"));
        command.env("VIRTUAL_ENV", &self.venv);
        // Its own Rust backtrace would bury the Python traceback that
        // says what is wrong with the app.
        command.env("RUST_BACKTRACE", "0");
        command
    }

    /// `pip` of the virtualenv.
    pub fn pip(&self) -> Command {
        let mut command = Command::new(self.venv.join("bin/python"));
        command.args(["-m", "pip"]);
        command
    }
}

/// Fails with the tool's own last words when `output` says it failed.
pub fn check(output: &Output, what: &str) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let said: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|line| !line.trim().is_empty())
        .collect();
    // A Python traceback is what the user needs: the last one, whole
    // (componentize-py wraps the app's in its own, after a prefix).
    const TRACEBACK: &str = "Traceback (most recent call last)";
    let (start, shown_first) = match said.iter().rposition(|line| line.contains(TRACEBACK)) {
        Some(at) => (
            at,
            said[at]
                .find(TRACEBACK)
                .map_or(said[at], |i| &said[at][i..]),
        ),
        None => {
            let at = said.len().saturating_sub(12);
            (at, said.get(at).copied().unwrap_or_default())
        }
    };
    let end = said[start..]
        .iter()
        .position(|line| line.starts_with("Caused by:"))
        .map_or(said.len(), |end| start + end)
        .min(start + 60);
    let mut shown = vec![shown_first];
    shown.extend(said.get(start + 1..end).unwrap_or_default());
    bail!("`{what}` failed ({}):\n{}", output.status, shown.join("\n"))
}
