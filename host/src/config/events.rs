//! A manifest's events: the topics a service subscribes to
//! (`[[subscribe]]`) and its schedules (`[[schedule]]`), checked when the
//! manifest is read, so a bad cron expression or an absurd retry count is
//! an error naming the file and the key, never a surprise at run time.
//!
//! ```toml
//! [[subscribe]]
//! topic = "order.placed"
//! group = "notifications"     # default: the service's name
//! max-attempts = 5            # then the dead-letter queue
//! backoff = "1s"              # first retry; doubles, with jitter ...
//! max-backoff = "5m"          # ... up to this
//! concurrency = 4             # deliveries handled at once on each host
//!
//! [[schedule]]
//! name = "release-expired"    # delivered on topic `schedule:<name>`
//! every = "30s"               # or: cron = "*/5 * * * *", timezone = "Europe/Paris"
//! ```

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::names::name_problem;
use crate::queue::topic_problem;

/// `max-attempts`: 1 to 1,000.
pub const MAX_ATTEMPTS: (u32, u32) = (1, 1000);
/// `backoff` and `max-backoff`: 1 ms to 1 day.
pub const BACKOFF: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(86_400));
/// `concurrency`: 1 to 1,000.
pub const CONCURRENCY: (usize, usize) = (1, 1000);
/// `every`: 1 s to 31 days.
pub const EVERY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(31 * 86_400));

/// One `[[subscribe]]` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topic.
    pub topic: String,
    /// The group, when the manifest names one (else the service's name).
    pub group: Option<String>,
    /// Deliveries before the dead-letter queue.
    pub max_attempts: u32,
    /// Delay before the first retry; it doubles each time.
    pub backoff: Duration,
    /// The longest delay between retries.
    pub max_backoff: Duration,
    /// Deliveries handled at once on each host.
    pub concurrency: usize,
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum When {
    /// At every multiple of this period since the Unix epoch, so every
    /// host agrees on the ticks.
    Every(Duration),
    /// At each time a cron expression names, in a time zone.
    Cron {
        /// The expression as written.
        expression: String,
        /// The parsed expression.
        cron: Box<croner::Cron>,
        /// The zone it is read in.
        zone: jiff::tz::TimeZone,
    },
}

impl PartialEq for When {
    fn eq(&self, other: &When) -> bool {
        match (self, other) {
            (When::Every(a), When::Every(b)) => a == b,
            (
                When::Cron {
                    expression: a,
                    zone: za,
                    ..
                },
                When::Cron {
                    expression: b,
                    zone: zb,
                    ..
                },
            ) => a == b && za.iana_name() == zb.iana_name(),
            _ => false,
        }
    }
}

impl When {
    /// The first tick strictly after `after_ms` (Unix milliseconds).
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        match self {
            When::Every(period) => {
                let period = period.as_millis().max(1) as u64;
                Some((after_ms / period + 1) * period)
            }
            When::Cron { cron, zone, .. } => {
                let start = jiff::Timestamp::from_millisecond(after_ms as i64)
                    .ok()?
                    .to_zoned(zone.clone());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                u64::try_from(next.timestamp().as_millisecond()).ok()
            }
        }
    }

    /// How it reads in a status page.
    pub fn describe(&self) -> String {
        match self {
            When::Every(period) => format!("every {}", humantime::format_duration(*period)),
            When::Cron {
                expression, zone, ..
            } => format!(
                "cron \"{expression}\" ({})",
                zone.iana_name().unwrap_or("UTC")
            ),
        }
    }
}

/// One `[[schedule]]` entry, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Its name: the topic is `schedule:<name>`.
    pub name: String,
    /// When it fires.
    pub when: When,
}

/// A `[[subscribe]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSubscription {
    topic: String,
    group: Option<String>,
    max_attempts: Option<i64>,
    backoff: Option<String>,
    max_backoff: Option<String>,
    concurrency: Option<i64>,
}

/// A `[[schedule]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSchedule {
    name: String,
    every: Option<String>,
    cron: Option<String>,
    timezone: Option<String>,
}

/// A duration such as `"30s"`, `"5m"`, `"1h 30m"`, within `range`.
fn duration(at: &str, key: &str, text: &str, range: (Duration, Duration)) -> Result<Duration> {
    let value = humantime::parse_duration(text).map_err(|err| {
        anyhow::anyhow!(
            "{at}: {key} = {text:?} is not a duration such as \"30s\" or \"5m\" ({err})"
        )
    })?;
    if value < range.0 || value > range.1 {
        bail!(
            "{at}: {key} = {text:?} is out of range ({} to {})",
            humantime::format_duration(range.0),
            humantime::format_duration(range.1)
        );
    }
    Ok(value)
}

fn within<T>(at: &str, key: &str, value: i64, range: (T, T)) -> Result<T>
where
    T: PartialOrd + std::fmt::Display + Copy + TryFrom<i64>,
{
    match T::try_from(value) {
        Ok(v) if v >= range.0 && v <= range.1 => Ok(v),
        _ => bail!(
            "{at}: {key} = {value} is out of range ({} to {})",
            range.0,
            range.1
        ),
    }
}

