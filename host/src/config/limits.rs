//! Resource limits for each request a service handles: host-wide defaults
//! (built in, then the host config file, then flags) that a service's
//! manifest may override in its `[limits]` table.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde::Deserialize;

const MIB: usize = 1 << 20;

/// The limits in force for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Time one request may take, guest code and host calls together.
    pub timeout: Duration,
    /// Instances of this service running at once; more requests queue.
    pub concurrency: usize,
    /// How long a queued request waits for a free slot before a 503.
    pub queue_timeout: Duration,
    /// Largest request body accepted; larger ones get 413.
    pub request_body_bytes: usize,
    /// Largest response body a service may return; larger ones become 500.
    pub response_body_bytes: usize,
    /// Requests one instance may serve before it is discarded. 1 (the
    /// default) is a fresh instance per request; more is an opt-in that
    /// trades isolation between requests for speed.
    pub instance_reuse: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * MIB,
            timeout: Duration::from_secs(10),
            concurrency: 100,
            queue_timeout: Duration::from_millis(1000),
            request_body_bytes: 16 * MIB,
            response_body_bytes: 16 * MIB,
            instance_reuse: 1,
        }
    }
}

/// A `[limits]` table, as written in the host config file or a manifest.
/// Every key is optional; what is missing keeps the value from the level
/// below.
/// The same struct defines the `hive serve` flags of the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Linear memory per instance, in MiB [default: 64]
    #[arg(long)]
    pub memory_mib: Option<usize>,
    /// Time per request (CPU and waiting), in ms; then 504 [default: 10000]
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Instances of one service running at once; more requests queue [default: 100]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long a queued request waits for a slot, in ms; then 503 [default: 1000]
    #[arg(long)]
    pub queue_timeout_ms: Option<u64>,
    /// Largest request body, in KiB; larger gets 413 [default: 16384]
    #[arg(long)]
    pub request_body_kib: Option<usize>,
    /// Largest response body a service may return, in KiB; larger becomes 500 [default: 16384]
    #[arg(long)]
    pub response_body_kib: Option<usize>,
    /// Requests one instance may serve (Hive-world HTTP requests only); 1 = a fresh instance every time [default: 1]
    #[arg(long)]
    pub instance_reuse: Option<u32>,
}

impl LimitsConfig {
    /// `base` with every value this table sets replaced.
    pub fn apply(&self, base: &Limits) -> Result<Limits> {
        let limits = Limits {
            memory_bytes: self.memory_mib.map_or(base.memory_bytes, |mib| mib * MIB),
            timeout: self.timeout_ms.map_or(base.timeout, Duration::from_millis),
            concurrency: self.concurrency.unwrap_or(base.concurrency),
            queue_timeout: self
                .queue_timeout_ms
                .map_or(base.queue_timeout, Duration::from_millis),
            request_body_bytes: self
                .request_body_kib
                .map_or(base.request_body_bytes, |kib| kib * 1024),
            response_body_bytes: self
                .response_body_kib
                .map_or(base.response_body_bytes, |kib| kib * 1024),
            instance_reuse: self.instance_reuse.unwrap_or(base.instance_reuse),
        };
        limits.validate()?;
        Ok(limits)
    }

    /// Keys set in `overrides` win over those set here.
    pub fn merged_with(&self, overrides: &LimitsConfig) -> LimitsConfig {
        LimitsConfig {
            memory_mib: overrides.memory_mib.or(self.memory_mib),
            timeout_ms: overrides.timeout_ms.or(self.timeout_ms),
            concurrency: overrides.concurrency.or(self.concurrency),
            queue_timeout_ms: overrides.queue_timeout_ms.or(self.queue_timeout_ms),
            request_body_kib: overrides.request_body_kib.or(self.request_body_kib),
            response_body_kib: overrides.response_body_kib.or(self.response_body_kib),
            instance_reuse: overrides.instance_reuse.or(self.instance_reuse),
        }
    }
}

impl Limits {
    /// Rejects values that would make a service unusable.
    pub fn validate(&self) -> Result<()> {
        if self.memory_bytes == 0 || self.memory_bytes > 4096 * MIB {
            anyhow::bail!("memory-mib must be between 1 and 4096");
        }
        if self.timeout.is_zero() {
            anyhow::bail!("timeout-ms must be at least 1");
        }
        if self.concurrency == 0 {
            anyhow::bail!("concurrency must be at least 1");
        }
        if self.instance_reuse == 0 {
            anyhow::bail!("instance-reuse must be at least 1 (1 = a fresh instance per request)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_keep_the_base_value() {
        let base = Limits::default();
        let config = LimitsConfig {
            timeout_ms: Some(250),
            ..LimitsConfig::default()
        };
        let limits = config.apply(&base).unwrap();
        assert_eq!(limits.timeout, Duration::from_millis(250));
        assert_eq!(limits.memory_bytes, base.memory_bytes);
    }

    #[test]
    fn overrides_win_when_merged() {
        let host = LimitsConfig {
            memory_mib: Some(32),
            concurrency: Some(5),
            ..LimitsConfig::default()
        };
        let flags = LimitsConfig {
            memory_mib: Some(16),
            ..LimitsConfig::default()
        };
        let merged = host.merged_with(&flags);
        assert_eq!(merged.memory_mib, Some(16));
        assert_eq!(merged.concurrency, Some(5));
    }

    #[test]
    fn unusable_values_are_rejected() {
        for bad in [
            "memory-mib = 0",
            "memory-mib = 5000",
            "timeout-ms = 0",
            "concurrency = 0",
            "instance-reuse = 0",
        ] {
            let config: LimitsConfig = toml::from_str(bad).unwrap();
            assert!(config.apply(&Limits::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<LimitsConfig>("memory = 5").is_err());
    }
}
