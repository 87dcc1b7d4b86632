//! `wasi:io/error`: the error a guest gets when a stream fails, and its
//! `to-debug-string`. The stock implementation formats the host's error
//! with `{:?}`, which, when `RUST_BACKTRACE` is set in the host's
//! environment, carries the host's Rust backtrace (wasmtime and Tokio
//! frames) into the guest. Hive replaces that one function: the guest gets
//! the message and its causes, and the backtrace goes to the host log only.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;

/// The `wasi:io` version `wasmtime-wasi` links; guests asking for any
/// 0.2.x reach it by semver.
const IO_ERROR_INTERFACE: &str = "wasi:io/error@0.2.12";

/// Replaces `error.to-debug-string`, which `wasmtime_wasi` has already
/// linked, with one that leaves backtraces out.
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker.instance(IO_ERROR_INTERFACE)?.func_wrap(
        "[method]error.to-debug-string",
        |mut store: wasmtime::StoreContextMut<'_, T>, (error,): (Resource<wasmtime::Error>,)| {
            let error = store.data_mut().ctx().table.get(&error)?;
            let full = format!("{error:?}");
            let text = without_backtrace(&full);
            if text.len() < full.len() {
                tracing::debug!("a guest read a stream error; in full: {full}");
            }
            Ok((text.to_string(),))
        },
    );
    linker.allow_shadowing(false);
    defined
}

/// `debug` (an error's `{:?}`) without its `Stack backtrace:` section.
fn without_backtrace(debug: &str) -> &str {
    match debug.find("Stack backtrace:") {
        Some(at) => debug[..at].trim_end(),
        None => debug,
    }
}

#[cfg(test)]
mod tests {
    use super::without_backtrace;

    #[test]
    fn the_backtrace_is_cut_and_the_causes_kept() {
        let debug = "reading incoming body stream\n\nCaused by:\n    hyper error: closed\n    \
                     Stack backtrace:\n       0: wasmtime::capture\n       1: tokio::run";
        let text = without_backtrace(debug);
        assert!(text.ends_with("hyper error: closed"), "{text}");
        assert!(!text.contains("tokio"));
        assert_eq!(without_backtrace("plain"), "plain");
    }
}
