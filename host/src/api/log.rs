//! `hive:service/log`: guest log calls become host `tracing` events tagged
//! with the service's name and the request id.

use crate::bindings::hive::service::log::{Host, Level};
use crate::state::InstanceState;

/// Longest message kept; longer ones are cut so a guest cannot flood the log.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

impl Host for InstanceState {
    fn log(&mut self, level: Level, message: String) {
        let message = truncate(&message, MAX_MESSAGE_BYTES);
        let component = &*self.service.name;
        let request_id = &*self.request_id;
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
