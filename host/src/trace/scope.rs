//! The span an instance's host calls hang below, and the spans the host
//! records.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{Span as _, SpanContext, SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::Span;

use super::Tracing;

/// A span the host records; it ends when dropped.
pub struct HostSpan(Span);

impl HostSpan {
    pub(super) fn new(span: Span) -> HostSpan {
        HostSpan(span)
    }

    /// Its context: what its children and the next hop take as parent.
    pub fn context(&self) -> SpanContext {
        self.0.span_context().clone()
    }

    /// Whether it is recorded (attributes on one that is not are wasted).
    pub fn is_recording(&self) -> bool {
        self.0.is_recording()
    }

    /// Sets one attribute.
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if self.0.is_recording() {
            self.0.set_attribute(KeyValue::new(key, value));
        }
    }

    /// Sets one attribute a guest named.
    pub fn set_owned(&mut self, key: String, value: String) {
        if self.0.is_recording() {
            self.0.set_attribute(KeyValue::new(key, value));
        }
    }

    /// Sets several attributes at once (one growth of the span's list).
    pub fn set_all<const N: usize>(&mut self, attributes: [KeyValue; N]) {
        if self.0.is_recording() {
            self.0.set_attributes(attributes);
        }
    }

    /// Renames it, once what it is became known (a request's route).
    pub fn rename(&mut self, name: impl Into<Cow<'static, str>>) {
        if self.0.is_recording() {
            self.0.update_name(name);
        }
    }

    /// Marks it failed: `kind` as `error.type`, `message` as its status and
    /// as an `exception` event, as the semantic conventions have it.
    pub fn fail(&mut self, kind: &str, message: impl Into<Cow<'static, str>>) {
        if !self.0.is_recording() {
            return;
        }
        let message = message.into();
        self.0
            .set_attribute(KeyValue::new("error.type", kind.to_string()));
        self.0.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", kind.to_string()),
                KeyValue::new("exception.message", message.to_string()),
            ],
        );
        self.0.set_status(Status::error(message));
    }
}

/// Where an instance's host calls (kv, calls, outbound HTTP, publishes)
/// put their spans: below the span of the call it is serving. Shared by
/// the instance's contexts and replaced for each call, as a reused
/// instance serves many. Empty when traces are off.
#[derive(Clone, Default)]
pub struct SpanScope(Option<Arc<Shared>>);

struct Shared {
    tracing: Arc<Tracing>,
    current: Mutex<Option<SpanContext>>,
}

impl SpanScope {
    /// A scope on `tracing`, below nothing yet.
    pub fn new(tracing: Option<&Arc<Tracing>>) -> SpanScope {
        SpanScope(tracing.map(|tracing| {
            Arc::new(Shared {
                tracing: tracing.clone(),
                current: Mutex::new(None),
            })
        }))
    }

    /// Puts the next host calls below `parent`.
    pub fn enter(&self, parent: Option<SpanContext>) {
        if let Some(shared) = &self.0 {
            *shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = parent;
        }
    }

    /// The span host calls go below now, sampled or not.
    pub fn current(&self) -> Option<SpanContext> {
        let shared = self.0.as_ref()?;
        shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The producer span of a publish to `topic` (or of a commit of
    /// several, `topic` then `None`) by `component`, and the context its
    /// messages carry: the span's, or the current one's when the span is
    /// not recorded, so a delivery still joins the trace.
    pub fn producer(
        &self,
        name: impl FnOnce() -> String,
        component: &Arc<str>,
        topic: Option<&str>,
    ) -> (Option<HostSpan>, Option<SpanContext>) {
        let Some(parent) = self.current() else {
            return (None, None);
        };
        let mut span = match &self.0 {
            Some(shared) if parent.is_sampled() => {
                shared.tracing.child(name(), SpanKind::Producer, &parent)
            }
            _ => None,
        };
        if let Some(span) = &mut span {
            span.set_all([
                KeyValue::new("messaging.system", "hive"),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("hive.component", component.clone()),
            ]);
            if let Some(topic) = topic {
                span.set("messaging.destination.name", topic.to_string());
            }
        }
        let context = span.as_ref().map_or(parent, HostSpan::context);
        (span, Some(context))
    }

    /// A span for a host call, below the current one; `None` when traces
    /// are off or the current span is not recorded.
    pub fn child(&self, name: impl Into<Cow<'static, str>>, kind: SpanKind) -> Option<HostSpan> {
        let shared = self.0.as_ref()?;
        let parent = self.current()?;
        shared.tracing.child(name, kind, &parent)
    }
}
