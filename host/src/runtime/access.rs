//! Who may reach a service and what it may reach: whether its routes are
//! public, the services it may call, its config with secrets resolved on
//! this host, its edge authentication and its rate limit. Worked out when
//! the service loads, from its manifest and the host's policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;

use super::rate::RateGate;
use crate::config::auth::AuthPolicy;
use crate::config::{ConfigValue, HostPolicy, Limits, Manifest};

/// A service's access rules.
#[derive(Debug, Default)]
pub struct Access {
    /// Its routes are on the public listener (`public = false`: calls only).
    pub public: bool,
    /// The services it may call and take typed imports from; `None`: any.
    pub grants: Option<Vec<String>>,
    /// The secrets it names that this host does not have: it waits.
    pub missing_secrets: Vec<String>,
    /// Every secret it names, so a change of secrets reloads it.
    pub secret_names: Vec<String>,
    /// Its edge authentication.
    pub auth: Option<Arc<AuthPolicy>>,
    /// Its rate limit's buckets.
    pub rate: Option<RateGate>,
}

impl Access {
    /// Whether this service may call `callee` (by name or by a typed
    /// import it provides).
    pub fn may_call(&self, callee: &str) -> bool {
        self.grants
            .as_ref()
            .is_none_or(|grants| grants.iter().any(|g| g == callee))
    }

    /// Why it cannot serve yet for want of a secret, if it cannot.
    pub fn secrets_reason(&self, policy_hint: impl Fn(&str) -> String) -> Option<String> {
        let name = self.missing_secrets.first()?;
        Some(format!(
            "secret {name} is not set on this host ({})",
            policy_hint(name)
        ))
    }
}

/// The access rules of a service with `manifest` under `policy`, and its
/// config values with secrets resolved (values of missing ones left out).
pub fn resolve(
    manifest: &Manifest,
    limits: &Limits,
    policy: &HostPolicy,
) -> Result<(Access, BTreeMap<String, String>)> {
    let mut config = BTreeMap::new();
    let mut missing = Vec::new();
    let mut names = Vec::new();
    for (key, value) in &manifest.config {
        match value {
            ConfigValue::Text(text) => {
                config.insert(key.clone(), text.clone());
            }
            ConfigValue::Secret(name) => {
                names.push(name.clone());
                match policy.secrets.resolve(name) {
                    Some(value) => {
                        config.insert(key.clone(), value);
                    }
                    None => missing.push(name.clone()),
                }
            }
        }
    }
    let auth = match manifest.auth.as_ref().or(policy.auth.as_ref()) {
        None => None,
        Some(auth) => {
            names.extend(auth.secrets().map(str::to_string));
            match auth.resolve(&policy.secrets)? {
                Ok(resolved) => Some(Arc::new(resolved)),
                Err(name) => {
                    missing.push(name);
                    None
                }
            }
        }
    };
    let grants = match &manifest.calls {
        Some(calls) => Some(calls.clone()),
        None if policy.strict_grants => Some(Vec::new()),
        None => None,
    };
    names.sort();
    names.dedup();
    missing.dedup();
    let access = Access {
        public: manifest.public,
        grants,
        missing_secrets: missing,
        secret_names: names,
        auth,
        rate: limits.rate.as_ref().map(RateGate::new),
    };
    Ok((access, config))
}
