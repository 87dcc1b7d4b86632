//! `GET /components/<name>/versions` (the kept versions, newest first, and
//! which one serves) and `POST /components/<name>/rollback[?to=DIGEST]`: an
//! earlier version goes back into the folder and is swapped in like any
//! deploy, so requests in flight finish on the version they started on. In
//! a cluster the version is published and every host follows.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;

use crate::cluster::Cluster;
use crate::config::name_problem;
use crate::digest::short;
use crate::host::Host;
use crate::http::body::HttpResponse;
use crate::http::problem::json_response;

use super::error;

/// `name`'s kept versions.
pub fn list(host: &Host, name: &str) -> HttpResponse {
    if let Some(problem) = name_problem(name) {
        return error(StatusCode::BAD_REQUEST, &problem);
    }
    let deployment = host.registry.current();
    let serving = deployment
        .services
        .get(name)
        .or(deployment.parked.get(name))
        .map(|s| s.digest().to_string());
    let versions = host.registry.versions(name);
    if versions.is_empty() && serving.is_none() {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no component named {name} serves or has kept versions"),
        );
    }
    json_response(
        StatusCode::OK,
        &json!({ "name": name, "serving": serving, "versions": versions }),
    )
}

/// Rolls `name` back to the version whose digest starts with `to`, or to
/// the one before the version serving.
pub async fn roll_back(
    host: &Host,
    cluster: Option<&Arc<Cluster>>,
    name: &str,
    to: Option<String>,
) -> HttpResponse {
    if let Some(problem) = name_problem(name) {
        return error(StatusCode::BAD_REQUEST, &problem);
    }
    let registry = host.registry.clone();
    let service = name.to_string();
    let Some(cluster) = cluster else {
        let rolled =
            tokio::task::spawn_blocking(move || registry.roll_back(&service, to.as_deref())).await;
        return match rolled {
            Ok(Ok(digest)) => {
                json_response(StatusCode::OK, &json!({ "name": name, "serving": digest }))
            }
            Ok(Err(err)) => error(StatusCode::CONFLICT, &format!("{err:#}")),
            Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
        };
    };
    let kept = tokio::task::spawn_blocking(move || registry.kept(&service, to.as_deref())).await;
    let stored = match kept {
        Ok(Ok(stored)) => stored,
        Ok(Err(err)) => return error(StatusCode::CONFLICT, &format!("{err:#}")),
        Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    };
    let digest = stored.version.digest.clone();
    let published = async {
        cluster
            .publish_version(name, &stored.wasm, &digest, stored.manifest)
            .await?;
        cluster.sync().await
    }
    .await;
    match published {
        Ok(_) => {
            tracing::info!(component = %name, digest = %short(&digest), "published a rollback of {name} to the cluster");
            json_response(
                StatusCode::ACCEPTED,
                &json!({ "name": name, "serving": digest, "cluster": true }),
            )
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("{err:#}")),
    }
}
