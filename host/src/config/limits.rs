//! Resource limits for each request a service handles: host-wide defaults
//! (built in, then the host config file, then flags) that a service's
//! manifest may override in its `[limits]` table.

use std::time::Duration;

use anyhow::{Result, bail};
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
    /// Time a client has to send the whole request body of a Hive-world
    /// request; then 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Largest response body a service may return; larger ones become 500.
    pub response_body_bytes: usize,
    /// Requests one instance may serve before it is discarded. 1 (the
    /// default) is a fresh instance per request; more is an opt-in that
    /// trades isolation between requests for speed.
    pub instance_reuse: u32,
    /// Requests one instance of a WASI 0.3 component may serve at once. 1
    /// (the default) is one at a time; more shares the instance between
    /// concurrent requests, so a trap or timeout fails all of them.
    pub instance_concurrency: u32,
    /// Fresh instances kept made ahead, off the request path, so a request
    /// that needs a fresh one does not wait for instantiation. 0 (the
    /// default) makes each on the request that needs it.
    pub prewarm: u32,
    /// Public requests let through per period, if limited; more get 429.
    pub rate: Option<Rate>,
}

/// A rate limit: `count` requests per `period`, with bursts of up to
/// `burst`, counted per `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub count: u32,
    /// The period.
    pub period: Duration,
    /// Requests that may come at once after a quiet spell.
    pub burst: u32,
    /// What the count is kept per.
    pub key: RateKey,
}

/// What a rate limit counts per.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// The whole service.
    Service,
    /// Each client address.
    Client,
    /// Each value of a verified token's claim (e.g. `sub`).
    Claim(String),
}

/// `"100/s"`, `"6000/m"`, `"50000/h"`: a count per second, minute or hour.
fn parse_rate(text: &str) -> Result<(u32, Duration)> {
    let (count, unit) = text
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("`rate = {text:?}` is not a rate such as \"100/s\""))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("`rate = {text:?}`: {count:?} is not a whole number"))?;
    let period = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => bail!("`rate = {text:?}`: the period is s, m or h, not {other:?}"),
    };
    checked("rate", count, range::RATE)?;
    Ok((count, period))
}

fn parse_rate_key(text: &str) -> Result<RateKey> {
    match text {
        "service" => Ok(RateKey::Service),
        "client" => Ok(RateKey::Client),
        _ => match text.strip_prefix("claim:") {
            Some(claim) if !claim.is_empty() => Ok(RateKey::Claim(claim.to_string())),
            _ => bail!(
                "`rate-key = {text:?}` is not one of \"service\", \"client\" or \"claim:<name>\""
            ),
        },
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * MIB,
            timeout: Duration::from_secs(10),
            concurrency: 100,
            queue_timeout: Duration::from_millis(1000),
            request_body_bytes: 16 * MIB,
            body_timeout: Duration::from_secs(10),
            response_body_bytes: 16 * MIB,
            instance_reuse: 1,
            instance_concurrency: 1,
            prewarm: 0,
            rate: None,
        }
    }
}

/// The range each `[limits]` key accepts, inclusive. Wide enough for any
/// real service; narrow enough that no value can overflow or exhaust the
/// host (a semaphore of 2^62 permits, a 16 EiB memory limit, ...).
pub mod range {
    /// `memory-mib`: 1 MiB to 4 GiB (a 32-bit linear memory).
    pub const MEMORY_MIB: (usize, usize) = (1, 4096);
    /// `timeout-ms`: 1 ms to 1 hour.
    pub const TIMEOUT_MS: (u64, u64) = (1, 3_600_000);
    /// `concurrency`: 1 to 100,000 instances.
    pub const CONCURRENCY: (usize, usize) = (1, 100_000);
    /// `queue-timeout-ms`: 0 (no waiting) to 10 minutes.
    pub const QUEUE_TIMEOUT_MS: (u64, u64) = (0, 600_000);
    /// `request-body-kib` and `response-body-kib`: 0 to 1 GiB.
    pub const BODY_KIB: (usize, usize) = (0, 1 << 20);
    /// `body-timeout-ms`: 1 ms to 1 hour.
    pub const BODY_TIMEOUT_MS: (u64, u64) = (1, 3_600_000);
    /// `instance-reuse`: 1 (fresh every time) to 1,000,000 requests.
    pub const INSTANCE_REUSE: (u32, u32) = (1, 1_000_000);
    /// `instance-concurrency`: 1 (one request at a time) to 1,000.
    pub const INSTANCE_CONCURRENCY: (u32, u32) = (1, 1000);
    /// `prewarm`: 0 (none) to 100 instances made ahead. Each holds a slot
    /// of the engine's instance pool and its memory, so the cap is low.
    pub const PREWARM: (u32, u32) = (0, 100);
    /// `rate`: 1 to 1,000,000 requests per period.
    pub const RATE: (u32, u32) = (1, 1_000_000);
    /// `burst`: 1 to 1,000,000 requests.
    pub const BURST: (u32, u32) = (1, 1_000_000);
}

