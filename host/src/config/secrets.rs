//! Secrets: values a service reads like any config value but which never
//! travel. A manifest names a secret (`api-key = { secret = "payments-key" }`)
//! and each host resolves the name itself, from a folder with one file per
//! secret (`--secrets DIR`, the layout of a mounted Kubernetes Secret) or
//! from the environment (`HIVE_SECRET_<NAME>`, the name upper-cased with
//! `-` and `.` as `_`). Only the name is in the manifest, so only the name
//! reaches the admin API, the versions kept for rollback and Redis.

use std::path::{Path, PathBuf};

/// Longest secret name (a Kubernetes Secret key may be up to 253).
pub const MAX_SECRET_NAME: usize = 253;

/// Why `name` cannot name a secret, if it cannot: letters, digits, `-`,
/// `_` and `.`, not starting with `.`, so it is always one file name.
pub fn secret_name_problem(name: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty()
        || name.len() > MAX_SECRET_NAME
        || name.starts_with('.')
        || !name.chars().all(allowed)
    {
        return Some(format!(
            "invalid secret name {:?}: use 1 to {MAX_SECRET_NAME} letters, digits, '-', '_' or '.', \
             not starting with '.'",
            crate::logging::escape(name)
        ));
    }
    None
}

/// The environment variable that may hold the secret `name`.
pub fn env_name(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("HIVE_SECRET_{upper}")
}

/// Where this host finds secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    dir: Option<PathBuf>,
}

impl Secrets {
    /// Secrets in `dir` (one file each), if given, then the environment.
    pub fn new(dir: Option<&Path>) -> Secrets {
        Secrets {
            dir: dir.map(Path::to_path_buf),
        }
    }

    /// The folder of secret files, if there is one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The value of the secret `name`, if this host has it: the file's
    /// contents (one trailing newline dropped, as `echo` and editors leave
    /// one), else the environment variable.
    pub fn resolve(&self, name: &str) -> Option<String> {
        if secret_name_problem(name).is_some() {
            return None;
        }
        if let Some(dir) = &self.dir
            && let Ok(text) = std::fs::read_to_string(dir.join(name))
        {
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            return Some(text.to_string());
        }
        std::env::var(env_name(name)).ok()
    }

    /// Where the host looked for `name`, for a message saying it is missing.
    pub fn where_to_put(&self, name: &str) -> String {
        match &self.dir {
            Some(dir) => format!(
                "a file {name} in {} or the variable {}",
                dir.display(),
                env_name(name)
            ),
            None => format!(
                "the variable {} (or a file in --secrets DIR)",
                env_name(name)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("payments-key"), "s3cr3t\n").unwrap();
        let secrets = Secrets::new(Some(dir.path()));
        assert_eq!(secrets.resolve("payments-key").as_deref(), Some("s3cr3t"));
        assert_eq!(secrets.resolve("absent-in-tests"), None);
        assert_eq!(env_name("payments-key.v2"), "HIVE_SECRET_PAYMENTS_KEY_V2");
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(secret_name_problem(bad).is_some(), "{bad:?}");
            assert_eq!(secrets.resolve(bad), None);
        }
    }
}
