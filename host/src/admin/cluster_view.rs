//! `GET /cluster` and `POST /cluster/adopt`: where this host stands with
//! its cluster, and the operator's way to make this host's folder the
//! whole cluster after Redis lost its data.

use hyper::StatusCode;
use serde_json::json;

use super::error;
use crate::cluster::Cluster;
use crate::http::body::HttpResponse;
use crate::http::problem::json_response;

/// This host's standing, with the hosts that report.
pub async fn standing(cluster: &Cluster) -> HttpResponse {
    let hosts = cluster.hosts().await.ok();
    json_response(
        StatusCode::OK,
        &json!({
            "host": cluster.host_id,
            "standing": cluster.standing(),
            "hosts": hosts,
        }),
    )
}

/// Publishes this host's folder as the whole cluster.
pub async fn adopt(cluster: &Cluster) -> HttpResponse {
    match cluster.adopt().await {
        Ok((id, version)) => {
            json_response(StatusCode::OK, &json!({ "id": id, "version": version }))
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("{err:#}")),
    }
}
