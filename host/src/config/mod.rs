//! What users write down: the host config file and its flags, the limits
//! every request runs under, each service's manifest, the origins a
//! service may reach, and the rules for service names. Pure data and
//! parsing; nothing here runs anything.

pub mod artifacts;
pub mod auth;
pub mod events;
pub mod file;
pub mod limits;
pub mod manifest;
pub mod names;
pub mod origin;
pub mod policy;
pub mod secrets;
pub mod traces;

pub use artifacts::{MAX_MANIFEST_BYTES, MAX_WASM_BYTES, WASM_MAGIC, check_manifest, check_wasm};
pub use events::{Schedule, Subscription};
pub use file::{HostConfig, HttpSettings, ServerConfig};
pub use limits::{Limits, LimitsConfig, Rate, RateKey};
pub use manifest::{ConfigValue, Manifest};
pub use names::{display_name, is_valid_name, name_problem, service_name};
pub use origin::Origin;
pub use policy::HostPolicy;
pub use secrets::Secrets;
pub use traces::{TraceSettings, TracesConfig};
