//! What the host itself decides for every service it loads, beside each
//! manifest: where secrets come from, the default `[auth]`, and whether a
//! manifest without `calls` may call anything.

use super::auth::AuthConfig;
use super::secrets::Secrets;

/// The host's side of every service's access rules.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Where secrets are resolved.
    pub secrets: Secrets,
    /// `[auth]` of the host config: every service's unless its manifest
    /// has its own.
    pub auth: Option<AuthConfig>,
    /// `--strict`: a manifest without `calls` may call nothing (otherwise
    /// it may call any service, as before grants existed).
    pub strict_grants: bool,
}
