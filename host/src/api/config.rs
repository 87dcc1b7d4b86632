//! `hive:service/config`: a service reads the `[config]` table of its own
//! manifest, and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::config;

/// One service's config values, shared by all its instances.
pub struct ConfigCtx {
    values: Arc<BTreeMap<String, String>>,
}

impl ConfigCtx {
    /// A context serving `values`.
    pub fn new(values: Arc<BTreeMap<String, String>>) -> ConfigCtx {
        ConfigCtx { values }
    }

    /// The value under `key`: what every config interface answers.
    pub(crate) fn value(&self, key: &str) -> Option<String> {
        self.values.get(key).cloned()
    }

    /// Every value, in key order.
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

impl config::Host for ConfigCtx {
    fn get(&mut self, key: String) -> Option<String> {
        self.value(&key)
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.pairs()
    }
}

/// Links `hive:service/config` to the [`ConfigCtx`] that `get` finds in `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ConfigCtx,
) -> wasmtime::Result<()> {
    config::add_to_linker::<T, HasSelf<ConfigCtx>>(linker, get)
}
