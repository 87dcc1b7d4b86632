//! Many hosts, one deployment, kept in Redis: no consensus or gossip of
//! our own, only an engine people already run.
//!
//! Redis holds the set of deployed components (`hive:cluster:components`,
//! name -> digest and manifest text), each `.wasm` once by its SHA-256
//! (`hive:cluster:wasm:<digest>`), a version counter bumped by every change
//! (`hive:cluster:version`), and each host's report of what it serves
//! (`hive:cluster:hosts`). A deploy or removal on any host's admin API
//! writes there, in one transaction, after this host has loaded the
//! component itself (a broken one is refused before it is published).
//!
//! Every host polls the version every 250 ms and, when it moved (or after
//! it lost Redis and got it back), reconciles its own services folder to
//! the set ([`folder`]): files are written atomically and the existing
//! watcher, validation, compile cache and all-or-nothing swaps do the rest.
//! A starting host reconciles before it loads, so it reports ready only
//! once it serves the cluster's set.

pub mod folder;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::kv::redis::{connect, redact};
use crate::registry::Registry;

/// How often a host looks for changes.
pub const POLL: Duration = Duration::from_millis(250);

/// How often a host reports what it serves; a report older than
/// [`STALE`] is a host that is gone.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Age past which a host's report no longer counts.
pub const STALE: Duration = Duration::from_secs(10);

const COMPONENTS: &str = "hive:cluster:components";
const VERSION: &str = "hive:cluster:version";
const HOSTS: &str = "hive:cluster:hosts";

fn blob_key(digest: &str) -> String {
    format!("hive:cluster:wasm:{digest}")
}

/// One deployed component as the cluster records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// SHA-256 of its `.wasm`, when one was deployed.
    pub digest: Option<String>,
    /// Its manifest's text, when it has one.
    pub manifest: Option<String>,
}

/// What one host reported it serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostReport {
    /// The host's public address.
    pub listen: String,
    /// Component name -> digest it serves.
    pub served: BTreeMap<String, String>,
    /// When it reported (Unix seconds).
    pub at: u64,
}

