//! `wasi:config/store` in the three versions components are built with
//! (`0.2.0-rc.1`: wasmtime's crate and wasmCloud v2; `0.2.0-draft`, with
//! its older `runtime` interface: wasmCloud v1; `0.2.0-draft-2024-09-27`:
//! Spin), all reading the manifest's `[config]` with secrets resolved, the
//! same values `hive:service/config` serves.

use wasmtime::component::{HasSelf, Linker};

use super::bindings::{config_2024_09_27, config_draft, config_draft_runtime, config_rc};
use super::config::ConfigCtx;

/// One `Host` impl per version: the interfaces are the same, their
/// generated types are not.
macro_rules! serve_config {
    ($($interface:ident :: $error:ident),* $(,)?) => {$(
        impl $interface::Host for ConfigCtx {
            fn get(&mut self, key: String) -> Result<Option<String>, $interface::$error> {
                Ok(self.value(&key))
            }

            fn get_all(&mut self) -> Result<Vec<(String, String)>, $interface::$error> {
                Ok(self.pairs())
            }
        }
    )*};
}

serve_config!(
    config_rc::Error,
    config_draft::Error,
    config_draft_runtime::ConfigError,
    config_2024_09_27::Error,
);

/// Links every `wasi:config` version to the [`ConfigCtx`] `get` finds.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ConfigCtx,
) -> wasmtime::Result<()> {
    config_rc::add_to_linker::<T, HasSelf<ConfigCtx>>(linker, get)?;
    config_draft::add_to_linker::<T, HasSelf<ConfigCtx>>(linker, get)?;
    config_draft_runtime::add_to_linker::<T, HasSelf<ConfigCtx>>(linker, get)?;
    config_2024_09_27::add_to_linker::<T, HasSelf<ConfigCtx>>(linker, get)
}
