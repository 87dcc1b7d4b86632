//! `PUT` and `DELETE /components/{name}`: deploying over HTTP is writing
//! into the services folder, atomically, so the folder watcher deploys the
//! file exactly as if it had been copied there.
//!
//! An upload is streamed to a temporary file of its own (so two uploads of
//! one name never mix), hashed as it streams, refused at once when its
//! announced length is over the limit, cut off when it takes longer than
//! the body deadline, and checked (WebAssembly magic; a manifest must be
//! UTF-8 and parse) before it is renamed into place. Parsing runs off the
//! async workers, and only a few uploads run at once, so deploying never
//! stalls public traffic.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::error;
use crate::cluster::Cluster;
use crate::config::{
    MAX_MANIFEST_BYTES, MAX_WASM_BYTES, Manifest, WASM_MAGIC, check_manifest, display_name,
    name_problem,
};
use crate::host::Host;
use crate::http::body::HttpResponse;
use crate::http::problem::{close_if_unread, json_response};

/// Uploads that may stream at once; more get 503.
pub const MAX_CONCURRENT_UPLOADS: usize = 2;

/// What is being uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A component, `<name>.wasm`.
    Wasm,
    /// Its manifest, `<name>.toml`.
    Manifest,
}

impl Kind {
    fn extension(self) -> &'static str {
        match self {
            Kind::Wasm => "wasm",
            Kind::Manifest => "toml",
        }
    }

    fn limit(self) -> u64 {
        match self {
            Kind::Wasm => MAX_WASM_BYTES,
            Kind::Manifest => MAX_MANIFEST_BYTES,
        }
    }
}

/// The upload side of the admin API: its deadline and its slots.
pub struct Uploads {
    timeout: Duration,
    slots: Arc<Semaphore>,
}

/// Why an upload was refused: the status and what to tell the client.
type Refusal = (StatusCode, String);

impl Uploads {
    /// Uploads that must arrive within `timeout`.
    pub fn new(timeout: Duration) -> Uploads {
        Uploads {
            timeout,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_UPLOADS)),
        }
    }

    /// Receives `req`'s body as `name`'s `kind` and renames it into place;
    /// in a cluster, checks it and publishes it instead, and every host
    /// (this one first) writes it into its folder.
    pub async fn upload(
        &self,
        host: &Host,
        cluster: Option<&Arc<Cluster>>,
        name: &str,
        kind: Kind,
        req: Request<Incoming>,
    ) -> HttpResponse {
        let target = match target_path(host.registry.dir(), name, kind.extension()) {
            Ok(target) => target,
            Err(message) => return refuse_unread(StatusCode::BAD_REQUEST, &message),
        };
        let limit = kind.limit();
        if req.body().size_hint().lower() > limit {
            return refuse_unread(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the upload is over the limit of {limit} bytes"),
            );
        }
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            let mut response = refuse_unread(
                StatusCode::SERVICE_UNAVAILABLE,
                "other uploads are in progress; retry shortly",
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        };
        // A name of its own, so concurrent uploads of one name never share
        // a file; hidden, so the watcher ignores it until the rename.
        let temporary = target.with_file_name(format!(
            ".{name}.{}.{}.upload",
            kind.extension(),
            uuid::Uuid::new_v4().simple()
        ));
        let received = self.receive(req.into_body(), kind, &temporary).await;
        let (digest, bytes) = match received {
            Ok(received) => received,
            Err((status, message)) => {
                let _ = tokio::fs::remove_file(&temporary).await;
                return refuse_unread(status, &message);
            }
        };
        if let Some(cluster) = cluster {
            let published = publish(host, cluster, name, kind, &temporary, &digest).await;
            let _ = tokio::fs::remove_file(&temporary).await;
            if let Err((status, message)) = published {
                return error(status, &message);
            }
            tracing::info!(component = %name, "published {} to the cluster", display_name(&target));
            return json_response(
                StatusCode::ACCEPTED,
                &json!({
                    "name": name,
                    "file": display_name(&target),
                    "digest": digest,
                    "bytes": bytes,
                    "cluster": true,
                }),
            );
        }
        if let Err(err) = tokio::fs::rename(&temporary, &target).await {
            let _ = tokio::fs::remove_file(&temporary).await;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not write {}: {err}", display_name(&target)),
            );
        }
        tracing::info!(component = %name, "received {} over the admin API", display_name(&target));
        json_response(
            StatusCode::ACCEPTED,
            &json!({
                "name": name,
                "file": display_name(&target),
                "digest": digest,
                "bytes": bytes,
            }),
        )
    }

    /// Streams `body` into `path` within the size limit and the deadline,
    /// hashing it; returns its SHA-256 and length once it is checked.
    async fn receive(
        &self,
        mut body: Incoming,
        kind: Kind,
        path: &Path,
    ) -> Result<(String, u64), Refusal> {
        let internal = |err: std::io::Error| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not write the upload: {err}"),
            )
        };
        let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
        let mut hasher = Sha256::new();
        let mut length: u64 = 0;
        // A manifest is small and must be parsed; a .wasm is only checked
        // for its magic bytes, which are kept until there are four.
        let mut kept: Vec<u8> = Vec::new();
        let deadline = Instant::now() + self.timeout;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_elapsed) => {
                    return Err((
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the upload did not arrive within {} ms",
                            self.timeout.as_millis()
                        ),
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(err))) => {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        format!("could not read the upload: {err}"),
                    ));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data): Result<Bytes, _> = frame.into_data() else {
                continue;
            };
            length += data.len() as u64;
            if length > kind.limit() {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the upload is over the limit of {} bytes", kind.limit()),
                ));
            }
            hasher.update(&data);
            if kind == Kind::Manifest || kept.len() < 4 {
                kept.extend_from_slice(&data);
            }
            file.write_all(&data).await.map_err(internal)?;
        }
        file.sync_all().await.map_err(internal)?;
        check(kind, kept).await?;
        let digest = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok((digest, length))
    }
}