/// Checks the `[[subscribe]]` entries.
pub(super) fn subscriptions(raw: Vec<RawSubscription>) -> Result<Vec<Subscription>> {
    let mut checked: Vec<Subscription> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        let at = format!("subscribe[{index}] (topic {:?})", entry.topic);
        if let Some(problem) = topic_problem(&entry.topic) {
            bail!("{at}: topic: {problem}");
        }
        if let Some(group) = &entry.group
            && let Some(problem) = name_problem(group)
        {
            bail!(
                "{at}: group: {}",
                problem.replace("component name", "group name")
            );
        }
        let max_attempts = match entry.max_attempts {
            Some(n) => within(&at, "max-attempts", n, MAX_ATTEMPTS)?,
            None => 5,
        };
        let backoff = match &entry.backoff {
            Some(text) => duration(&at, "backoff", text, BACKOFF)?,
            None => Duration::from_secs(1),
        };
        let max_backoff = match &entry.max_backoff {
            Some(text) => duration(&at, "max-backoff", text, BACKOFF)?,
            None => Duration::from_secs(300).max(backoff),
        };
        if max_backoff < backoff {
            bail!("{at}: max-backoff is shorter than backoff");
        }
        let concurrency = match entry.concurrency {
            Some(n) => within(&at, "concurrency", n, CONCURRENCY)?,
            None => 4,
        };
        let subscription = Subscription {
            topic: entry.topic,
            group: entry.group,
            max_attempts,
            backoff,
            max_backoff,
            concurrency,
        };
        if checked
            .iter()
            .any(|s| s.topic == subscription.topic && s.group == subscription.group)
        {
            bail!("{at}: the same topic and group are subscribed twice");
        }
        checked.push(subscription);
    }
    Ok(checked)
}

/// Checks the `[[schedule]]` entries.
pub(super) fn schedules(raw: Vec<RawSchedule>) -> Result<Vec<Schedule>> {
    let mut checked: Vec<Schedule> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        let at = format!("schedule[{index}] ({:?})", entry.name);
        if let Some(problem) = name_problem(&entry.name) {
            bail!(
                "{at}: name: {}",
                problem.replace("component name", "schedule name")
            );
        }
        if checked.iter().any(|s| s.name == entry.name) {
            bail!("{at}: another schedule has this name");
        }
        let when = match (&entry.every, &entry.cron) {
            (Some(every), None) => {
                if entry.timezone.is_some() {
                    bail!("{at}: timezone applies only to cron");
                }
                When::Every(duration(&at, "every", every, EVERY)?)
            }
            (None, Some(expression)) => {
                let cron = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Disallowed)
                    .year(croner::parser::Year::Disallowed)
                    .build()
                    .parse(expression)
                    .map_err(|err| {
                        anyhow::anyhow!(
                            "{at}: cron = {expression:?} is not a 5-field cron expression \
                             (minute hour day-of-month month day-of-week): {err}"
                        )
                    })?;
                let zone = match &entry.timezone {
                    None => jiff::tz::TimeZone::UTC,
                    Some(name) => jiff::tz::TimeZone::get(name).map_err(|err| {
                        anyhow::anyhow!(
                            "{at}: timezone = {name:?} is not a known time zone ({err})"
                        )
                    })?,
                };
                When::Cron {
                    expression: expression.clone(),
                    cron: Box::new(cron),
                    zone,
                }
            }
            (Some(_), Some(_)) => bail!("{at}: give either every or cron, not both"),
            (None, None) => bail!("{at}: give every (e.g. \"30s\") or cron (e.g. \"0 3 * * *\")"),
        };
        checked.push(Schedule {
            name: entry.name,
            when,
        });
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use crate::config::Manifest;

    use super::*;

    #[test]
    fn subscriptions_take_defaults_and_check_ranges() {
        let manifest = Manifest::parse("[[subscribe]]\ntopic = \"order.placed\"\n").unwrap();
        let s = &manifest.subscriptions[0];
        assert_eq!(
            (s.max_attempts, s.backoff, s.max_backoff, s.concurrency),
            (5, Duration::from_secs(1), Duration::from_secs(300), 4)
        );
        for (bad, says) in [
            ("topic = \"a b\"", "topic"),
            ("topic = \"t\"\nmax-attempts = 0", "max-attempts = 0"),
            (
                "topic = \"t\"\nmax-attempts = 100000",
                "max-attempts = 100000",
            ),
            ("topic = \"t\"\nbackoff = \"soon\"", "backoff"),
            ("topic = \"t\"\nconcurrency = -1", "concurrency"),
            ("topic = \"t\"\ngroup = \"../x\"", "group"),
            ("topic = \"t\"\nretries = 3", "retries"),
        ] {
            let err = Manifest::parse(&format!("[[subscribe]]\n{bad}\n")).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(says), "{bad}: {text}");
        }
    }

    #[test]
    fn schedules_fire_on_shared_ticks() {
        let manifest = Manifest::parse(
            "[[schedule]]\nname = \"tick\"\nevery = \"30s\"\n\
             [[schedule]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Paris\"\n",
        )
        .unwrap();
        let every = &manifest.schedules[0].when;
        assert_eq!(every.next_after(0), Some(30_000));
        assert_eq!(every.next_after(30_000), Some(60_000));
        // 2026-01-15T10:07:30Z -> 03:00 in Paris is 02:00 UTC the next day.
        let nightly = &manifest.schedules[1].when;
        assert_eq!(
            nightly.next_after(1_768_471_650_000),
            Some(1_768_528_800_000)
        );
        for (bad, says) in [
            ("name = \"x\"\ncron = \"* * *\"", "cron"),
            ("name = \"x\"\ncron = \"0 0 3 * * *\"", "cron"),
            (
                "name = \"x\"\ncron = \"0 3 * * *\"\ntimezone = \"Mars/Olympus\"",
                "timezone",
            ),
            ("name = \"x\"\nevery = \"10ms\"", "every"),
            ("name = \"x\"", "give every"),
            ("name = \"x y\"\nevery = \"1s\"", "name"),
        ] {
            let err = Manifest::parse(&format!("[[schedule]]\n{bad}\n")).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(says), "{bad}: {text}");
        }
    }
}
