//! The host config file (`hive serve --config hive.toml`).
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"
//! dir = "deploy"
//!
//! [limits]          # defaults for every service; a manifest may override
//! memory-mib = 64
//! timeout-ms = 10000
//! ```
//!
//! Command-line flags override the file; the same structs define both, so
//! a key and its flag always share a name (`timeout-ms`, `--timeout-ms`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;

use super::limits::LimitsConfig;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// How the host listens and where it finds services.
    #[serde(default)]
    pub server: ServerConfig,
    /// Default limits for every service.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// The `[server]` table; each key is also a `hive serve` flag.
#[derive(Debug, Clone, Default, Deserialize, Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Address to accept HTTP on; port 0 picks a free port [default: 127.0.0.1:8080]
    #[arg(long, env = "HIVE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder of .wasm components (and their .toml manifests) [default: deploy]
    #[arg(long, env = "HIVE_DIR")]
    pub dir: Option<PathBuf>,
    /// Most component instances alive at once, across all services [default: 1000]
    #[arg(long)]
    pub max_instances: Option<u32>,
    /// Time a client has to send its request head, in ms [default: 10000]
    #[arg(long)]
    pub header_read_timeout_ms: Option<u64>,
    /// Largest request head accepted, in KiB; larger gets 431 [default: 64]
    #[arg(long)]
    pub max_header_kib: Option<usize>,
    /// Time open requests get to finish after SIGINT/SIGTERM, in ms [default: 30000]
    #[arg(long)]
    pub shutdown_grace_ms: Option<u64>,
    /// Folder for compiled code reused across restarts [default: .hive/cache]
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Folder for the services' key-value data [default: .hive/data]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address of the admin API and status page; port 0 picks one [default: 127.0.0.1:9080]
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// File holding the admin API's bearer token (or set HIVE_ADMIN_TOKEN)
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
}

impl ServerConfig {
    /// Keys set in `overrides` win over those set here.
    pub fn merged_with(&self, overrides: &ServerConfig) -> ServerConfig {
        ServerConfig {
            listen: overrides.listen.or(self.listen),
            dir: overrides.dir.clone().or_else(|| self.dir.clone()),
            max_instances: overrides.max_instances.or(self.max_instances),
            header_read_timeout_ms: overrides
                .header_read_timeout_ms
                .or(self.header_read_timeout_ms),
            max_header_kib: overrides.max_header_kib.or(self.max_header_kib),
            shutdown_grace_ms: overrides.shutdown_grace_ms.or(self.shutdown_grace_ms),
            cache_dir: overrides
                .cache_dir
                .clone()
                .or_else(|| self.cache_dir.clone()),
            data: overrides.data.clone().or_else(|| self.data.clone()),
            admin_listen: overrides.admin_listen.or(self.admin_listen),
            admin_token_file: overrides
                .admin_token_file
                .clone()
                .or_else(|| self.admin_token_file.clone()),
        }
    }

    /// The listen address, or the default.
    pub fn listen(&self) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// The services folder, or the default.
    pub fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| PathBuf::from("deploy"))
    }

    /// The compile cache folder, or the default.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".hive/cache"))
    }

    /// The admin listener's address, or the default.
    pub fn admin_listen(&self) -> SocketAddr {
        self.admin_listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9080)))
    }

    /// The admin token: from `admin-token-file`, else `HIVE_ADMIN_TOKEN`.
    pub fn admin_token(&self) -> Result<Option<String>> {
        if let Some(path) = &self.admin_token_file {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("reading the admin token file {}", path.display()))?;
            let token = token.trim().to_string();
            anyhow::ensure!(
                !token.is_empty(),
                "the admin token file {} is empty",
                path.display()
            );
            return Ok(Some(token));
        }
        Ok(std::env::var("HIVE_ADMIN_TOKEN")
            .ok()
            .map(|token| token.trim().to_string())
            .filter(|token| !token.is_empty()))
    }

    /// The data folder, or the default.
    pub fn data_dir(&self) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| PathBuf::from(".hive/data"))
    }

    /// Connection-level settings, with defaults filled in.
    pub fn http(&self) -> HttpSettings {
        let defaults = HttpSettings::default();
        HttpSettings {
            header_read_timeout: self
                .header_read_timeout_ms
                .map_or(defaults.header_read_timeout, Duration::from_millis),
            max_header_bytes: self
                .max_header_kib
                .map_or(defaults.max_header_bytes, |kib| (kib * 1024).max(1024)),
            shutdown_grace: self
                .shutdown_grace_ms
                .map_or(defaults.shutdown_grace, Duration::from_millis),
        }
    }
}

/// How the HTTP server treats connections.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A client must send its full request head within this time (slowloris).
    pub header_read_timeout: Duration,
    /// Largest request head; beyond it the client gets 431.
    pub max_header_bytes: usize,
    /// How long open requests may run after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl HostConfig {
    /// Reads and parses the config file at `path`.
    pub fn load(path: &Path) -> Result<HostConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let config: HostConfig = toml::from_str(
            r#"
            [server]
            listen = "0.0.0.0:9000"
            dir = "/srv/hive"
            max-instances = 50
            header-read-timeout-ms = 500
            max-header-kib = 16
            shutdown-grace-ms = 100

            [limits]
            memory-mib = 32
            timeout-ms = 2000
            "#,
        )
        .unwrap();
        assert_eq!(config.server.listen(), "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.server.dir(), PathBuf::from("/srv/hive"));
        assert_eq!(config.server.http().max_header_bytes, 16 * 1024);
        assert_eq!(config.limits.memory_mib, Some(32));
    }

    #[test]
    fn flags_override_the_file() {
        let file = ServerConfig {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            shutdown_grace_ms: Some(5),
            ..ServerConfig::default()
        };
        let flags = ServerConfig {
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..ServerConfig::default()
        };
        let merged = file.merged_with(&flags);
        assert_eq!(merged.listen(), "127.0.0.1:2".parse().unwrap());
        assert_eq!(merged.shutdown_grace_ms, Some(5));
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<HostConfig>("[server]\nport = 1").is_err());
        assert!(toml::from_str::<HostConfig>("[limit]\nmemory-mib = 1").is_err());
    }

    #[test]
    fn empty_file_means_defaults() {
        let config: HostConfig = toml::from_str("").unwrap();
        assert_eq!(config.server.listen(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.server.dir(), PathBuf::from("deploy"));
    }
}