/// The checks an upload must pass before it goes live: a `.wasm` starts
/// with the WebAssembly magic; a manifest is UTF-8 and a valid manifest
/// (parsed on the blocking pool: TOML of up to a MiB is real work).
async fn check(kind: Kind, kept: Vec<u8>) -> Result<(), Refusal> {
    match kind {
        Kind::Wasm if !kept.starts_with(WASM_MAGIC) => Err((
            StatusCode::BAD_REQUEST,
            "the body is not a WebAssembly file".to_string(),
        )),
        Kind::Wasm => Ok(()),
        Kind::Manifest => {
            let text = String::from_utf8(kept).map_err(|err| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("invalid manifest: it is not UTF-8 ({err})"),
                )
            })?;
            let parsed = tokio::task::spawn_blocking(move || Manifest::parse(&text)).await;
            match parsed {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) => Err((
                    StatusCode::BAD_REQUEST,
                    format!("invalid manifest: {err:#}"),
                )),
                Err(err) => Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("checking the manifest failed: {err}"),
                )),
            }
        }
    }
}

/// Checks an upload the way the registry would load it and publishes it
/// to the cluster; then this host reconciles at once. A component that does
/// not load is refused here, before any host sees it.
async fn publish(
    host: &Host,
    cluster: &Cluster,
    name: &str,
    kind: Kind,
    received: &Path,
    digest: &str,
) -> Result<(), Refusal> {
    let internal = |err: anyhow::Error| (StatusCode::SERVICE_UNAVAILABLE, format!("{err:#}"));
    let bytes = tokio::fs::read(received)
        .await
        .map_err(|err| internal(err.into()))?;
    match kind {
        Kind::Wasm => {
            let manifest = host.registry.dir().join(format!("{name}.toml"));
            let manifest = tokio::fs::read_to_string(&manifest).await.ok();
            let registry = host.registry.clone();
            let (candidate, service) = (bytes.clone(), name.to_string());
            let checked = tokio::task::spawn_blocking(move || {
                registry.try_load(&service, &candidate, manifest.as_deref())
            })
            .await
            .map_err(|err| internal(err.into()))?;
            if let Err(err) = checked {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("{name}.wasm does not load, so it was not published: {err:#}"),
                ));
            }
            cluster
                .publish_wasm(name, &bytes, digest)
                .await
                .map_err(internal)?;
        }
        Kind::Manifest => {
            let text = String::from_utf8(bytes).map_err(|err| internal(err.into()))?;
            // Checked as a load would check it: with its limits against
            // this host's, and with the `.wasm` it goes with, if any.
            let wasm = host.registry.dir().join(format!("{name}.wasm"));
            let wasm = tokio::fs::read(&wasm).await.ok();
            let registry = host.registry.clone();
            let (candidate, service) = (text.clone(), name.to_string());
            let checked = tokio::task::spawn_blocking(move || match wasm {
                Some(wasm) => registry.try_load(&service, &wasm, Some(&candidate)),
                None => check_manifest(&candidate, registry.limits()).map(|_| ()),
            })
            .await
            .map_err(|err| internal(err.into()))?;
            if let Err(err) = checked {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("{name}'s manifest does not load, so it was not published: {err:#}"),
                ));
            }
            cluster
                .publish_manifest(name, Some(text))
                .await
                .map_err(internal)?;
        }
    }
    cluster.sync().await.map_err(internal)?;
    Ok(())
}