/// This host's membership of a cluster.
pub struct Cluster {
    connection: ConnectionManager,
    dir: PathBuf,
    /// How this host names itself in reports (`hostname:port`).
    pub host_id: String,
    listen: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Cluster {
    /// Joins the cluster in Redis at `url`, for the services folder `dir`,
    /// reporting as `host_id` serving at `listen`.
    pub async fn connect(
        url: &str,
        dir: &Path,
        host_id: String,
        listen: String,
    ) -> Result<Cluster> {
        let connection = connect(url)
            .await
            .with_context(|| format!("joining the cluster at {}", redact(url)))?;
        Ok(Cluster {
            connection,
            dir: dir.to_path_buf(),
            host_id,
            listen,
        })
    }

    /// The cluster's components, by name.
    pub async fn records(&self) -> Result<BTreeMap<String, Record>> {
        let mut connection = self.connection.clone();
        let raw: BTreeMap<String, String> = connection
            .hgetall(COMPONENTS)
            .await
            .context("reading the cluster's components")?;
        Ok(raw
            .into_iter()
            .filter_map(|(name, json)| match serde_json::from_str(&json) {
                Ok(record) => Some((name, record)),
                Err(err) => {
                    tracing::warn!(component = %name, "ignoring an unreadable cluster record: {err}");
                    None
                }
            })
            .collect())
    }

    /// The version counter, bumped by every change.
    pub async fn version(&self) -> Result<u64> {
        let mut connection = self.connection.clone();
        let version: Option<u64> = connection.get(VERSION).await?;
        Ok(version.unwrap_or(0))
    }

    /// A `.wasm` by its digest.
    pub async fn wasm(&self, digest: &str) -> Result<Vec<u8>> {
        let mut connection = self.connection.clone();
        let bytes: Option<Vec<u8>> = connection.get(blob_key(digest)).await?;
        bytes.with_context(|| format!("the cluster has no .wasm with digest {digest}"))
    }

    /// Publishes `wasm` (whose SHA-256 is `digest`) as `name`'s component.
    pub async fn publish_wasm(&self, name: &str, wasm: &[u8], digest: &str) -> Result<()> {
        let mut record = self.records().await?.remove(name).unwrap_or_default();
        record.digest = Some(digest.to_string());
        self.write(name, Some(&record), Some((digest, wasm))).await
    }

    /// Publishes (or, with `None`, withdraws) `name`'s manifest.
    pub async fn publish_manifest(&self, name: &str, text: Option<String>) -> Result<()> {
        let mut record = self.records().await?.remove(name).unwrap_or_default();
        record.manifest = text;
        self.write(name, Some(&record), None).await
    }

    /// Removes `name` from the cluster; returns whether it was there.
    pub async fn remove(&self, name: &str) -> Result<bool> {
        let existed = self.records().await?.contains_key(name);
        self.write(name, None, None).await?;
        Ok(existed)
    }

    /// Writes `name`'s record (or deletes it), with a new `.wasm` if given,
    /// and bumps the version, in one transaction; then drops `.wasm` blobs
    /// no record uses any more.
    async fn write(
        &self,
        name: &str,
        record: Option<&Record>,
        wasm: Option<(&str, &[u8])>,
    ) -> Result<()> {
        let mut connection = self.connection.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        if let Some((digest, bytes)) = wasm {
            pipe.set(blob_key(digest), bytes).ignore();
        }
        match record {
            Some(record) => {
                pipe.hset(COMPONENTS, name, serde_json::to_string(record)?)
                    .ignore();
            }
            None => {
                pipe.hdel(COMPONENTS, name).ignore();
            }
        }
        pipe.incr(VERSION, 1).ignore();
        pipe.query_async::<()>(&mut connection)
            .await
            .with_context(|| format!("publishing {name} to the cluster"))?;
        self.drop_unused_blobs().await;
        Ok(())
    }

    /// Deletes the `.wasm` blobs no record points at (best effort).
    async fn drop_unused_blobs(&self) {
        let Ok(records) = self.records().await else {
            return;
        };
        let used: Vec<String> = records.values().filter_map(|r| r.digest.clone()).collect();
        let mut connection = self.connection.clone();
        let Ok(mut blobs) = connection
            .scan_match::<_, String>("hive:cluster:wasm:*")
            .await
        else {
            return;
        };
        let mut unused = Vec::new();
        while let Some(Ok(key)) = blobs.next_item().await {
            let digest = key.trim_start_matches("hive:cluster:wasm:");
            if !used.iter().any(|d| d == digest) {
                unused.push(key);
            }
        }
        drop(blobs);
        if !unused.is_empty() {
            let _: Result<(), _> = connection.del(unused).await;
        }
    }

    /// Brings the services folder to the cluster's set; returns how many
    /// files changed.
    pub async fn reconcile(&self) -> Result<usize> {
        let records = self.records().await?;
        folder::reconcile(self, &self.dir, &records).await
    }

    /// Reports what `registry` serves now.
    pub async fn heartbeat(&self, registry: &Registry) -> Result<()> {
        let served = registry
            .current()
            .services
            .iter()
            .map(|(name, service)| (name.clone(), service.digest().to_string()))
            .collect();
        let report = HostReport {
            listen: self.listen.clone(),
            served,
            at: now(),
        };
        let mut connection = self.connection.clone();
        let _: () = connection
            .hset(HOSTS, &self.host_id, serde_json::to_string(&report)?)
            .await?;
        Ok(())
    }

    /// The hosts that reported lately, by id.
    pub async fn hosts(&self) -> Result<BTreeMap<String, HostReport>> {
        let mut connection = self.connection.clone();
        let raw: BTreeMap<String, String> = connection.hgetall(HOSTS).await?;
        let fresh_after = now().saturating_sub(STALE.as_secs());
        Ok(raw
            .into_iter()
            .filter_map(|(id, json)| {
                let report: HostReport = serde_json::from_str(&json).ok()?;
                (report.at >= fresh_after).then_some((id, report))
            })
            .collect())
    }

    /// Reconciles until it succeeds (Redis may still be starting): a host
    /// must not report ready before it serves the cluster's set.
    pub async fn catch_up(&self) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.reconcile().await {
                Ok(changed) => {
                    tracing::info!(
                        "caught up with the cluster ({changed} file(s) written or removed)"
                    );
                    return;
                }
                Err(err) => {
                    tracing::warn!("cannot reach the cluster yet: {err:#}; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Keeps this host in step: reconciles whenever the version moves (or
    /// Redis comes back after a loss), and reports what it serves.
    pub fn spawn(self: Arc<Cluster>, registry: Arc<Registry>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut seen: Option<u64> = None;
            let mut last_report = std::time::Instant::now() - HEARTBEAT;
            let mut lost = false;
            loop {
                tokio::time::sleep(POLL).await;
                match self.version().await {
                    Ok(version) if seen != Some(version) || lost => match self.reconcile().await {
                        Ok(changed) => {
                            if changed > 0 {
                                tracing::info!(
                                    "cluster version {version}: {changed} file(s) changed"
                                );
                            }
                            if lost {
                                tracing::info!("the cluster is reachable again; caught up");
                            }
                            seen = Some(version);
                            lost = false;
                        }
                        Err(err) => tracing::warn!("reconciling with the cluster: {err:#}"),
                    },
                    Ok(_) => {}
                    Err(err) => {
                        if !lost {
                            tracing::warn!("lost the cluster: {err:#}; serving what is deployed");
                        }
                        lost = true;
                    }
                }
                if last_report.elapsed() >= HEARTBEAT && self.heartbeat(&registry).await.is_ok() {
                    last_report = std::time::Instant::now();
                }
            }
        })
    }
}
