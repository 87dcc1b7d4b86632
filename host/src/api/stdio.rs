//! A guest's stdout and stderr, turned into host log lines.
//!
//! Output is split into lines, each logged with the service's name, the
//! request id and the stream. A per-instance byte budget stops a chatty or
//! hostile guest from flooding the log; past it, output is dropped and one
//! line says so.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::request_id::RequestId;
use crate::logging::guest_text;

/// Most bytes one instance may write to one stream before output is dropped.
pub const OUTPUT_BUDGET_BYTES: usize = 64 * 1024;

/// Longest single log line; a longer run without a newline is split.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// A stdout or stderr sink for one instance. Clones share one line buffer.
#[derive(Clone)]
pub struct GuestOutput {
    inner: Arc<Mutex<LineBuffer>>,
}

struct LineBuffer {
    component: Arc<str>,
    request_id: RequestId,
    stream: &'static str,
    pending: Vec<u8>,
    written: usize,
    truncated: bool,
}

impl GuestOutput {
    /// A sink whose lines are tagged with `component`, `request_id` and
    /// `stream` (`"stdout"` or `"stderr"`).
    pub fn new(component: Arc<str>, request_id: RequestId, stream: &'static str) -> GuestOutput {
        GuestOutput {
            inner: Arc::new(Mutex::new(LineBuffer {
                component,
                request_id,
                stream,
                pending: Vec::new(),
                written: 0,
                truncated: false,
            })),
        }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        // A poisoned lock only means another writer panicked mid-line; the
        // buffer is still usable.
        let mut buffer = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.push(bytes);
    }
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8]) {
        let room = OUTPUT_BUDGET_BYTES.saturating_sub(self.written);
        let kept = &bytes[..bytes.len().min(room)];
        self.written += kept.len();
        for &byte in kept {
            if byte == b'\n' {
                self.emit();
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_LINE_BYTES {
                    self.emit();
                }
            }
        }
        if kept.len() < bytes.len() && !self.truncated {
            self.truncated = true;
            self.emit();
            tracing::warn!(
                target: "guest",
                component = %self.component,
                request_id = %self.request_id.get(),
                stream = self.stream,
                "output beyond {OUTPUT_BUDGET_BYTES} bytes dropped"
            );
        }
    }

    fn emit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let line = String::from_utf8_lossy(&self.pending);
        let line = guest_text(line.strip_suffix('\r').unwrap_or(&line));
        tracing::info!(
            target: "guest",
            component = %self.component,
            request_id = %self.request_id.get(),
            stream = self.stream,
            "{line}"
        );
        self.pending.clear();
    }
}

impl Drop for LineBuffer {
    /// A last line without a trailing newline is still logged.
    fn drop(&mut self) {
        self.emit();
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Writes past the budget are accepted and dropped, so the guest never
        // blocks or fails on logging.
        Ok(MAX_LINE_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
