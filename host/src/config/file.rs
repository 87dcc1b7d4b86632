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
//!
//! [auth]            # every service's, unless its manifest has [auth]
//! algorithms = ["ES256"]
//! jwks-secret = "auth-jwks"
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

use super::auth::RawAuth;
use super::limits::{LimitsConfig, checked};
use super::traces::TracesConfig;
use crate::kv::durability::Durability;

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
    /// Edge authentication for every service whose manifest has no
    /// `[auth]` of its own.
    pub auth: Option<RawAuth>,
    /// Spans: which are recorded and where they are exported.
    #[serde(default)]
    pub traces: TracesConfig,
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
    /// Keep the services' key-value data in Redis instead (redis://[:password@]host:port/db, rediss://, or redis+sentinel://host:port[,host:port...]/service/db), shared by every host that names it
    #[arg(long, env = "HIVE_KV", hide_env_values = true)]
    pub kv: Option<String>,
    /// When a write to Redis is acknowledged: once the primary has it, or once a replica has it too [default: primary]
    #[arg(long, value_enum)]
    pub kv_durability: Option<Durability>,
    /// Certificate chain (PEM) for TLS on both listeners; needs --tls-key
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Share one deployment with every host naming this Redis (redis://, rediss:// or redis+sentinel://); may be the --kv URL
    #[arg(long, env = "HIVE_CLUSTER", hide_env_values = true)]
    pub cluster: Option<String>,
    /// Address of the admin API and status page; port 0 picks one [default: 127.0.0.1:9080]
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// File holding the admin API's bearer token (or set HIVE_ADMIN_TOKEN)
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// Most open client connections; more wait in the kernel's queue [default: from the open-files limit]
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Memory all buffered request bodies may take together, in MiB; beyond it 503 [default: 256]
    #[arg(long)]
    pub body_budget_mib: Option<usize>,
    /// Folder with one file per secret (a mounted Kubernetes Secret); else HIVE_SECRET_<NAME>
    #[arg(long, env = "HIVE_SECRETS")]
    pub secrets: Option<PathBuf>,
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
            kv: overrides.kv.clone().or_else(|| self.kv.clone()),
            kv_durability: overrides.kv_durability.or(self.kv_durability),
            cluster: overrides.cluster.clone().or_else(|| self.cluster.clone()),
            tls_cert: overrides.tls_cert.clone().or_else(|| self.tls_cert.clone()),
            tls_key: overrides.tls_key.clone().or_else(|| self.tls_key.clone()),
            admin_listen: overrides.admin_listen.or(self.admin_listen),
            admin_token_file: overrides
                .admin_token_file
                .clone()
                .or_else(|| self.admin_token_file.clone()),
            max_connections: overrides.max_connections.or(self.max_connections),
            body_budget_mib: overrides.body_budget_mib.or(self.body_budget_mib),
            secrets: overrides.secrets.clone().or(self.secrets.clone()),
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

    /// Connection-level settings, with defaults filled in; a value outside
    /// its range is an error naming the key.
    pub fn http(&self) -> Result<HttpSettings> {
        let defaults = HttpSettings::default();
        let millis = |key: &str, value: Option<u64>, default: Duration, min: u64| {
            value.map_or(Ok(default), |ms| {
                checked(key, ms, (min, 3_600_000)).map(Duration::from_millis)
            })
        };
        Ok(HttpSettings {
            header_read_timeout: millis(
                "header-read-timeout-ms",
                self.header_read_timeout_ms,
                defaults.header_read_timeout,
                1,
            )?,
            max_header_bytes: match self.max_header_kib {
                Some(kib) => checked("max-header-kib", kib, (1, 1024))? * 1024,
                None => defaults.max_header_bytes,
            },
            shutdown_grace: millis(
                "shutdown-grace-ms",
                self.shutdown_grace_ms,
                defaults.shutdown_grace,
                0,
            )?,
            max_connections: match self.max_connections {
                Some(count) => Some(checked("max-connections", count, (1, 1_000_000))?),
                None => None,
            },
            body_budget_bytes: match self.body_budget_mib {
                Some(mib) => checked("body-budget-mib", mib, (1, 1 << 20))? << 20,
                None => defaults.body_budget_bytes,
            },
        })
    }

    /// The most component instances alive at once, checked.
    pub fn max_instances(&self) -> Result<Option<u32>> {
        match self.max_instances {
            Some(count) => Ok(Some(checked("max-instances", count, (1, 100_000))?)),
            None => Ok(None),
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
    /// Most open client connections, when set; otherwise derived from the
    /// process's open-files limit.
    pub max_connections: Option<usize>,
    /// Bytes all buffered request bodies may take together.
    pub body_budget_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(30),
            max_connections: None,
            body_budget_bytes: 256 << 20,
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
        assert_eq!(config.server.http().unwrap().max_header_bytes, 16 * 1024);
        assert_eq!(config.limits.memory_mib, Some(32));
    }

    #[test]
    fn kv_durability_is_read_and_checked() {
        let config: HostConfig = toml::from_str(
            "[server]\nkv = \"redis+sentinel://127.0.0.1:26379/mymaster/0\"\n\
             kv-durability = \"replicated\"\n",
        )
        .unwrap();
        assert_eq!(config.server.kv_durability, Some(Durability::Replicated));
        let wrong = toml::from_str::<HostConfig>("[server]\nkv-durability = \"quorum\"\n");
        let message = wrong.unwrap_err().to_string();
        assert!(
            message.contains("primary") && message.contains("replicated"),
            "{message}"
        );
    }

    #[test]
    fn the_traces_table_parses_and_flags_win() {
        use crate::config::traces::{Root, SamplerChoice};

        let config: HostConfig = toml::from_str(
            r#"
            [traces]
            otlp-endpoint = "http://collector:4318"
            service-name = "shop"
            sampler = "parentbased_traceidratio"
            sampler-arg = 0.01
            resource-attributes = "team=shop"
            "#,
        )
        .unwrap();
        let flags = TracesConfig {
            sampler_arg: Some(0.5),
            ..TracesConfig::default()
        };
        let settings = config
            .traces
            .merged_with(&flags)
            .settings(|_| None)
            .unwrap();
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(settings.service_name, "shop");
        assert_eq!(
            settings.sampler,
            SamplerChoice::ParentBased(Root::Ratio(0.5))
        );
        let unknown = toml::from_str::<HostConfig>("[traces]\nsampling = 1\n");
        assert!(unknown.is_err(), "an unknown key is refused");
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
    fn server_values_out_of_range_are_errors_naming_the_key() {
        for (text, key) in [
            (
                "[server]\nmax-header-kib = 18014398509481984",
                "max-header-kib",
            ),
            (
                "[server]\nheader-read-timeout-ms = 0",
                "header-read-timeout-ms",
            ),
            ("[server]\nbody-budget-mib = 0", "body-budget-mib"),
            ("[server]\nmax-connections = 0", "max-connections"),
        ] {
            let config: HostConfig = toml::from_str(text).unwrap();
            let err = config.server.http().unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let config: HostConfig = toml::from_str("[server]\nmax-instances = 0").unwrap();
        assert!(config.server.max_instances().is_err());
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
