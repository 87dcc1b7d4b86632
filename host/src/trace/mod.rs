//! Traces: OpenTelemetry spans for what the host does for a request (the
//! request itself, instantiation, calls between services, key-value
//! operations, outbound HTTP, event publishes and deliveries), carried
//! across services and hosts as W3C Trace Context.
//!
//! Spans are made with the `opentelemetry` SDK. When one ends it goes to
//! the [`Sink`]: into the host's ring of recent spans (the console's
//! waterfall and `hive trace`, no collector needed) and, when an OTLP
//! endpoint is set, onto a bounded queue a task exports from in batches,
//! off the request path. A full queue or a failed export drops spans and
//! counts them; no request ever waits on the collector.

mod call_spans;
mod export;
mod propagation;
mod rate_limited;
mod recent;
mod scope;
mod sink;

use std::borrow::Cow;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{SpanBuilder, SpanContext, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, ShouldSample};

pub use call_spans::{CallSite, CallSpans};
pub use propagation::{TRACEPARENT, TRACESTATE, extract, extract_pairs, inject_pairs, traceparent};
pub use recent::{EdgeLatency, KEPT_SPANS, REQUEST_ID, Recent};
pub use scope::{HostSpan, SpanScope};

use crate::config::TraceSettings;
use crate::config::traces::{Root, SamplerChoice};
use crate::metrics::Metrics;
use rate_limited::RateLimited;
use sink::Sink;

/// A host's tracer and where its finished spans go.
pub struct Tracing {
    /// Holds its provider, so the provider lives as long as this does.
    tracer: SdkTracer,
    sink: Arc<Sink>,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing").finish_non_exhaustive()
    }
}

impl Tracing {
    /// The tracer `settings` describe, or `None` when traces are off.
    /// Exporting needs a Tokio runtime: its task is spawned here.
    pub fn start(settings: &TraceSettings, metrics: &Metrics) -> Result<Option<Arc<Tracing>>> {
        if !settings.enabled {
            return Ok(None);
        }
        let resource = Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .with_attributes(
                settings
                    .resource
                    .iter()
                    .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
            )
            .build();
        let export = match &settings.endpoint {
            Some(endpoint) => Some(
                export::start(endpoint, &settings.batch, &resource, metrics)
                    .with_context(|| format!("exporting spans to {endpoint}"))?,
            ),
            None => None,
        };
        let sink = Arc::new(Sink::new(Recent::new(recent::KEPT_SPANS), export));
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler(settings.sampler))
            .with_resource(resource)
            .with_span_processor(sink::Processor(sink.clone()))
            .build();
        let tracer = provider.tracer("hive");
        Ok(Some(Arc::new(Tracing { tracer, sink })))
    }

    /// A span that may start a trace: its parent, if any, came from
    /// outside (a client's `traceparent`, an event's metadata), and the
    /// sampler decides. The span exists even when not recorded, so its
    /// context still travels on (with the sampled flag off).
    pub fn root(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: Option<&SpanContext>,
    ) -> HostSpan {
        let cx = match parent {
            Some(parent) => Context::new().with_remote_span_context(parent.clone()),
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(name).with_kind(kind);
        HostSpan::new(self.tracer.build_with_context(builder, &cx))
    }

    /// A span below `parent`, a span of this host's; `None` when the parent
    /// is not recorded (its children would not be either).
    pub fn child(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: &SpanContext,
    ) -> Option<HostSpan> {
        if !parent.is_sampled() {
            return None;
        }
        let cx = Context::new().with_remote_span_context(parent.clone());
        let builder = SpanBuilder::from_name(name).with_kind(kind);
        Some(HostSpan::new(self.tracer.build_with_context(builder, &cx)))
    }

    /// The host's recent spans.
    pub fn recent(&self) -> &Recent {
        self.sink.recent()
    }

    /// Ends the tracer: spans still queued are exported, for at most a
    /// few seconds.
    pub async fn shutdown(&self) {
        self.sink.close().await;
    }
}

fn sampler(choice: SamplerChoice) -> Box<dyn ShouldSample> {
    let root = |root: Root| -> Box<dyn ShouldSample> {
        match root {
            Root::AlwaysOn => Box::new(Sampler::AlwaysOn),
            Root::AlwaysOff => Box::new(Sampler::AlwaysOff),
            Root::Ratio(ratio) => Box::new(Sampler::TraceIdRatioBased(ratio)),
            Root::PerSecond(rate) => Box::new(RateLimited::per_second(rate)),
        }
    };
    match choice {
        SamplerChoice::AlwaysOn => Box::new(Sampler::AlwaysOn),
        SamplerChoice::AlwaysOff => Box::new(Sampler::AlwaysOff),
        SamplerChoice::Ratio(ratio) => Box::new(Sampler::TraceIdRatioBased(ratio)),
        SamplerChoice::ParentBased(inner) => Box::new(Sampler::parent_based(root(inner))),
    }
}
