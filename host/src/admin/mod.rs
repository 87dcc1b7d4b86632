//! The admin listener, apart from the public one: health and readiness
//! probes, Prometheus metrics, the components' status as JSON, deploy,
//! remove and rollback over HTTP, and the operator console: a page with
//! live charts, the service graph, recent failures and versions, each view
//! also served as JSON for other tools.
//!
//! With a bearer token configured every endpoint but `/health`, `/ready` and
//! the page itself requires it (none: 401, wrong: 403). The listener binds
//! an address other machines can reach only with both a token and TLS (so
//! neither the API nor its token crosses a network in the clear); without
//! a token it stays on loopback, so an unauthenticated admin API is never
//! reachable from another machine; and it answers only
//! requests addressed to a loopback name (so a web page cannot reach it by
//! DNS rebinding) and refuses writes from another origin (so a page cannot
//! deploy through the user's browser).

pub mod cluster_view;
pub mod components;
pub mod deploy;
pub mod events;
pub mod failures;
pub mod graph;
pub mod origin;
pub mod stats;
pub mod traces;
pub mod versions;
pub mod wit;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Result, bail};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioTimer;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::cluster::Cluster;
use crate::host::Host;
use crate::http::body::{HttpResponse, full_body};
use crate::http::listener::serve_connections;
use crate::http::problem::{json_response, problem};

/// The status page: plain HTML and JavaScript, no build step.
const STATUS_PAGE: &str = include_str!("status.html");

/// What the admin endpoints share.
pub struct Admin {
    host: OnceLock<Arc<Host>>,
    /// The cluster this host belongs to, if any: deploys go through it.
    cluster: OnceLock<Arc<Cluster>>,
    token: Option<String>,
    /// The address the listener is bound to, for checking `Host` headers.
    bound: OnceLock<SocketAddr>,
    uploads: deploy::Uploads,
    /// `GET /wit`, read once per deployment.
    wit: wit::SharedWit,
    tls: Option<TlsAcceptor>,
}

impl Admin {
    /// Admin state guarded by `token`, if any, served over `tls`, if given;
    /// an upload must arrive within `upload_timeout`.
    pub fn new(
        token: Option<String>,
        tls: Option<TlsAcceptor>,
        upload_timeout: Duration,
    ) -> Arc<Admin> {
        Arc::new(Admin {
            host: OnceLock::new(),
            cluster: OnceLock::new(),
            token,
            bound: OnceLock::new(),
            uploads: deploy::Uploads::new(upload_timeout),
            wit: wit::SharedWit::default(),
            tls,
        })
    }

    /// Marks the host ready: the initial folder is loaded.
    pub fn set_host(&self, host: Arc<Host>) {
        let _ = self.host.set(host);
    }

    /// Makes deploys and removals go through `cluster`.
    pub fn set_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// Binds the admin listener, refusing a non-loopback address without
    /// both a token and TLS.
    pub async fn bind(&self, address: SocketAddr) -> Result<TcpListener> {
        if !address.ip().is_loopback() {
            let mut missing = Vec::new();
            if self.token.is_none() {
                missing.push("a token (HIVE_ADMIN_TOKEN or --admin-token-file)");
            }
            if self.tls.is_none() {
                missing.push("TLS (--tls-cert and --tls-key)");
            }
            if !missing.is_empty() {
                bail!(
                    "refusing to serve the admin API on {address} without {}: set them, \
                     or listen on a loopback address",
                    missing.join(" and ")
                );
            }
        }
        let listener = TcpListener::bind(address).await.map_err(|err| {
            anyhow::anyhow!("cannot listen on {address} for the admin API: {err}")
        })?;
        if let Ok(bound) = listener.local_addr() {
            let _ = self.bound.set(bound);
        }
        Ok(listener)
    }
}

/// Serves the admin API on `listener`, at most `max_connections` at once,
/// until the process exits.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, max_connections: usize) {
    if let Ok(address) = listener.local_addr() {
        let scheme = if admin.tls.is_some() { "https" } else { "http" };
        tracing::info!("admin API on {scheme}://{address}");
    }
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let tls = admin.tls.clone();
    let handler = move |req| {
        let admin = admin.clone();
        async move { Ok::<_, Infallible>(route(&admin, req).await) }
    };
    serve_connections(
        listener,
        http,
        tls,
        handler,
        max_connections,
        std::future::pending(),
        Duration::ZERO,
    )
    .await;
}

