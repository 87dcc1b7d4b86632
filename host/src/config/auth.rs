//! Edge authentication, as written (`[auth]` in a manifest or the host
//! config) and as resolved on a host (keys read from its secrets):
//!
//! ```toml
//! [auth]
//! algorithms = ["ES256"]        # the only ones accepted; never "none"
//! jwks-secret = "auth-jwks"     # a JWKS (RS*, PS*, ES*, EdDSA keys), from the host's secrets
//! # hmac-secret = "jwt-hmac"    # or the shared key of HS256/HS384/HS512
//! issuer = "https://login.example.com"
//! audience = "shop"
//! leeway-seconds = 30           # clock skew allowed on exp and nbf
//! public = ["GET /catalog/:sku", "/health"]   # routes that need no token
//! ```
//!
//! HMAC and public-key algorithms are never mixed in one policy: a key
//! that could be read both ways is how algorithm confusion works. Keys come
//! only from secrets, so none travels in a manifest.

use std::collections::HashSet;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::secrets::{Secrets, secret_name_problem};
use crate::router::RoutePattern;

/// Longest leeway allowed on `exp` and `nbf`.
pub const MAX_LEEWAY_SECONDS: u64 = 3600;

/// The header carrying a verified token's claims to the service, as JSON
/// (ASCII, non-ASCII escaped). The host removes it from every request a
/// client sends, so a service can trust it.
pub const CLAIMS_HEADER: &str = "x-hive-claims";

/// `[auth]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawAuth {
    algorithms: Vec<String>,
    hmac_secret: Option<String>,
    jwks_secret: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    #[serde(default)]
    leeway_seconds: Option<u64>,
    #[serde(default)]
    public: Vec<String>,
}

/// A route that needs no token: a pattern, for one method or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRoute {
    /// The method, or `None` for every method.
    pub method: Option<String>,
    /// The route, as the service lists it.
    pub route: RoutePattern,
}

/// `[auth]`, checked: which algorithms, which secrets hold the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The algorithms accepted.
    pub algorithms: Vec<Algorithm>,
    /// The secret holding the HMAC key, for HS* algorithms.
    pub hmac_secret: Option<String>,
    /// The secret holding a JWKS, for public-key algorithms.
    pub jwks_secret: Option<String>,
    /// The required `iss`, if any.
    pub issuer: Option<String>,
    /// The required `aud`, if any.
    pub audience: Option<String>,
    /// Seconds of clock skew allowed.
    pub leeway_seconds: u64,
    /// Routes that need no token.
    pub public: Vec<PublicRoute>,
}

fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

impl AuthConfig {
    /// Checks `raw`: known algorithms (never `none`), not HMAC and public
    /// keys together, the secret each needs, valid routes.
    pub fn check(raw: RawAuth) -> Result<AuthConfig> {
        if raw.algorithms.is_empty() {
            bail!("[auth] algorithms: name at least one, e.g. [\"ES256\"]");
        }
        let mut algorithms = Vec::new();
        for name in &raw.algorithms {
            if name.eq_ignore_ascii_case("none") {
                bail!("[auth] algorithms: \"none\" accepts unsigned tokens and is refused");
            }
            let algorithm = Algorithm::from_str(name).map_err(|_| {
                anyhow::anyhow!(
                    "[auth] algorithms: {name:?} is not one of HS256, HS384, HS512, RS256, \
                     RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
                )
            })?;
            algorithms.push(algorithm);
        }
        let hmac = algorithms.iter().any(|a| is_hmac(*a));
        let public_key = algorithms.iter().any(|a| !is_hmac(*a));
        if hmac && public_key {
            bail!(
                "[auth] algorithms: HMAC (HS*) and public-key algorithms cannot be accepted \
                 together (a public key would pass as an HMAC secret)"
            );
        }
        if hmac && raw.hmac_secret.is_none() {
            bail!("[auth] hmac-secret: HS* algorithms need the name of the secret holding the key");
        }
        if public_key && raw.jwks_secret.is_none() {
            bail!(
                "[auth] jwks-secret: public-key algorithms need the name of the secret holding a JWKS"
            );
        }
        for (key, name) in [
            ("hmac-secret", &raw.hmac_secret),
            ("jwks-secret", &raw.jwks_secret),
        ] {
            if let Some(problem) = name.as_deref().and_then(secret_name_problem) {
                bail!("[auth] {key}: {problem}");
            }
        }
        let leeway_seconds = raw.leeway_seconds.unwrap_or(30);
        if leeway_seconds > MAX_LEEWAY_SECONDS {
            bail!("[auth] leeway-seconds = {leeway_seconds} is over {MAX_LEEWAY_SECONDS}");
        }
        let public = raw
            .public
            .iter()
            .map(|entry| {
                let (method, route) = match entry.split_once(' ') {
                    Some((method, route)) => (Some(method.to_ascii_uppercase()), route.trim()),
                    None => (None, entry.as_str()),
                };
                let route = route
                    .parse::<RoutePattern>()
                    .with_context(|| format!("[auth] public: invalid route {entry:?}"))?;
                Ok(PublicRoute { method, route })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AuthConfig {
            algorithms,
            hmac_secret: if hmac { raw.hmac_secret } else { None },
            jwks_secret: if public_key { raw.jwks_secret } else { None },
            issuer: raw.issuer,
            audience: raw.audience,
            leeway_seconds,
            public,
        })
    }

    /// The secrets this policy needs.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.hmac_secret
            .iter()
            .chain(self.jwks_secret.iter())
            .map(String::as_str)
    }

