//! The admin listener, apart from the public one: health and readiness
//! probes, Prometheus metrics, the components' status as JSON, deploy and
//! remove over HTTP, and a status page.
//!
//! With a bearer token configured every endpoint but `/health`, `/ready` and
//! the page itself requires it (none: 401, wrong: 403). Without a token the
//! listener refuses to bind anything but loopback, so an unauthenticated
//! admin API is never reachable from another machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::component::{Service, display_name, is_valid_name};
use crate::host::Host;

/// Largest `.wasm` accepted by `PUT /components/{name}`.
pub const MAX_UPLOAD_BYTES: usize = 256 << 20;

/// The status page: plain HTML and JavaScript, no build step.
const STATUS_PAGE: &str = include_str!("admin/status.html");

type AdminResponse = Response<Full<Bytes>>;

/// What the admin endpoints share.
pub struct Admin {
    host: OnceLock<Arc<Host>>,
    token: Option<String>,
}

impl Admin {
    /// Admin state guarded by `token`, if any.
    pub fn new(token: Option<String>) -> Arc<Admin> {
        Arc::new(Admin {
            host: OnceLock::new(),
            token,
        })
    }

    /// Marks the host ready: the initial folder is loaded.
    pub fn set_host(&self, host: Arc<Host>) {
        let _ = self.host.set(host);
    }

    /// Binds the admin listener, refusing a non-loopback address without a
    /// token.
    pub async fn bind(&self, address: SocketAddr) -> Result<TcpListener> {
        if self.token.is_none() && !address.ip().is_loopback() {
            bail!(
                "refusing to serve the admin API on {address} without a token: set \
                 HIVE_ADMIN_TOKEN or --admin-token-file, or listen on a loopback address"
            );
        }
        TcpListener::bind(address)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {address} for the admin API: {err}"))
    }
}

/// Serves the admin API on `listener` until the process exits.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!("admin API on http://{address}");
    }
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let admin = admin.clone();
        let service = service_fn(move |req| {
            let admin = admin.clone();
            async move { Ok::<_, std::convert::Infallible>(route(&admin, req).await) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

async fn route(admin: &Admin, req: Request<Incoming>) -> AdminResponse {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, [""]) => html(STATUS_PAGE),
        (&Method::GET, ["health"]) => json_response(StatusCode::OK, json!({"status": "ok"})),
        (&Method::GET, ["ready"]) => match admin.host.get() {
            Some(_) => json_response(StatusCode::OK, json!({"ready": true})),
            None => json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"ready": false})),
        },
        _ => {
            if let Err(response) = authorize(admin, &req) {
                return response;
            }
            let Some(host) = admin.host.get() else {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "still loading the services folder",
                );
            };
            match (req.method(), segments.as_slice()) {
                (&Method::GET, ["metrics"]) => text(host.metrics.encode()),
                (&Method::GET, ["components"]) => json_response(StatusCode::OK, components(host)),
                (&Method::PUT, ["components", name]) => upload(host, name, "wasm", req).await,
                (&Method::PUT, ["components", name, "manifest"]) => {
                    upload(host, name, "toml", req).await
                }
                (&Method::DELETE, ["components", name]) => remove(host, name),
                _ => error(StatusCode::NOT_FOUND, "no such admin endpoint"),
            }
        }
    }
}

