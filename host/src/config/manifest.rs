//! The optional sidecar manifest `<name>.toml` that sits beside `<name>.wasm`.
//!
//! ```toml
//! routes = ["/hello", "/hello/:name"]   # default: ["/<name>", "/<name>/..."]
//!
//! [config]                              # values the service reads via `config.get`
//! greeting = "Hello"
//!
//! [limits]                              # overrides of the host's defaults
//! timeout-ms = 2000
//! ```
//!
//! and `allowed-outbound = ["http://127.0.0.1:9000"]`, the origins the
//! service may reach with outgoing HTTP (none by default), the topics
//! and schedules it receives ([`super::events`]), `public = false` for a
//! service reached only by calls, `calls = ["users"]` for the services it
//! may call, config values that name a secret (`key = { secret = "name" }`,
//! [`super::secrets`]), `[auth]` ([`super::auth`]) and
//! `buckets = ["cache"]`, the named `wasi:keyvalue` buckets (Spin's
//! key-value stores) it may open besides its default one.
//!
//! Unknown keys are errors rather than being ignored, so a typo such as
//! `route = [...]` is reported instead of silently falling back to defaults.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::auth::{AuthConfig, RawAuth};
use super::events::{self, RawSchedule, RawSubscription, Schedule, Subscription};
use super::limits::LimitsConfig;
use super::names::name_problem;
use super::origin::Origin;
use super::secrets::secret_name_problem;
use crate::router::RoutePattern;

/// A parsed and validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Routes the service answers, or `None` for the defaults.
    pub routes: Option<Vec<RoutePattern>>,
    /// Config values exposed through the `config` interface.
    pub config: BTreeMap<String, ConfigValue>,
    /// Limits that replace the host's defaults for this service.
    pub limits: LimitsConfig,
    /// Origins the service may send HTTP requests to.
    pub allowed_outbound: Vec<Origin>,
    /// Topics it receives (`[[subscribe]]`).
    pub subscriptions: Vec<Subscription>,
    /// Its schedules (`[[schedule]]`).
    pub schedules: Vec<Schedule>,
    /// Whether its routes are on the public listener (`public = false`:
    /// reached only through calls).
    pub public: bool,
    /// The services it may call and link typed imports to, when the
    /// manifest says (`calls = [...]`); `None` when it does not.
    pub calls: Option<Vec<String>>,
    /// Its edge authentication, if its manifest has `[auth]`.
    pub auth: Option<AuthConfig>,
    /// The named buckets (`wasi:keyvalue`, Spin's key-value stores) it
    /// may open besides the default one: each a namespace of its own.
    pub buckets: Vec<String>,
}

/// A config value as the manifest gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigValue {
    /// The value itself.
    Text(String),
    /// The name of a secret each host resolves for itself.
    Secret(String),
}

impl PartialEq<&str> for ConfigValue {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, ConfigValue::Text(text) if text == other)
    }
}

/// The manifest as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawManifest {
    routes: Option<Vec<String>>,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    allowed_outbound: Vec<String>,
    #[serde(default)]
    subscribe: Vec<RawSubscription>,
    #[serde(default)]
    schedule: Vec<RawSchedule>,
    public: Option<bool>,
    calls: Option<Vec<String>>,
    auth: Option<RawAuth>,
    #[serde(default)]
    buckets: Vec<String>,
}

impl Default for Manifest {
    fn default() -> Manifest {
        Manifest {
            routes: None,
            config: BTreeMap::new(),
            limits: LimitsConfig::default(),
            allowed_outbound: Vec::new(),
            subscriptions: Vec::new(),
            schedules: Vec::new(),
            public: true,
            calls: None,
            auth: None,
            buckets: Vec::new(),
        }
    }
}

impl Manifest {
    /// Parses manifest text. Errors say which key or route is wrong.
    pub fn parse(text: &str) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(text).map_err(|err| one_line_error(text, &err))?;