/// Removes a component from the cluster; every host removes its files.
pub async fn remove_from_cluster(cluster: &Cluster, name: &str) -> HttpResponse {
    if let Some(problem) = name_problem(name) {
        return error(StatusCode::BAD_REQUEST, &problem);
    }
    match cluster.remove(name).await {
        Ok(false) => error(StatusCode::NOT_FOUND, &format!("no component named {name}")),
        Ok(true) => {
            if let Err(err) = cluster.sync().await {
                tracing::warn!("reconciling after removing {name}: {err:#}");
            }
            tracing::info!(component = %name, "removed {name} from the cluster");
            json_response(StatusCode::OK, &json!({ "removed": name, "cluster": true }))
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("{err:#}")),
    }
}

/// An error answered before the request body was read to its end: the
/// connection cannot carry another request, so it is closed.
fn refuse_unread(status: StatusCode, message: &str) -> HttpResponse {
    close_if_unread(error(status, message), true)
}

/// Removes a component's `.wasm` and manifest; the watcher stops routing it.
pub fn remove(host: &Host, name: &str) -> HttpResponse {
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
                &format!("could not remove {}: {err}", display_name(&wasm)),
            );
        }
    }
    let _ = std::fs::remove_file(wasm.with_extension("toml"));
    tracing::info!(component = %name, "removed {name}.wasm over the admin API");
    json_response(StatusCode::OK, &json!({ "removed": name }))
}

/// `dir/name.extension`, after checking `name` is a valid service name (so
/// it can never point outside the folder).
fn target_path(dir: &Path, name: &str, extension: &str) -> Result<PathBuf, String> {
    match name_problem(name) {
        Some(problem) => Err(problem),
        None => Ok(dir.join(format!("{name}.{extension}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, check, target_path};
    use std::path::Path;

    #[test]
    fn upload_names_cannot_escape_the_folder() {
        let dir = Path::new("/srv/deploy");
        assert_eq!(
            target_path(dir, "hello", "wasm").unwrap(),
            Path::new("/srv/deploy/hello.wasm")
        );
        let long = "a".repeat(10_000);
        for bad in ["..", "../x", "a/b", "", ".hidden", "sp ace", long.as_str()] {
            assert!(target_path(dir, bad, "wasm").is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn manifests_must_be_utf8_and_valid_and_wasm_must_be_wasm() {
        assert!(
            check(Kind::Manifest, b"routes = [\"/a\"]".to_vec())
                .await
                .is_ok()
        );
        let (status, message) = check(Kind::Manifest, b"routes = [\"/\xff\"]".to_vec())
            .await
            .unwrap_err();
        assert_eq!(status, 400);
        assert!(message.contains("UTF-8"), "{message}");
        assert!(check(Kind::Manifest, b"route = 1".to_vec()).await.is_err());
        assert!(
            check(Kind::Wasm, b"\0asm\x0d\0\x01\0".to_vec())
                .await
                .is_ok()
        );
        assert!(check(Kind::Wasm, b"MZ".to_vec()).await.is_err());
    }
}
