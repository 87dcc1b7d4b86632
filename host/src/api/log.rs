//! `hive:service/log`: guest log calls become host `tracing` events tagged
//! with the service's name and the request id.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::log::{self, Level};
use super::request_id::RequestId;
use crate::logging::guest_text;

/// Longest message kept; longer ones are cut so a guest cannot flood the log.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What a guest's log lines are tagged with.
pub struct LogCtx {
    component: Arc<str>,
    request_id: RequestId,
}

impl LogCtx {
    /// Lines of `component`, tagged with the request `request_id` holds.
    pub fn new(component: Arc<str>, request_id: RequestId) -> LogCtx {
        LogCtx {
            component,
            request_id,
        }
    }
}

impl log::Host for LogCtx {
    fn log(&mut self, level: Level, message: String) {
        let message = guest_text(truncate(&message, MAX_MESSAGE_BYTES));
        let component = &*self.component;
        let request_id = self.request_id.get();
        let request_id = &*request_id;
        match level {
            Level::Trace => {
                tracing::trace!(target: "guest", component = %component, request_id = %request_id, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "guest", component = %component, request_id = %request_id, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "guest", component = %component, request_id = %request_id, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "guest", component = %component, request_id = %request_id, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "guest", component = %component, request_id = %request_id, "{message}")
            }
        }
    }
}

/// Links `hive:service/log` to the [`LogCtx`] that `get` finds in `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut LogCtx,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, HasSelf<LogCtx>>(linker, get)
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
