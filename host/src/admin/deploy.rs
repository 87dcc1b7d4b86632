//! `PUT` and `DELETE /components/{name}`: deploying over HTTP is writing
//! into the services folder, atomically, so the folder watcher deploys the
//! file exactly as if it had been copied there.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use super::error;
use crate::config::{Manifest, display_name, is_valid_name};
use crate::digest::file_digest;
use crate::host::Host;
use crate::http::body::HttpResponse;
use crate::http::problem::json_response;

/// Largest `.wasm` accepted by `PUT /components/{name}`.
pub const MAX_UPLOAD_BYTES: usize = 256 << 20;

/// Writes an uploaded `.wasm` or manifest into the folder under a hidden
/// temporary name and renames it into place.
pub async fn upload(
    host: &Host,
    name: &str,
    extension: &str,
    req: Request<Incoming>,
) -> HttpResponse {
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
        if let Err(err) = Manifest::parse(&text) {
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
        &json!({
            "name": name,
            "file": display_name(&target),
            "digest": file_digest(&target),
            "bytes": body.len(),
        }),
    )
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
                &format!("could not remove {}: {err}", wasm.display()),
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
    if !is_valid_name(name) {
        return Err(format!(
            "invalid component name {name:?}: use letters, digits, '-' or '_'"
        ));
    }
    Ok(dir.join(format!("{name}.{extension}")))
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
