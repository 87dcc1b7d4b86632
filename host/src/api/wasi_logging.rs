//! `wasi:logging/logging`, versioned `0.1.0-draft` and unversioned (both
//! in use by wasmCloud components): lines go to Hive's log exactly as
//! `hive:service/log` lines do, tagged with the service and request id.
//! The guest's context comes first in the line; `critical` is an error.

use wasmtime::component::{HasSelf, Linker};

use super::bindings::log::{self, Level};
use super::bindings::{logging_draft, logging_unversioned};
use super::log::LogCtx;

/// One `Host` impl per version: same levels, different generated types.
macro_rules! serve_logging {
    ($($interface:ident),* $(,)?) => {$(
        impl $interface::Host for LogCtx {
            fn log(&mut self, level: $interface::Level, context: String, message: String) {
                use $interface::Level as From;
                let level = match level {
                    From::Trace => Level::Trace,
                    From::Debug => Level::Debug,
                    From::Info => Level::Info,
                    From::Warn => Level::Warn,
                    From::Error | From::Critical => Level::Error,
                };
                let line = if context.is_empty() {
                    message
                } else {
                    format!("{context}: {message}")
                };
                log::Host::log(self, level, line);
            }
        }
    )*};
}

serve_logging!(logging_draft, logging_unversioned);

/// Links both `wasi:logging` names to the [`LogCtx`] `get` finds.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut LogCtx,
) -> wasmtime::Result<()> {
    logging_draft::add_to_linker::<T, HasSelf<LogCtx>>(linker, get)?;
    logging_unversioned::add_to_linker::<T, HasSelf<LogCtx>>(linker, get)
}
