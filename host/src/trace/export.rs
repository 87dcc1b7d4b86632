//! Export over OTLP/HTTP protobuf, off the request path: ending a span
//! only offers it to a bounded queue; a task takes batches off it and
//! hands them to the OpenTelemetry OTLP exporter. A full queue (the
//! collector slow or gone) drops the span, as does an export that fails or
//! times out; both are counted in `hive_trace_spans_dropped_total`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc};

use crate::config::traces::BatchSettings;
use crate::metrics::Metrics;

/// How long shutting down waits for the last batches.
const DRAIN_AT_EXIT: Duration = Duration::from_secs(3);

/// The export queue's sending end and its task.
pub struct Export {
    queue: mpsc::Sender<SpanData>,
    dropped: Counter,
    /// Tells the task to send what it holds now rather than after `delay`.
    flush: Arc<Notify>,
    /// Set while the task holds spans it has taken off the queue.
    busy: Arc<AtomicBool>,
}

/// An exporter to `endpoint` (a `/v1/traces` address), naming `resource`
/// as the spans' source, and its task.
pub fn start(
    endpoint: &str,
    batch: &BatchSettings,
    resource: &Resource,
    metrics: &Metrics,
) -> Result<Export> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(batch.timeout)
        .build()?;
    // Spans do not carry their resource; the exporter adds it to each batch.
    exporter.set_resource(resource);
    let (queue, spans) = mpsc::channel(batch.max_queue);
    let (dropped, exported) = metrics.trace_counters();
    let flush = Arc::new(Notify::new());
    let busy = Arc::new(AtomicBool::new(false));
    let task = Task {
        spans,
        exporter,
        batch: *batch,
        endpoint: endpoint.to_string(),
        dropped: dropped.clone(),
        exported,
        flush: flush.clone(),
        busy: busy.clone(),
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("exporting spans needs a Tokio runtime to run in"))?;
    runtime.spawn(task.run());
    Ok(Export {
        queue,
        dropped,
        flush,
        busy,
    })
}

impl Export {
    /// Queues `span`, or drops and counts it when the queue is full.
    pub fn offer(&self, span: SpanData) {
        if self.queue.try_send(span).is_err() {
            self.dropped.inc();
        }
    }

    /// Has the task export what is queued now, and waits for it, for at
    /// most [`DRAIN_AT_EXIT`].
    pub async fn close(&self) {
        let drained = async {
            loop {
                self.flush.notify_one();
                let empty = self.queue.capacity() == self.queue.max_capacity();
                if empty && !self.busy.load(Ordering::Acquire) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout(DRAIN_AT_EXIT, drained).await;
    }
}

/// What the export task owns.
struct Task {
    spans: mpsc::Receiver<SpanData>,
    exporter: opentelemetry_otlp::SpanExporter,
    batch: BatchSettings,
    endpoint: String,
    dropped: Counter,
    exported: Counter,
    flush: Arc<Notify>,
    busy: Arc<AtomicBool>,
}

impl Task {
    /// Takes batches off the queue: a batch goes once it is full, its
    /// first span has waited `delay`, or a flush is asked for.
    async fn run(mut self) {
        let max = self.batch.max_batch;
        let mut buffer = Vec::with_capacity(max);
        let mut failing = false;
        loop {
            if self.spans.recv_many(&mut buffer, max).await == 0 {
                return;
            }
            self.busy.store(true, Ordering::Release);
            let due = tokio::time::sleep(self.batch.delay);
            tokio::pin!(due);
            while buffer.len() < max {
                let room = max - buffer.len();
                tokio::select! {
                    _ = &mut due => break,
                    _ = self.flush.notified() => break,
                    taken = self.spans.recv_many(&mut buffer, room) => if taken == 0 { break },
                }
            }
            let count = buffer.len() as u64;
            let sent = std::mem::replace(&mut buffer, Vec::with_capacity(max));
            // The exporter has its own timeout; this one also bounds a
            // collector that takes the connection and never answers.
            let outcome =
                tokio::time::timeout(self.batch.timeout, self.exporter.export(sent)).await;
            self.busy.store(false, Ordering::Release);
            match outcome {
                Ok(Ok(())) => {
                    self.exported.inc_by(count);
                    if failing {
                        failing = false;
                        tracing::info!("span export to {} works again", self.endpoint);
                    }
                }
                Ok(Err(err)) => {
                    self.dropped.inc_by(count);
                    self.warn_once(&mut failing, &err.to_string());
                }
                Err(_) => {
                    self.dropped.inc_by(count);
                    self.warn_once(&mut failing, "it did not answer in time");
                }
            }
        }
    }

    /// Says once that exports fail, not once per batch.
    fn warn_once(&self, failing: &mut bool, reason: &str) {
        if !std::mem::replace(failing, true) {
            tracing::warn!(
                "span export to {} failed: {}; spans are dropped and counted \
                 (hive_trace_spans_dropped_total) until it answers",
                self.endpoint,
                crate::logging::escape(reason)
            );
        }
    }
}
