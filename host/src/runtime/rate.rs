//! A service's rate limit (`[limits] rate`, `burst`, `rate-key`): a GCRA
//! bucket per key (the whole service, a client address, or a claim's
//! value), kept in this host's memory. In a cluster each host keeps its
//! own buckets, so the limit holds per host (N hosts behind a balancer let
//! up to N times the rate through).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{Rate, RateKey};

/// Keys kept before the idle ones are dropped.
const MAX_KEYS: usize = 100_000;

/// One service's buckets.
pub struct RateGate {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    /// What a request is counted by.
    pub key: RateKey,
}

impl std::fmt::Debug for RateGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateGate")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RateGate {
    /// Buckets for `rate`.
    pub fn new(rate: &Rate) -> RateGate {
        let each = rate.period / rate.count.max(1);
        let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(each.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        RateGate {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            key: rate.key.clone(),
        }
    }

    /// Lets one request counted as `key` through, or says how long until
    /// one would be.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.limiter.len() > MAX_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_key() {
        let gate = RateGate::new(&Rate {
            count: 10,
            period: Duration::from_secs(1),
            burst: 3,
            key: RateKey::Client,
        });
        for _ in 0..3 {
            assert!(gate.check("a").is_ok());
        }
        let wait = gate.check("a").unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(gate.check("b").is_ok(), "another key has its own bucket");
        std::thread::sleep(Duration::from_millis(120));
        assert!(gate.check("a").is_ok());
    }
}
