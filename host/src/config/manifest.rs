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
//! service may reach with outgoing HTTP (none by default), and the topics
//! and schedules it receives ([`super::events`]).
//!
//! Unknown keys are errors rather than being ignored, so a typo such as
//! `route = [...]` is reported instead of silently falling back to defaults.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::events::{self, RawSchedule, RawSubscription, Schedule, Subscription};
use super::limits::LimitsConfig;
use super::origin::Origin;
use crate::router::RoutePattern;

/// A parsed and validated manifest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// Routes the service answers, or `None` for the defaults.
    pub routes: Option<Vec<RoutePattern>>,
    /// Config values exposed through the `config` interface.
    pub config: BTreeMap<String, String>,
    /// Limits that replace the host's defaults for this service.
    pub limits: LimitsConfig,
    /// Origins the service may send HTTP requests to.
    pub allowed_outbound: Vec<Origin>,
    /// Topics it receives (`[[subscribe]]`).
    pub subscriptions: Vec<Subscription>,
    /// Its schedules (`[[schedule]]`).
    pub schedules: Vec<Schedule>,
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
            let text = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Datetime(d) => d.to_string(),
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    bail!("config value {key:?} must be a string, number or boolean")
                }
            };
            config.insert(key, text);
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
                prop_assert_eq!(manifest.config, config);
                prop_assert_eq!(manifest.limits.timeout_ms, Some(timeout));
            }
        }
    }
}