/// Checks the bearer token, when one is configured.
#[allow(clippy::result_large_err)]
fn authorize(admin: &Admin, req: &Request<Incoming>) -> Result<(), AdminResponse> {
    let Some(expected) = &admin.token else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <token>`",
        )),
        Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(error(StatusCode::FORBIDDEN, "wrong token")),
    }
}

/// Every service, failed file and waiting service, as JSON.
pub fn components(host: &Host) -> Value {
    let deployment = host.registry.current();
    let mut list = Vec::new();
    for service in deployment.services.values() {
        let (state, reason) = match service.waiting.load_full() {
            Some(reason) => ("waiting", Some(reason.to_string())),
            None => ("ready", None),
        };
        list.push(describe(service, state, reason));
    }
    for (name, service) in &deployment.parked {
        if !deployment.services.contains_key(name) {
            let reason = deployment.failures.get(name).map(|f| f.reason.clone());
            list.push(describe(service, "waiting", reason));
        }
    }
    for (name, failure) in &deployment.failures {
        let serving =
            deployment.services.contains_key(name) || deployment.parked.contains_key(name);
        if !serving {
            list.push(json!({
                "name": name,
                "file": display_name(&failure.file),
                "state": "failed",
                "reason": failure.reason,
            }));
        } else if let Some(entry) = list.iter_mut().find(|c| c["name"] == name.as_str()) {
            // The previous version serves; the newest file failed.
            entry["update_failed"] = json!(failure.reason);
        }
    }
    json!({ "components": list })
}

fn describe(service: &Service, state: &str, reason: Option<String>) -> Value {
    let limits = &service.info.limits;
    let loaded_at = service
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    json!({
        "name": service.name(),
        "file": service.file_name(),
        "digest": service.digest,
        "world": service.entry.world(),
        "state": state,
        "reason": reason,
        "routes": service.routes.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "loaded_at": loaded_at,
        "limits": {
            "memory_bytes": limits.memory_bytes,
            "timeout_ms": limits.timeout.as_millis() as u64,
            "concurrency": limits.concurrency,
            "queue_timeout_ms": limits.queue_timeout.as_millis() as u64,
            "request_body_bytes": limits.request_body_bytes,
            "response_body_bytes": limits.response_body_bytes,
        },
        "imports": service.imports.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        "exports": service.exports.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
    })
}

/// Writes an uploaded `.wasm` or manifest into the folder under a hidden
/// temporary name and renames it into place, so the folder watcher deploys
/// it exactly as if it had been copied there.
async fn upload(host: &Host, name: &str, extension: &str, req: Request<Incoming>) -> AdminResponse {
    let target = match target_path(host.registry.dir(), name, extension) {
        Ok(target) => target,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let body = match Limited::new(req.into_body(), MAX_UPLOAD_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(err) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("could not read the upload (limit {MAX_UPLOAD_BYTES} bytes): {err}"),
            );
        }
    };
    if extension == "wasm" && !body.starts_with(b"\0asm") {
        return error(
            StatusCode::BAD_REQUEST,
            "the body is not a WebAssembly file",
        );
    }
    if extension == "toml" {
        let text = String::from_utf8_lossy(&body);
        if let Err(err) = crate::manifest::Manifest::parse(&text) {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid manifest: {err:#}"),
            );
        }
    }
    let temporary = target.with_file_name(format!(".{name}.{extension}.upload"));
    let written = tokio::fs::write(&temporary, &body).await;
    let renamed = match written {
        Ok(()) => tokio::fs::rename(&temporary, &target).await,
        Err(err) => Err(err),
    };
    if let Err(err) = renamed {
        let _ = tokio::fs::remove_file(&temporary).await;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("could not write {}: {err}", target.display()),
        );
    }
    tracing::info!(component = %name, "received {} over the admin API", display_name(&target));
    json_response(
        StatusCode::ACCEPTED,
        json!({
            "name": name,
            "file": display_name(&target),
            "digest": crate::component::file_digest(&target),
            "bytes": body.len(),
        }),
    )
}

/// Removes a component's `.wasm` and manifest; the watcher stops routing it.
fn remove(host: &Host, name: &str) -> AdminResponse {
    let wasm = match target_path(host.registry.dir(), name, "wasm") {
        Ok(path) => path,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    match std::fs::remove_file(&wasm) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return error(StatusCode::NOT_FOUND, &format!("no component named {name}"));
        }
        Err(err) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not remove {}: {err}", wasm.display()),
            );
        }
    }
    let _ = std::fs::remove_file(wasm.with_extension("toml"));
    tracing::info!(component = %name, "removed {name}.wasm over the admin API");
    json_response(StatusCode::OK, json!({ "removed": name }))
}

/// `dir/name.extension`, after checking `name` is a valid service name (so
/// it can never point outside the folder).
fn target_path(dir: &Path, name: &str, extension: &str) -> Result<PathBuf, String> {
    if !is_valid_name(name) {
        return Err(format!(
            "invalid component name {name:?}: use letters, digits, '-' or '_'"
        ));
    }
    Ok(dir.join(format!("{name}.{extension}")))
}

fn json_response(status: StatusCode, body: Value) -> AdminResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> AdminResponse {
    json_response(
        status,
        json!({ "error": message, "status": status.as_u16() }),
    )
}

fn text(body: String) -> AdminResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn html(body: &'static str) -> AdminResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::target_path;
    use std::path::Path;

    #[test]
    fn upload_names_cannot_escape_the_folder() {
        let dir = Path::new("/srv/deploy");
        assert_eq!(
            target_path(dir, "hello", "wasm").unwrap(),
            Path::new("/srv/deploy/hello.wasm")
        );
        for bad in ["..", "../x", "a/b", "", ".hidden", "sp ace"] {
            assert!(target_path(dir, bad, "wasm").is_err(), "{bad:?} accepted");
        }
    }
}
