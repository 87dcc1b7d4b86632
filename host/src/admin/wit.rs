//! `GET /wit`: the WIT packages the served components share. Reading them
//! means decoding every component (an 18 MB Python one among them), so it
//! is done once per deployment and one request at a time: callers asking
//! together wait for one reading and share it, instead of each holding
//! every decoded component in memory at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;

use super::error;
use crate::host::Host;
use crate::http::body::HttpResponse;
use crate::http::problem::json_response;

/// Package name -> WIT text.
type Packages = BTreeMap<String, String>;

/// What a reading was made from: each served component's name and digest.
type Served = Vec<(String, String)>;

/// The last reading, keyed by what it was read from.
#[derive(Default)]
pub struct SharedWit {
    last: tokio::sync::Mutex<Option<(Served, Arc<Packages>)>>,
}

impl SharedWit {
    /// The shared packages of what `host` serves now.
    pub async fn shared(&self, host: &Host) -> HttpResponse {
        let serving: Served = host
            .registry
            .current()
            .services
            .iter()
            .map(|(name, service)| (name.clone(), service.digest().to_string()))
            .collect();
        let mut last = self.last.lock().await;
        if let Some((key, packages)) = last.as_ref()
            && *key == serving
        {
            return json_response(StatusCode::OK, &json!({ "packages": **packages }));
        }
        let dir = host.registry.dir().to_path_buf();
        let read =
            tokio::task::spawn_blocking(move || crate::wit_text::shared_packages_in(&dir)).await;
        match read {
            Ok(Ok(packages)) => {
                let packages = Arc::new(packages);
                *last = Some((serving, packages.clone()));
                json_response(StatusCode::OK, &json!({ "packages": *packages }))
            }
            Ok(Err(err)) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{err:#}")),
            Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
        }
    }
}
