//! `hive:service/config`: a service reads the `[config]` table of its own
//! manifest, and nothing else.

use crate::bindings::hive::service::config::Host;
use crate::state::InstanceState;

impl Host for InstanceState {
    fn get(&mut self, key: String) -> Option<String> {
        self.service.config.get(&key).cloned()
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.service
            .config
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}
