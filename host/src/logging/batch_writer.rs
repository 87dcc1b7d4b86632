//! Where the log's lines go. The request lines (one per request, the bulk
//! of the log, handed over by `request_line`) are appended to one shared
//! buffer that a thread of its own writes to stderr every few
//! milliseconds; every other line is written at once, after what is
//! buffered, so warnings, errors and a service's own lines are on stderr
//! when the call that logged them returns. Writing each request line as
//! it is made cost a system call and, with several workers logging, a
//! wait on stderr's lock: measured on `/hello`, a third of the request
//! log's cost. Access logs are commonly buffered so; what a `kill -9` can
//! lose is the last [`INTERVAL`] of request lines. [`LogGuard`] writes
//! what is left when the process ends normally.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How often the buffer is written out.
pub const INTERVAL: Duration = Duration::from_millis(20);

/// Buffered bytes past which the line's writer writes the buffer out
/// itself, so a stalled writer thread holds back memory, not the host.
const HIGH_WATER: usize = 1 << 20;

/// The lines not written yet, and the buffer being written.
struct Shared {
    pending: Mutex<Vec<u8>>,
    /// The batch being written, swapped with `pending` (each keeps its
    /// capacity). Held while a batch is taken and written, so batches
    /// leave in the order they were taken.
    out: Mutex<Vec<u8>>,
    /// No writer thread: every line is written out at once.
    immediate: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes out what is pending. A failed write (stderr closed) drops
    /// the batch: there is nowhere else to put it.
    fn flush(&self) {
        let mut batch = lock(&self.out);
        std::mem::swap(&mut *batch, &mut *lock(&self.pending));
        if !batch.is_empty() {
            let _ = io::stderr().lock().write_all(&batch);
            batch.clear();
        }
    }
}

/// The `MakeWriter` handed to the formatting layer.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Writes what is pending when dropped: hold it for the life of `main`.
pub struct LogGuard {
    shared: Arc<Shared>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.flush();
    }
}

/// A writer and its guard; starts the thread that writes batches out.
pub fn batch_writer() -> (BatchWriter, LogGuard) {
    let mut shared = Shared {
        pending: Mutex::new(Vec::with_capacity(64 * 1024)),
        out: Mutex::new(Vec::with_capacity(64 * 1024)),
        immediate: false,
    };
    let (ready, wait) = std::sync::mpsc::channel::<Arc<Shared>>();
    let started = thread::Builder::new()
        .name("hive-log".into())
        .spawn(move || {
            let Ok(shared) = wait.recv() else {
                return;
            };
            loop {
                thread::sleep(INTERVAL);
                shared.flush();
            }
        });
    if let Err(err) = &started {
        // Without the thread, each line is written as it comes.
        let _ = writeln!(io::stderr(), "hive: log writer thread not started: {err}");
        shared.immediate = true;
    }
    let shared = Arc::new(shared);
    let _ = ready.send(shared.clone());
    (
        BatchWriter {
            shared: shared.clone(),
        },
        LogGuard { shared },
    )
}

impl BatchWriter {
    /// Appends a request line (whole, newline included) to be written
    /// with the next batch.
    pub(super) fn write_request_line(&self, line: &[u8]) {
        let _ = Line {
            shared: &self.shared,
            may_wait: true,
        }
        .write(line);
    }
}

/// One event's writer: appends to the shared buffer, and writes it out at
/// once unless the line may wait.
pub struct Line<'a> {
    shared: &'a Shared,
    may_wait: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let full = {
            let mut pending = lock(&self.shared.pending);
            pending.extend_from_slice(bytes);
            !self.may_wait || self.shared.immediate || pending.len() > HIGH_WATER
        };
        if full {
            self.shared.flush();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every line `tracing_subscriber` formats is written at once: the request
/// lines, the only ones that may wait, come through
/// [`BatchWriter::write_request_line`].
impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
            may_wait: false,
        }
    }
}
