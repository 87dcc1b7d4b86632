//! The last 15 minutes of a component's (or the host's) requests, in 5 s
//! buckets: how many, how many failed, and their latencies, so charts and
//! tools can show rates and percentiles over time. Prometheus counters say
//! "since start"; this says "lately", without any outside time-series
//! store.
//!
//! Latencies go into log-linear bins (four per doubling, from 1 us), so a
//! percentile is read within about 20%; a bucket exists only for a slot in
//! which requests arrived, so an idle component costs nothing.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The width of one bucket.
pub const BUCKET_SECONDS: u64 = 5;

/// Buckets kept: 15 minutes.
pub const BUCKETS: usize = 180;

/// Latency bins: four per doubling, from 1 us to about 70 minutes.
const BINS: usize = 4 * 32;

struct Bucket {
    slot: u64,
    requests: u64,
    errors: u64,
    latency: [u32; BINS],
}

/// One component's (or the host's) recent requests.
#[derive(Default)]
pub struct Window {
    buckets: VecDeque<Bucket>,
}

/// One bucket, as served to charts.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    /// Start of the bucket, Unix seconds.
    pub at: u64,
    /// Requests per second in it.
    pub requests_per_second: f64,
    /// Failed requests (status 5xx) per second in it.
    pub errors_per_second: f64,
    /// Median latency, milliseconds (`None` without requests).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
}

/// The current slot: Unix time in buckets.
pub fn slot_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / BUCKET_SECONDS)
        .unwrap_or_default()
}

fn bin_of(elapsed: Duration) -> usize {
    let micros = elapsed.as_micros().max(1) as u64;
    let octave = 63 - u64::from(micros.leading_zeros());
    // The two bits below the leading one pick the quarter of the octave.
    // Below 4 us a quarter is under a microsecond: the bin's ceiling is the
    // octave's end.
    let quarter = if octave >= 2 {
        (micros >> (octave - 2)) & 3
    } else {
        3
    };
    ((octave * 4 + quarter) as usize).min(BINS - 1)
}

/// The upper edge of `bin`, in milliseconds.
fn bin_ceiling_ms(bin: usize) -> f64 {
    let octave = (bin / 4) as i32;
    let quarter = (bin % 4) as f64;
    2f64.powi(octave) * (1.0 + (quarter + 1.0) / 4.0) / 1000.0
}

impl Window {
    /// Counts one request in `slot`.
    pub fn record(&mut self, slot: u64, elapsed: Duration, error: bool) {
        if self.buckets.back().is_none_or(|last| last.slot < slot) {
            self.buckets.push_back(Bucket {
                slot,
                requests: 0,
                errors: 0,
                latency: [0; BINS],
            });
            while self.buckets.len() > BUCKETS
                || self
                    .buckets
                    .front()
                    .is_some_and(|first| first.slot + BUCKETS as u64 <= slot)
            {
                self.buckets.pop_front();
            }
        }
        let Some(bucket) = self.buckets.iter_mut().rev().find(|b| b.slot == slot) else {
            // A request from a slot already gone by (a clock step): dropped.
            return;
        };
        bucket.requests += 1;
        bucket.errors += u64::from(error);
        bucket.latency[bin_of(elapsed)] += 1;
    }

    /// Every slot of the last 15 minutes up to `slot`, oldest first, zeros
    /// where nothing happened.
    pub fn series(&self, slot: u64) -> Vec<Point> {
        let first = slot.saturating_sub(BUCKETS as u64 - 1);
        (first..=slot)
            .map(|s| match self.buckets.iter().find(|b| b.slot == s) {
                Some(bucket) => Point {
                    at: s * BUCKET_SECONDS,
                    requests_per_second: bucket.requests as f64 / BUCKET_SECONDS as f64,
                    errors_per_second: bucket.errors as f64 / BUCKET_SECONDS as f64,
                    p50_ms: percentile(&bucket.latency, bucket.requests, 0.50),
                    p99_ms: percentile(&bucket.latency, bucket.requests, 0.99),
                },
                None => Point {
                    at: s * BUCKET_SECONDS,
                    requests_per_second: 0.0,
                    errors_per_second: 0.0,
                    p50_ms: None,
                    p99_ms: None,
                },
            })
            .collect()
    }
}

fn percentile(bins: &[u32; BINS], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = ((count as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (bin, &n) in bins.iter().enumerate() {
        seen += u64::from(n);
        if seen >= rank {
            return Some(bin_ceiling_ms(bin));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_percentiles_per_bucket() {
        let mut window = Window::default();
        for i in 0..100u64 {
            let elapsed = Duration::from_micros(if i < 99 { 1000 } else { 50_000 });
            window.record(1000, elapsed, i % 10 == 0);
        }
        let series = window.series(1000);
        assert_eq!(series.len(), BUCKETS);
        let last = series.last().unwrap();
        assert_eq!(last.at, 5000);
        assert_eq!(last.requests_per_second, 20.0);
        assert_eq!(last.errors_per_second, 2.0);
        let p50 = last.p50_ms.unwrap();
        assert!((1.0..=1.3).contains(&p50), "{p50}");
        let p99 = last.p99_ms.unwrap();
        assert!((1.0..=1.3).contains(&p99), "{p99}");
        assert_eq!(series[0].p50_ms, None);
    }

    #[test]
    fn old_buckets_fall_out_of_the_window() {
        let mut window = Window::default();
        window.record(1, Duration::from_millis(1), false);
        window.record(1 + BUCKETS as u64, Duration::from_millis(1), false);
        assert_eq!(window.buckets.len(), 1);
        assert!(
            window
                .series(1 + BUCKETS as u64)
                .iter()
                .filter(|p| p.requests_per_second > 0.0)
                .count()
                == 1
        );
    }

    #[test]
    fn bins_grow_with_latency_and_cover_their_values() {
        for micros in [1u64, 7, 100, 999, 1000, 123_456, 10_000_000] {
            let bin = bin_of(Duration::from_micros(micros));
            assert!(bin_ceiling_ms(bin) * 1000.0 >= micros as f64, "{micros}");
        }
        assert!(bin_of(Duration::from_micros(100)) < bin_of(Duration::from_micros(1000)));
    }
}
