//! How traces are configured: the `[traces]` table of `hive.toml`, the
//! `hive serve` flags beside it, and the OpenTelemetry SDK's standard
//! variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
//! `OTEL_TRACES_SAMPLER`, ...) as the flags' environment, so a host drops
//! into a deployment that already sets them.
//!
//! ```toml
//! [traces]
//! otlp-endpoint = "http://127.0.0.1:4318"   # spans go to <endpoint>/v1/traces
//! service-name = "shop"
//! sampler = "parentbased_traceidratio"
//! sampler-arg = 0.01
//! resource-attributes = "deployment.environment=prod,team=shop"
//! ```
//!
//! Without a collector, the spans only feed the console's ring of recent
//! spans, so by default a host records at most
//! [`CONSOLE_TRACES_PER_SECOND`] new traces a second: every request of a
//! quiet host, a steady sample of a busy one (see `docs/benchmarks.md`,
//! "The console's traces capped by rate"). With a collector the
//! OpenTelemetry default holds: every trace.

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use clap::builder::BoolishValueParser;
use serde::Deserialize;

/// The `[traces]` table; each key is also a `hive serve` flag.
#[derive(Debug, Clone, Default, Deserialize, Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TracesConfig {
    /// Record spans at all (off: no span is made) [default: true; OTEL_SDK_DISABLED=true turns it off]
    #[arg(long = "traces", env = "HIVE_TRACES", value_parser = BoolishValueParser::new())]
    pub enabled: Option<bool>,
    /// OTLP/HTTP collector address; spans go to <endpoint>/v1/traces [default: none, spans stay in the console]
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The exported resource's service.name [default: hive]
    #[arg(long = "trace-service-name", env = "OTEL_SERVICE_NAME")]
    pub service_name: Option<String>,
    /// always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio or parentbased_ratelimited [default: parentbased_ratelimited at 100 a second; with an otlp-endpoint, parentbased_always_on]
    #[arg(long = "trace-sampler", env = "OTEL_TRACES_SAMPLER")]
    pub sampler: Option<String>,
    /// The ratio of the traceidratio samplers, 0 to 1; the new traces a second of parentbased_ratelimited [default: 1; 100]
    #[arg(long = "trace-sampler-arg", env = "OTEL_TRACES_SAMPLER_ARG")]
    pub sampler_arg: Option<f64>,
    /// key=value pairs, comma-separated, added to the exported resource
    #[arg(long = "trace-resource-attributes", env = "OTEL_RESOURCE_ATTRIBUTES")]
    pub resource_attributes: Option<String>,
}

/// Which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This share of traces, chosen by trace id.
    Ratio(f64),
    /// A caller's decision when a request carries one, else the inner rule.
    ParentBased(Root),
}

/// What a parent-based sampler does for a trace that starts here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    /// Record it.
    AlwaysOn,
    /// Do not.
    AlwaysOff,
    /// Record this share.
    Ratio(f64),
    /// Record at most this many new traces a second.
    PerSecond(NonZeroU32),
}

/// New traces a second a host records by default when it exports none:
/// far more than a person reads in the console, and its ring of 8,192
/// spans then holds the last seconds to minutes of them.
pub const CONSOLE_TRACES_PER_SECOND: NonZeroU32 = NonZeroU32::new(100).unwrap();

/// How spans leave the host: the OpenTelemetry batch processor's standard
/// variables (`OTEL_BSP_*`) and the exporter's timeout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchSettings {
    /// Longest a span waits for its batch (`OTEL_BSP_SCHEDULE_DELAY`, ms).
    pub delay: Duration,
    /// Spans waiting to be exported at most; more are dropped and counted
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub max_queue: usize,
    /// Spans per export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub max_batch: usize,
    /// How long one export may take (`OTEL_EXPORTER_OTLP_TIMEOUT`, ms).
    pub timeout: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            delay: Duration::from_millis(5000),
            max_queue: 2048,
            max_batch: 512,
            timeout: Duration::from_millis(10_000),
        }
    }
}

/// The settings a host traces with, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// Whether spans are made at all.
    pub enabled: bool,
    /// The collector's traces address (`.../v1/traces`), if any.
    pub endpoint: Option<String>,
    /// `service.name`.
    pub service_name: String,
    /// Which traces are recorded.
    pub sampler: SamplerChoice,
    /// More resource attributes.
    pub resource: Vec<(String, String)>,
    /// How spans are batched for export.
    pub batch: BatchSettings,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            enabled: true,
            endpoint: None,
            service_name: "hive".to_string(),
            sampler: SamplerChoice::ParentBased(Root::PerSecond(CONSOLE_TRACES_PER_SECOND)),
            resource: Vec::new(),
            batch: BatchSettings::default(),
        }
    }
}