/// A `[limits]` table, as written in the host config file or a manifest.
/// Every key is optional; what is missing keeps the value from the level
/// below.
/// The same struct defines the `hive serve` flags of the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Linear memory per instance, in MiB (1 to 4096) [default: 64]
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
    /// Time to receive a whole request body, in ms; then 408 [default: 10000]
    #[arg(long)]
    pub body_timeout_ms: Option<u64>,
    /// Largest response body a service may return, in KiB; larger becomes 500 [default: 16384]
    #[arg(long)]
    pub response_body_kib: Option<usize>,
    /// Requests one instance may serve; 1 = a fresh instance every time [default: 1]
    #[arg(long)]
    pub instance_reuse: Option<u32>,
    /// Requests one instance of a WASI 0.3 component serves at once; 1 = one at a time [default: 1]
    #[arg(long)]
    pub instance_concurrency: Option<u32>,
    /// Fresh instances made ahead, ready for the requests that need one (0 to 100) [default: 0]
    #[arg(long)]
    pub prewarm: Option<u32>,
    /// Public requests allowed per second, minute or hour ("100/s"); more get 429 [default: none]
    #[arg(long)]
    pub rate: Option<String>,
    /// Requests allowed at once after a quiet spell, with `rate` [default: the rate's count]
    #[arg(long)]
    pub burst: Option<u32>,
    /// What `rate` counts per: service, client (address) or claim:<name> [default: service]
    #[arg(long)]
    pub rate_key: Option<String>,
}

/// `value` if it lies in `(min, max)`, else an error naming the key, the
/// value and the range.
pub(crate) fn checked<T: PartialOrd + Copy + std::fmt::Display>(
    key: &str,
    value: T,
    (min, max): (T, T),
) -> Result<T> {
    if value < min || value > max {
        bail!("`{key} = {value}` is out of range: it must be between {min} and {max}");
    }
    Ok(value)
}