async fn route(admin: &Admin, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    // Probes answer anyone: load balancers and orchestrators send their own
    // Host, and a probe's answer tells nothing worth rebinding for.
    let probe = req.method() == Method::GET && (path == "/health" || path == "/ready");
    if admin.token.is_none()
        && !probe
        && let Err(reason) = origin::check(&req, admin.bound.get(), admin.tls.is_some())
    {
        return error(StatusCode::FORBIDDEN, &reason);
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, [""]) => html(STATUS_PAGE),
        (&Method::GET, ["health"]) => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, ["ready"]) => match admin.host.get() {
            Some(_) => json_response(StatusCode::OK, &json!({"ready": true})),
            None => json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"ready": false})),
        },
        _ => {
            if let Err(response) = authorize(admin, &req) {
                return *response;
            }
            let Some(host) = admin.host.get() else {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "still loading the services folder",
                );
            };
            match (req.method(), segments.as_slice()) {
                (&Method::GET, ["metrics"]) => text(host.metrics().encode()),
                (&Method::GET, ["components"]) => {
                    let hosts = match admin.cluster.get() {
                        Some(cluster) => cluster.hosts().await.ok(),
                        None => None,
                    };
                    json_response(StatusCode::OK, &components::list(host, hosts.as_ref()))
                }
                (&Method::GET, ["wit"]) => admin.wit.shared(host).await,
                (&Method::GET, ["events"]) => events::list(host).await,
                (&Method::POST, ["events", topic]) => {
                    events::publish(host, topic, &query, req).await
                }
                (&Method::GET, ["events", topic, group, "dead"]) => {
                    events::dead(host, topic, group).await
                }
                (&Method::POST, ["events", topic, group, "replay"]) => {
                    events::replay(host, topic, group).await
                }
                (&Method::GET, ["cluster"]) => match admin.cluster.get() {
                    Some(cluster) => cluster_view::standing(cluster).await,
                    None => error(StatusCode::NOT_FOUND, "this host is not in a cluster"),
                },
                (&Method::POST, ["cluster", "adopt"]) => match admin.cluster.get() {
                    Some(cluster) => cluster_view::adopt(cluster).await,
                    None => error(StatusCode::NOT_FOUND, "this host is not in a cluster"),
                },
                (&Method::GET, ["stats"]) => json_response(StatusCode::OK, &stats::stats(host)),
                (&Method::GET, ["graph"]) => {
                    let graph = serde_json::to_value(graph::graph(host)).unwrap_or_default();
                    json_response(StatusCode::OK, &graph)
                }
                (&Method::GET, ["graph.dot"]) => {
                    let mut response = text(graph::dot(&graph::graph(host)));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/vnd.graphviz; charset=utf-8"),
                    );
                    response
                }
                (&Method::GET, ["failures"]) => {
                    let component = parameter(&query, "component");
                    let failures = failures::failures(component.as_deref());
                    json_response(StatusCode::OK, &failures)
                }
                (&Method::GET, ["requests", id, "logs"]) => {
                    json_response(StatusCode::OK, &failures::request_logs(id))
                }
                (&Method::GET, ["requests", id, "trace"]) => traces::trace(host, id),
                (&Method::GET, ["components", name, "versions"]) => versions::list(host, name),
                (&Method::POST, ["components", name, "rollback"]) => {
                    let to = parameter(&query, "to");
                    versions::roll_back(host, admin.cluster.get(), name, to).await
                }
                (&Method::PUT, ["components", name]) => {
                    let cluster = admin.cluster.get();
                    let kind = deploy::Kind::Wasm;
                    admin.uploads.upload(host, cluster, name, kind, req).await
                }
                (&Method::PUT, ["components", name, "manifest"]) => {
                    let cluster = admin.cluster.get();
                    let kind = deploy::Kind::Manifest;
                    admin.uploads.upload(host, cluster, name, kind, req).await
                }
                (&Method::DELETE, ["components", name]) => match admin.cluster.get() {
                    Some(cluster) => deploy::remove_from_cluster(cluster, name).await,
                    None => deploy::remove(host, name),
                },
                _ => error(StatusCode::NOT_FOUND, "no such admin endpoint"),
            }
        }
    }
}

/// Checks the bearer token, when one is configured.
fn authorize(admin: &Admin, req: &Request<Incoming>) -> Result<(), Box<HttpResponse>> {
    let Some(expected) = &admin.token else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <token>`",
        ))),
        Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(Box::new(error(StatusCode::FORBIDDEN, "wrong token"))),
    }
}

/// The value of the query parameter `name`, if given and not empty.
fn parameter(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

/// An admin error: `{"error": message, "status": n}`.
fn error(status: StatusCode, message: &str) -> HttpResponse {
    problem(status, None, message, Value::Null)
}

fn text(body: String) -> HttpResponse {
    let mut response = Response::new(full_body(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn html(body: &'static str) -> HttpResponse {
    let mut response = Response::new(full_body(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
