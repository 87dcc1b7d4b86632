//! A root sampler that records at most so many traces a second.
//!
//! The console's ring keeps the last few thousand spans. Recording every
//! request of a busy host only overwrites it within milliseconds, and
//! recording costs a request several microseconds. Capped, every request
//! of a quiet host is still recorded, and a busy host keeps a steady
//! sample of its traces in the ring for longer; a request past the cap
//! still pays for its trace context (ids and `traceparent`), no more.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota};
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

/// Records a new trace while its quota allows, drops it past that.
/// Clones share one bucket.
#[derive(Clone)]
pub struct RateLimited {
    bucket: Arc<DefaultDirectRateLimiter>,
    quota: Quota,
}

impl RateLimited {
    /// At most `per_second` traces a second, as many at once.
    pub fn per_second(per_second: NonZeroU32) -> RateLimited {
        RateLimited::new(Quota::per_second(per_second))
    }

    /// Traces as `quota` allows them.
    pub fn new(quota: Quota) -> RateLimited {
        RateLimited {
            bucket: Arc::new(DefaultDirectRateLimiter::direct(quota)),
            quota,
        }
    }
}

impl fmt::Debug for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimited")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

impl ShouldSample for RateLimited {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let decision = match self.bucket.check() {
            Ok(()) => SamplingDecision::RecordAndSample,
            Err(_) => SamplingDecision::Drop,
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: parent_context
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::Sampler;

    use super::*;

    fn decide(sampler: &dyn ShouldSample, parent: Option<&Context>) -> SamplingDecision {
        sampler
            .should_sample(
                parent,
                TraceId::from(7),
                "GET /hello",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
    }

    fn caller(sampled: bool) -> Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(9),
            SpanId::from(3),
            flags,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn new_traces_past_the_quota_are_dropped() {
        // Three an hour: none comes back while the test runs.
        let burst = NonZeroU32::new(3).unwrap();
        let quota = Quota::with_period(Duration::from_secs(1200))
            .unwrap()
            .allow_burst(burst);
        let sampler = RateLimited::new(quota);
        let decisions: Vec<_> = (0..10).map(|_| decide(&sampler, None)).collect();
        let recorded = decisions
            .iter()
            .filter(|d| **d == SamplingDecision::RecordAndSample)
            .count();
        assert_eq!(recorded, 3, "{decisions:?}");
        assert!(
            decisions[..3]
                .iter()
                .all(|d| *d == SamplingDecision::RecordAndSample),
            "the first three come first: {decisions:?}"
        );
        // A clone shares the bucket.
        assert_eq!(decide(&sampler.clone(), None), SamplingDecision::Drop);
    }

    #[test]
    fn below_a_parent_based_sampler_a_caller_decides_for_its_trace() {
        let quota = Quota::with_period(Duration::from_secs(3600)).unwrap();
        let sampler = Sampler::parent_based(RateLimited::new(quota));
        assert_eq!(decide(&sampler, None), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&sampler, None), SamplingDecision::Drop);
        // The quota is spent, yet a caller that sampled its trace gets it
        // recorded, and one that did not does not.
        let sampled = caller(true);
        assert_eq!(
            decide(&sampler, Some(&sampled)),
            SamplingDecision::RecordAndSample
        );
        let unsampled = caller(false);
        assert_eq!(decide(&sampler, Some(&unsampled)), SamplingDecision::Drop);
    }
}