impl TracesConfig {
    /// This table with `overrides` (the flags and the environment) on top.
    pub fn merged_with(&self, overrides: &TracesConfig) -> TracesConfig {
        TracesConfig {
            enabled: overrides.enabled.or(self.enabled),
            otlp_endpoint: overrides
                .otlp_endpoint
                .clone()
                .or(self.otlp_endpoint.clone()),
            service_name: overrides.service_name.clone().or(self.service_name.clone()),
            sampler: overrides.sampler.clone().or(self.sampler.clone()),
            sampler_arg: overrides.sampler_arg.or(self.sampler_arg),
            resource_attributes: overrides
                .resource_attributes
                .clone()
                .or(self.resource_attributes.clone()),
        }
    }

    /// The checked settings; `env` reads the variables that have no flag.
    pub fn settings(&self, env: impl Fn(&str) -> Option<String>) -> Result<TraceSettings> {
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let enabled = self.enabled.unwrap_or(!disabled);
        let endpoint = match self.otlp_endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(base) => Some(traces_url(base)?),
        };
        let service_name = self
            .service_name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| "hive".to_string());
        let sampler = sampler(
            self.sampler.as_deref(),
            self.sampler_arg,
            endpoint.is_some(),
        )?;
        let resource = match &self.resource_attributes {
            Some(text) => resource_attributes(text)?,
            None => Vec::new(),
        };
        let defaults = BatchSettings::default();
        let batch = BatchSettings {
            delay: millis(&env, "OTEL_BSP_SCHEDULE_DELAY")?.unwrap_or(defaults.delay),
            max_queue: count(&env, "OTEL_BSP_MAX_QUEUE_SIZE")?.unwrap_or(defaults.max_queue),
            max_batch: count(&env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?.unwrap_or(defaults.max_batch),
            timeout: millis(&env, "OTEL_EXPORTER_OTLP_TIMEOUT")?.unwrap_or(defaults.timeout),
        };
        Ok(TraceSettings {
            enabled,
            endpoint,
            service_name,
            sampler,
            resource,
            batch,
        })
    }
}

/// `<base>/v1/traces`, as the OTLP specification builds a signal's address
/// from `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(base: &str) -> Result<String> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("otlp-endpoint `{base}` is not an http:// or https:// address");
    }
    Ok(format!("{}/v1/traces", base.trim_end_matches('/')))
}

/// The sampler `name` with its `arg`; without a name, every trace when
/// spans are exported, else [`CONSOLE_TRACES_PER_SECOND`].
fn sampler(name: Option<&str>, arg: Option<f64>, exported: bool) -> Result<SamplerChoice> {
    let default = if exported {
        "parentbased_always_on"
    } else {
        "parentbased_ratelimited"
    };
    let ratio = || match arg {
        Some(ratio) if !(0.0..=1.0).contains(&ratio) => {
            bail!("trace-sampler-arg {ratio} is not a ratio between 0 and 1")
        }
        Some(ratio) => Ok(ratio),
        None => Ok(1.0),
    };
    Ok(match name.map(str::trim).unwrap_or(default) {
        "always_on" => SamplerChoice::AlwaysOn,
        "always_off" => SamplerChoice::AlwaysOff,
        "traceidratio" => SamplerChoice::Ratio(ratio()?),
        "parentbased_always_on" => SamplerChoice::ParentBased(Root::AlwaysOn),
        "parentbased_always_off" => SamplerChoice::ParentBased(Root::AlwaysOff),
        "parentbased_traceidratio" => SamplerChoice::ParentBased(Root::Ratio(ratio()?)),
        "parentbased_ratelimited" => SamplerChoice::ParentBased(Root::PerSecond(per_second(arg)?)),
        other => bail!(
            "trace-sampler `{other}` is not one Hive knows: always_on, always_off, traceidratio, \
             parentbased_always_on, parentbased_always_off, parentbased_traceidratio or \
             parentbased_ratelimited"
        ),
    })
}

/// The rate of `parentbased_ratelimited`: a whole number of traces a
/// second, at least 1.
fn per_second(arg: Option<f64>) -> Result<NonZeroU32> {
    let Some(rate) = arg else {
        return Ok(CONSOLE_TRACES_PER_SECOND);
    };
    if rate.fract() != 0.0 || !(1.0..=f64::from(u32::MAX)).contains(&rate) {
        bail!("trace-sampler-arg {rate} is not a whole number of traces a second, 1 or more");
    }
    NonZeroU32::new(rate as u32)
        .ok_or_else(|| anyhow::anyhow!("trace-sampler-arg {rate} is not 1 or more"))
}