impl LimitsConfig {
    /// `base` with every value this table sets replaced. A value outside
    /// its key's [`range`] is an error naming the key, the value and the
    /// range; nothing is rounded or wrapped.
    pub fn apply(&self, base: &Limits) -> Result<Limits> {
        let mut limits = base.clone();
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = checked("memory-mib", mib, range::MEMORY_MIB)? * MIB;
        }
        if let Some(ms) = self.timeout_ms {
            limits.timeout = Duration::from_millis(checked("timeout-ms", ms, range::TIMEOUT_MS)?);
        }
        if let Some(count) = self.concurrency {
            limits.concurrency = checked("concurrency", count, range::CONCURRENCY)?;
        }
        if let Some(ms) = self.queue_timeout_ms {
            limits.queue_timeout =
                Duration::from_millis(checked("queue-timeout-ms", ms, range::QUEUE_TIMEOUT_MS)?);
        }
        if let Some(kib) = self.request_body_kib {
            limits.request_body_bytes = checked("request-body-kib", kib, range::BODY_KIB)? * 1024;
        }
        if let Some(ms) = self.body_timeout_ms {
            limits.body_timeout =
                Duration::from_millis(checked("body-timeout-ms", ms, range::BODY_TIMEOUT_MS)?);
        }
        if let Some(kib) = self.response_body_kib {
            limits.response_body_bytes = checked("response-body-kib", kib, range::BODY_KIB)? * 1024;
        }
        if let Some(count) = self.instance_reuse {
            limits.instance_reuse = checked("instance-reuse", count, range::INSTANCE_REUSE)?;
        }
        if let Some(count) = self.instance_concurrency {
            limits.instance_concurrency =
                checked("instance-concurrency", count, range::INSTANCE_CONCURRENCY)?;
        }
        if let Some(count) = self.prewarm {
            limits.prewarm = checked("prewarm", count, range::PREWARM)?;
        }
        if let Some(text) = &self.rate {
            let (count, period) = parse_rate(text)?;
            limits.rate = Some(Rate {
                count,
                period,
                burst: count,
                key: RateKey::Service,
            });
        }
        match (&mut limits.rate, self.burst, &self.rate_key) {
            (None, Some(_), _) | (None, _, Some(_)) => {
                bail!("`burst` and `rate-key` need a `rate`")
            }
            (Some(rate), burst, key) => {
                if let Some(burst) = burst {
                    rate.burst = checked("burst", burst, range::BURST)?;
                }
                if let Some(key) = key {
                    rate.key = parse_rate_key(key)?;
                }
            }
            (None, None, None) => {}
        }
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
            body_timeout_ms: overrides.body_timeout_ms.or(self.body_timeout_ms),
            response_body_kib: overrides.response_body_kib.or(self.response_body_kib),
            instance_reuse: overrides.instance_reuse.or(self.instance_reuse),
            instance_concurrency: overrides.instance_concurrency.or(self.instance_concurrency),
            prewarm: overrides.prewarm.or(self.prewarm),
            rate: overrides.rate.clone().or(self.rate.clone()),
            burst: overrides.burst.or(self.burst),
            rate_key: overrides.rate_key.clone().or(self.rate_key.clone()),
        }
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
    fn rates_are_read_with_their_burst_and_key() {
        let config = LimitsConfig {
            rate: Some("100/s".into()),
            burst: Some(20),
            rate_key: Some("claim:sub".into()),
            ..LimitsConfig::default()
        };
        let rate = config.apply(&Limits::default()).unwrap().rate.unwrap();
        assert_eq!(
            (rate.count, rate.period, rate.burst),
            (100, Duration::from_secs(1), 20)
        );
        assert_eq!(rate.key, RateKey::Claim("sub".into()));
        for bad in ["100", "x/s", "100/d", "0/s"] {
            let config = LimitsConfig {
                rate: Some(bad.into()),
                ..LimitsConfig::default()
            };
            assert!(config.apply(&Limits::default()).is_err(), "{bad}");
        }
        let orphan = LimitsConfig {
            burst: Some(5),
            ..LimitsConfig::default()
        };
        assert!(orphan.apply(&Limits::default()).is_err());
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
            "instance-concurrency = 0",
            "instance-concurrency = 1001",
            "prewarm = 101",
        ] {
            let config: LimitsConfig = toml::from_str(bad).unwrap();
            assert!(config.apply(&Limits::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_that_would_overflow_or_wrap_are_errors_naming_key_value_and_range() {
        for (bad, key) in [
            ("concurrency = 4611686018427387904", "concurrency"),
            ("memory-mib = 17592186044417", "memory-mib"),
            ("request-body-kib = 18014398509481984", "request-body-kib"),
            ("response-body-kib = 18014398509481984", "response-body-kib"),
            ("timeout-ms = 18446744073709551615", "timeout-ms"),
            ("instance-reuse = 4294967295", "instance-reuse"),
            ("prewarm = 4294967295", "prewarm"),
        ] {
            let config: LimitsConfig = toml::from_str(bad).unwrap();
            let err = config.apply(&Limits::default()).unwrap_err().to_string();
            let value = bad.split(" = ").nth(1).unwrap();
            assert!(err.contains(key), "{bad}: {err}");
            assert!(err.contains(value), "{bad}: {err}");
            assert!(err.contains("between"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_ends_of_each_range_are_accepted() {
        let config: LimitsConfig = toml::from_str(
            "memory-mib = 4096\nconcurrency = 100000\nrequest-body-kib = 1048576\n\
             queue-timeout-ms = 0\ninstance-reuse = 1000000",
        )
        .unwrap();
        let limits = config.apply(&Limits::default()).unwrap();
        assert_eq!(limits.memory_bytes, 4096 * MIB);
        assert_eq!(limits.request_body_bytes, 1 << 30);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<LimitsConfig>("memory = 5").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_values_give_limits_in_range_or_an_error_never_a_wrap(
                memory_mib in proptest::option::of(any::<usize>()),
                timeout_ms in proptest::option::of(any::<u64>()),
                concurrency in proptest::option::of(any::<usize>()),
                queue_timeout_ms in proptest::option::of(any::<u64>()),
                request_body_kib in proptest::option::of(any::<usize>()),
                body_timeout_ms in proptest::option::of(any::<u64>()),
                response_body_kib in proptest::option::of(any::<usize>()),
                instance_reuse in proptest::option::of(any::<u32>()),
                instance_concurrency in proptest::option::of(any::<u32>()),
                prewarm in proptest::option::of(any::<u32>()),
            ) {
                let config = LimitsConfig {
                    memory_mib, timeout_ms, concurrency, queue_timeout_ms,
                    request_body_kib, body_timeout_ms, response_body_kib, instance_reuse,
                    instance_concurrency, prewarm, rate: None, burst: None, rate_key: None,
                };
                if let Ok(limits) = config.apply(&Limits::default()) {
                    prop_assert!((MIB..=4096 * MIB).contains(&limits.memory_bytes));
                    prop_assert!(limits.memory_bytes % MIB == 0);
                    if let Some(mib) = memory_mib {
                        prop_assert_eq!(limits.memory_bytes, mib * MIB);
                    }
                    prop_assert!((1..=100_000).contains(&limits.concurrency));
                    prop_assert!(limits.request_body_bytes <= 1 << 30);
                    prop_assert!(limits.response_body_bytes <= 1 << 30);
                    if let Some(kib) = request_body_kib {
                        prop_assert_eq!(limits.request_body_bytes, kib * 1024);
                    }
                    prop_assert!(!limits.timeout.is_zero() && !limits.body_timeout.is_zero());
                    prop_assert!(limits.instance_reuse >= 1);
                    prop_assert!((1..=1000).contains(&limits.instance_concurrency));
                    prop_assert!(limits.prewarm <= 100);
                }
            }
        }
    }
}
