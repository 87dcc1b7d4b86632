//! How long a failed delivery waits before the next attempt: the
//! subscription's `backoff`, doubling with each attempt up to its
//! `max-backoff`, with jitter (a random point in the upper half), so a
//! burst of failures does not come back as one burst.

use std::time::Duration;

/// The delay after attempt `attempt` (1 for the first) failed.
pub fn delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let full = base.saturating_mul(1 << doublings).min(max);
    let half = full / 2;
    let jitter = half.mul_f64(random_fraction());
    half + jitter
}

/// A number in [0, 1) from the process's random source.
fn random_fraction() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64;
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_within_their_jitter() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(300));
        for (attempt, full) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)] {
            let full = Duration::from_secs(full);
            for _ in 0..50 {
                let d = delay(attempt, base, max);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
    }
}