/// `key=value,key=value`, values percent-decoded as the specification says.
fn resource_attributes(text: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("resource attribute `{pair}` is not key=value");
        };
        let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
        pairs.push((key.trim().to_string(), value.into_owned()));
    }
    Ok(pairs)
}

fn millis(env: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<Duration>> {
    Ok(count(env, name)?.map(|ms| Duration::from_millis(ms as u64)))
}

fn count(env: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>> {
    match env(name) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(value) if value > 0 => Ok(Some(value)),
            _ => bail!("{name}={text} is not a positive whole number"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_defaults_cap_new_traces_and_export_nothing() {
        let settings = TracesConfig::default().settings(no_env).unwrap();
        assert_eq!(settings, TraceSettings::default());
        assert_eq!(
            settings.sampler,
            SamplerChoice::ParentBased(Root::PerSecond(CONSOLE_TRACES_PER_SECOND))
        );
    }

    #[test]
    fn with_a_collector_every_trace_is_recorded_by_default() {
        let config = TracesConfig {
            otlp_endpoint: Some("http://127.0.0.1:4318".into()),
            ..TracesConfig::default()
        };
        let settings = config.settings(no_env).unwrap();
        assert_eq!(settings.sampler, SamplerChoice::ParentBased(Root::AlwaysOn));
    }

    #[test]
    fn the_rate_limited_sampler_takes_whole_traces_a_second() {
        let rate = |arg: Option<f64>| {
            TracesConfig {
                sampler: Some("parentbased_ratelimited".into()),
                sampler_arg: arg,
                ..TracesConfig::default()
            }
            .settings(no_env)
        };
        let five = NonZeroU32::new(5).unwrap();
        assert_eq!(
            rate(Some(5.0)).unwrap().sampler,
            SamplerChoice::ParentBased(Root::PerSecond(five))
        );
        assert_eq!(
            rate(None).unwrap().sampler,
            SamplerChoice::ParentBased(Root::PerSecond(CONSOLE_TRACES_PER_SECOND))
        );
        for bad in [0.0, 0.5, 2.5, -1.0, f64::NAN, 1e12] {
            let err = rate(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("traces a second"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_endpoint_is_a_base_address() {
        let config = TracesConfig {
            otlp_endpoint: Some("http://127.0.0.1:4318/".into()),
            ..TracesConfig::default()
        };
        let settings = config.settings(no_env).unwrap();
        assert_eq!(
            settings.endpoint.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        let bad = TracesConfig {
            otlp_endpoint: Some("127.0.0.1:4318".into()),
            ..TracesConfig::default()
        };
        let err = bad.settings(no_env).unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:4318"), "{err}");
    }

    #[test]
    fn samplers_are_the_standard_names() {
        let config = TracesConfig {
            sampler: Some("parentbased_traceidratio".into()),
            sampler_arg: Some(0.01),
            ..TracesConfig::default()
        };
        let settings = config.settings(no_env).unwrap();
        assert_eq!(
            settings.sampler,
            SamplerChoice::ParentBased(Root::Ratio(0.01))
        );
        let unknown = TracesConfig {
            sampler: Some("sometimes".into()),
            ..TracesConfig::default()
        };
        let err = unknown.settings(no_env).unwrap_err().to_string();
        assert!(err.contains("`sometimes`"), "{err}");
        let out_of_range = TracesConfig {
            sampler: Some("traceidratio".into()),
            sampler_arg: Some(1.5),
            ..TracesConfig::default()
        };
        assert!(out_of_range.settings(no_env).is_err());
    }

    #[test]
    fn the_sdk_switch_and_batch_variables_are_read() {
        let env = |name: &str| match name {
            "OTEL_SDK_DISABLED" => Some("true".to_string()),
            "OTEL_BSP_SCHEDULE_DELAY" => Some("200".to_string()),
            _ => None,
        };
        let settings = TracesConfig::default().settings(env).unwrap();
        assert!(!settings.enabled);
        assert_eq!(settings.batch.delay, Duration::from_millis(200));
        let bad = |name: &str| (name == "OTEL_BSP_MAX_QUEUE_SIZE").then(|| "lots".to_string());
        let err = TracesConfig::default()
            .settings(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("OTEL_BSP_MAX_QUEUE_SIZE=lots"), "{err}");
    }

    #[test]
    fn resource_attributes_are_pairs() {
        let config = TracesConfig {
            resource_attributes: Some("team=shop, region=eu%2Dwest".into()),
            ..TracesConfig::default()
        };
        let settings = config.settings(no_env).unwrap();
        assert_eq!(
            settings.resource,
            vec![
                ("team".to_string(), "shop".to_string()),
                ("region".to_string(), "eu-west".to_string())
            ]
        );
    }
}
