//! Where every finished span goes: the host's ring of recent spans, and
//! the export queue when there is one. One processor does both, so a span
//! is copied once, and only when it is exported.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::export::Export;
use super::recent::Recent;

/// The ring and the optional export queue.
pub struct Sink {
    recent: Recent,
    export: Option<Export>,
}

impl Sink {
    pub fn new(recent: Recent, export: Option<Export>) -> Sink {
        Sink { recent, export }
    }

    pub fn recent(&self) -> &Recent {
        &self.recent
    }

    /// Stops taking spans for export and waits briefly for the queue to
    /// drain.
    pub async fn close(&self) {
        if let Some(export) = &self.export {
            export.close().await;
        }
    }
}

/// The SDK's handle on the [`Sink`].
#[derive(Clone)]
pub struct Processor(pub Arc<Sink>);

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hive span sink")
    }
}

impl SpanProcessor for Processor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if let Some(export) = &self.0.export {
            export.offer(span.clone());
        }
        self.0.recent.push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