        let routes = match raw.routes {
            None => None,
            Some(routes) => Some(
                routes
                    .iter()
                    .map(|route| {
                        route
                            .parse::<RoutePattern>()
                            .with_context(|| format!("invalid route {route:?}"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };

        let mut config = BTreeMap::new();
        for (key, value) in raw.config {
            let value = match value {
                toml::Value::String(text) => ConfigValue::Text(text),
                toml::Value::Integer(n) => ConfigValue::Text(n.to_string()),
                toml::Value::Float(x) => ConfigValue::Text(x.to_string()),
                toml::Value::Boolean(b) => ConfigValue::Text(b.to_string()),
                toml::Value::Datetime(d) => ConfigValue::Text(d.to_string()),
                toml::Value::Table(table) => {
                    let name = match (table.get("secret"), table.len()) {
                        (Some(toml::Value::String(name)), 1) => name.clone(),
                        _ => bail!("config value {key:?}: a table must be {{ secret = \"name\" }}"),
                    };
                    if let Some(problem) = secret_name_problem(&name) {
                        bail!("config value {key:?}: {problem}");
                    }
                    ConfigValue::Secret(name)
                }
                toml::Value::Array(_) => {
                    bail!(
                        "config value {key:?} must be a string, number, boolean or {{ secret = \"name\" }}"
                    )
                }
            };
            config.insert(key, value);
        }
        let calls = match raw.calls {
            None => None,
            Some(calls) => {
                for name in &calls {
                    if let Some(problem) = name_problem(name) {
                        bail!("calls: {problem}");
                    }
                }
                Some(calls)
            }
        };
        let auth = raw.auth.map(AuthConfig::check).transpose()?;
        for bucket in &raw.buckets {
            if let Some(problem) = bucket_problem(bucket) {
                bail!("buckets: {problem}");
            }
        }

        let allowed_outbound = raw
            .allowed_outbound
            .iter()
            .map(|origin| origin.parse::<Origin>().context("invalid allowed-outbound"))
            .collect::<Result<Vec<_>>>()?;

        Ok(Manifest {
            routes,
            config,
            limits: raw.limits,
            allowed_outbound,
            subscriptions: events::subscriptions(raw.subscribe)?,
            schedules: events::schedules(raw.schedule)?,
            public: raw.public.unwrap_or(true),
            calls,
            auth,
            buckets: raw.buckets,
        })
    }

    /// The routes this service answers: the manifest's, or `/<name>` and
    /// `/<name>/...` when the manifest sets none.
    pub fn routes_for(&self, service_name: &str) -> Result<Vec<RoutePattern>> {
        match &self.routes {
            Some(routes) => Ok(routes.clone()),
            None => default_routes(service_name),
        }
    }
}

/// toml's own message spans several lines with a source excerpt; the host
/// logs one line per problem, so keep the position and the message only.
fn one_line_error(text: &str, err: &toml::de::Error) -> anyhow::Error {
    let message = err.message().trim_end().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            anyhow::anyhow!("line {line}, column {column}: {message}")
        }
        None => anyhow::anyhow!("{message}"),
    }
}

/// Why `name` cannot name a bucket, if it cannot: 1 to 64 letters,
/// digits, `_`, `-` or `.`, and not the default bucket's own names.
pub fn bucket_problem(name: &str) -> Option<String> {
    if name.is_empty() || name == "default" {
        return Some(format!(
            "{name:?} is the default bucket, always open; list only other buckets"
        ));
    }
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.len() > 64 || !name.chars().all(fine) {
        return Some(format!(
            "bucket {name:?} must be 1 to 64 letters, digits, '_', '-' or '.'"
        ));
    }
    None
}

/// `/<name>` and `/<name>/...`.
pub fn default_routes(service_name: &str) -> Result<Vec<RoutePattern>> {
    [format!("/{service_name}"), format!("/{service_name}/...")]
        .iter()
        .map(|route| route.parse::<RoutePattern>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_manifest_uses_default_routes() {
        let manifest = Manifest::parse("").unwrap();
        assert_eq!(manifest.routes, None);
        let routes: Vec<String> = manifest
            .routes_for("foo")
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(routes, ["/foo", "/foo/..."]);
    }

    #[test]
    fn buckets_are_read_and_checked() {
        let manifest = Manifest::parse("buckets = [\"cache\", \"a.b-c_d\"]").unwrap();
        assert_eq!(manifest.buckets, ["cache", "a.b-c_d"]);
        for bad in ["default", "", "a/b", "x y"] {
            let err = Manifest::parse(&format!("buckets = [{bad:?}]")).unwrap_err();
            assert!(err.to_string().starts_with("buckets: "), "{err}");
        }
    }

    #[test]
    fn routes_and_config_are_read() {
        let manifest = Manifest::parse(
            r#"
            routes = ["/a", "/b/:id", "/c/..."]
            [config]
            greeting = "hi"
            port = 8080
            ratio = 0.5
            enabled = true
            "#,
        )
        .unwrap();
        let routes: Vec<String> = manifest
            .routes_for("ignored")
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(routes, ["/a", "/b/:id", "/c/..."]);
        assert_eq!(manifest.config["greeting"], "hi");
        assert_eq!(manifest.config["port"], "8080");
        assert_eq!(manifest.config["ratio"], "0.5");
        assert_eq!(manifest.config["enabled"], "true");
    }

    #[test]
    fn limits_are_read() {
        let manifest = Manifest::parse("[limits]\ntimeout-ms = 50\nmemory-mib = 8").unwrap();
        assert_eq!(manifest.limits.timeout_ms, Some(50));
        assert_eq!(manifest.limits.memory_mib, Some(8));
        assert!(Manifest::parse("[limits]\ntimeout = 50").is_err());
    }

    #[test]
    fn allowed_outbound_origins_are_parsed_and_checked() {
        let manifest = Manifest::parse(r#"allowed-outbound = ["http://127.0.0.1:9000"]"#).unwrap();
        assert_eq!(manifest.allowed_outbound.len(), 1);
        let err = Manifest::parse(r#"allowed-outbound = ["127.0.0.1:9000"]"#).unwrap_err();
        assert!(format!("{err:#}").contains("allowed-outbound"), "{err:#}");
    }

    #[test]
    fn privacy_grants_secrets_and_auth_are_read() {
        let manifest = Manifest::parse(
            "public = false\ncalls = [\"users\"]\n[config]\nkey = { secret = \"payments-key\" }\n\
             [auth]\nalgorithms = [\"HS256\"]\nhmac-secret = \"jwt\"\n",
        )
        .unwrap();
        assert!(!manifest.public);
        assert_eq!(manifest.calls, Some(vec!["users".to_string()]));
        assert_eq!(
            manifest.config["key"],
            ConfigValue::Secret("payments-key".into())
        );
        assert!(manifest.auth.is_some());
        assert!(Manifest::parse("").unwrap().public);
        assert_eq!(Manifest::parse("").unwrap().calls, None);
        for bad in [
            "calls = [\"../x\"]",
            "[config]\nkey = { secret = \"../x\" }",
            "[config]\nkey = { file = \"x\" }",
        ] {
            assert!(Manifest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_route_list_means_no_routes() {
        let manifest = Manifest::parse("routes = []").unwrap();
        assert!(manifest.routes_for("x").unwrap().is_empty());
    }

    #[test]
    fn unknown_key_is_a_one_line_error_naming_it() {
        let err = Manifest::parse("\n  route = [\"/a\"]").unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("unknown field `route`"), "{message}");
        assert!(message.starts_with("line 2, column 3:"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn bad_route_is_an_error_naming_it() {
        let err = Manifest::parse(r#"routes = ["no-slash"]"#).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("no-slash"), "{message}");
    }

    #[test]
    fn nested_config_values_are_rejected() {
        let err = Manifest::parse("[config]\nlist = [1, 2]").unwrap_err();
        assert!(format!("{err:#}").contains("list"), "{err:#}");
    }

    #[test]
    fn invalid_toml_is_an_error() {
        assert!(Manifest::parse("routes = [").is_err());
        assert!(Manifest::parse("routes = \"/a\"").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A route made of literal and parameter segments, maybe ending in
        /// `...`. Parameter names are made unique by their position, as a
        /// route may not name one twice.
        fn route() -> impl Strategy<Value = String> {
            let segment = prop_oneof!["[a-z0-9_-]{1,8}", ":[a-z][a-z0-9_]{0,6}"];
            (proptest::collection::vec(segment, 0..4), any::<bool>()).prop_map(
                |(segments, prefix)| {
                    let segments: Vec<String> = segments
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| {
                            if s.starts_with(':') {
                                format!("{s}{i}")
                            } else {
                                s
                            }
                        })
                        .collect();
                    let mut route = format!("/{}", segments.join("/"));
                    if prefix {
                        route.push_str(if segments.is_empty() { "..." } else { "/..." });
                    }
                    route
                },
            )
        }

        proptest! {
            #[test]
            fn any_text_parses_or_errors_without_panicking(text in "\\PC{0,200}") {
                let _ = Manifest::parse(&text);
            }

            #[test]
            fn written_manifests_read_back_the_same(
                routes in proptest::collection::vec(route(), 0..5),
                config in proptest::collection::btree_map("[a-z][a-z0-9-]{0,10}", "\\PC{0,20}", 0..5),
                timeout in 1u64..3_600_000,
            ) {
                let mut text = format!("routes = {routes:?}\n[limits]\ntimeout-ms = {timeout}\n[config]\n");
                for (key, value) in &config {
                    text.push_str(&format!("{key} = {}\n", toml::Value::String(value.clone())));
                }
                let manifest = Manifest::parse(&text).unwrap();
                let read: Vec<String> = manifest.routes.unwrap().iter().map(|r| r.to_string()).collect();
                prop_assert_eq!(read, routes);
                let expected: BTreeMap<String, ConfigValue> = config
                    .into_iter()
                    .map(|(key, value)| (key, ConfigValue::Text(value)))
                    .collect();
                prop_assert_eq!(manifest.config, expected);
                prop_assert_eq!(manifest.limits.timeout_ms, Some(timeout));
            }
        }
    }
}