    /// The policy with its keys read from `secrets`; `Ok(Err(name))` when a
    /// secret it needs is missing, an error when a key does not parse.
    pub fn resolve(&self, secrets: &Secrets) -> Result<std::result::Result<AuthPolicy, String>> {
        let mut validation = Validation::new(self.algorithms[0]);
        validation.algorithms = self.algorithms.clone();
        validation.leeway = self.leeway_seconds;
        validation.validate_nbf = true;
        validation.required_spec_claims = HashSet::from(["exp".to_string()]);
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let keys = if let Some(name) = &self.hmac_secret {
            let Some(secret) = secrets.resolve(name) else {
                return Ok(Err(name.clone()));
            };
            let key = DecodingKey::from_secret(secret.as_bytes())
                .map_err(|err| anyhow::anyhow!("[auth] the HMAC key in secret {name}: {err}"))?;
            vec![(None, key)]
        } else if let Some(name) = &self.jwks_secret {
            let Some(text) = secrets.resolve(name) else {
                return Ok(Err(name.clone()));
            };
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|err| anyhow::anyhow!("[auth] secret {name} is not a JWKS: {err}"))?;
            let mut keys = Vec::new();
            for jwk in &set.keys {
                let key = DecodingKey::from_jwk(jwk).map_err(|err| {
                    anyhow::anyhow!("[auth] a key in the JWKS of secret {name}: {err}")
                })?;
                keys.push((jwk.common.key_id.clone(), key));
            }
            if keys.is_empty() {
                bail!("[auth] the JWKS in secret {name} holds no key");
            }
            keys
        } else {
            bail!("[auth] no key to verify with");
        };
        Ok(Ok(AuthPolicy {
            validation,
            keys,
            public: self.public.clone(),
        }))
    }
}

/// An `[auth]` policy with its keys: what the front door verifies with.
pub struct AuthPolicy {
    /// What a token must satisfy.
    pub validation: Validation,
    /// The keys, with their `kid` where the JWKS gave one.
    pub keys: Vec<(Option<String>, DecodingKey)>,
    /// Routes that need no token.
    pub public: Vec<PublicRoute>,
}

impl std::fmt::Debug for AuthPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are not printed, ever.
        f.debug_struct("AuthPolicy")
            .field("algorithms", &self.validation.algorithms)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl AuthPolicy {
    /// Whether `method` on the route `route` needs no token.
    pub fn is_public(&self, method: &str, route: &str) -> bool {
        self.public
            .iter()
            .any(|p| p.route.as_str() == route && p.method.as_deref().is_none_or(|m| m == method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawAuth {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn none_mixing_and_missing_keys_are_refused() {
        for (text, says) in [
            ("algorithms = [\"none\"]", "none"),
            ("algorithms = []", "at least one"),
            ("algorithms = [\"XX1\"]", "not one of"),
            (
                "algorithms = [\"HS256\", \"RS256\"]\nhmac-secret = \"h\"\njwks-secret = \"j\"",
                "together",
            ),
            ("algorithms = [\"HS256\"]", "hmac-secret"),
            ("algorithms = [\"ES256\"]", "jwks-secret"),
            (
                "algorithms = [\"ES256\"]\njwks-secret = \"../etc/passwd\"",
                "invalid secret name",
            ),
            (
                "algorithms = [\"HS256\"]\nhmac-secret = \"h\"\npublic = [\"GET nope\"]",
                "invalid route",
            ),
        ] {
            let err = AuthConfig::check(raw(text)).unwrap_err();
            assert!(format!("{err:#}").contains(says), "{text}: {err:#}");
        }
    }

    #[test]
    fn an_hmac_policy_resolves_from_a_secret_and_knows_its_public_routes() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuthConfig::check(raw(
            "algorithms = [\"HS256\"]\nhmac-secret = \"jwt\"\npublic = [\"GET /hello\", \"/open/...\"]",
        ))
        .unwrap();
        let secrets = Secrets::new(Some(dir.path()));
        assert_eq!(config.resolve(&secrets).unwrap().unwrap_err(), "jwt");
        std::fs::write(dir.path().join("jwt"), "key").unwrap();
        let policy = config.resolve(&secrets).unwrap().unwrap();
        assert!(policy.is_public("GET", "/hello"));
        assert!(!policy.is_public("POST", "/hello"));
        assert!(policy.is_public("DELETE", "/open/..."));
        assert!(!format!("{policy:?}").contains("key\""));
    }
}
