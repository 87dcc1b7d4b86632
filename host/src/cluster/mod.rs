//! Many hosts, one deployment, kept in Redis: no consensus or gossip of
//! our own, only an engine people already run.
//!
//! Redis holds the set of deployed components (`hive:cluster:components`,
//! name -> digest and manifest text), each `.wasm` once by its SHA-256
//! (`hive:cluster:wasm:<digest>`), a version counter bumped by every change
//! (`hive:cluster:version`), the cluster's identity (`hive:cluster:id`) and
//! each host's report of what it serves (`hive:cluster:hosts`). A deploy,
//! removal or rollback on any host's admin API is checked by that host
//! (a component that does not load is refused before it is published) and
//! written in one atomic script ([`store`]).
//!
//! Every host polls the identity and version every 250 ms and, when they
//! moved (or after it lost Redis and got it back), syncs: it reads the
//! records, checks each like an upload ([`record`]), decides whether what
//! Redis holds may be followed at all ([`membership`]), and brings its own
//! folder to the set ([`folder`]); the watcher, validation, compile cache
//! and all-or-nothing swaps do the rest. Redis is not trusted: a bad
//! record leaves its component as it was and is logged once, an empty or
//! rewound Redis is refused, and a host that cannot reach Redis serves its
//! own folder ([`follow`]).

pub mod folder;
pub mod follow;
pub mod membership;
pub mod record;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use self::folder::{Blobs, Strays};
use self::membership::{Membership, Verdict};
use self::record::BadRecord;
use self::store::{Applied, Change, Mode};
use crate::config::Limits;
use crate::kv::durability::Durability;
use crate::kv::redis_link::RedisLink;
use crate::registry::Registry;

/// How often a host reports what it serves; a report older than
/// [`STALE`] is a host that is gone.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Age past which a host's report no longer counts.
pub const STALE: Duration = Duration::from_secs(10);

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

/// Where this host stands with its cluster, for `GET /cluster` and the log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Standing {
    /// `connecting`, `following`, `unreachable` (serving the folder as it
    /// was, perhaps stale) or `refusing` (what Redis holds would wipe or
    /// roll back this host; an operator must choose).
    pub state: &'static str,
    /// The cluster this host follows.
    pub id: Option<String>,
    /// The last version this host's folder was brought to.
    pub version: Option<u64>,
    /// Why it is not following, when it is not.
    pub reason: Option<String>,
    /// Records left alone because they failed their checks.
    pub bad_records: Vec<BadRecordView>,
}

/// A bad record as `GET /cluster` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BadRecordView {
    /// The record's name, escaped.
    pub name: String,
    /// Why it was left alone.
    pub reason: String,
}

/// What one sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// The folder follows the cluster; this many files changed.
    Following(usize),
    /// The host refuses what Redis holds (see [`Standing::reason`]).
    Refusing,
}

/// This host's membership of a cluster.
pub struct Cluster {
    /// Connected on first use, so a host can start while Redis is down.
    link: RedisLink,
    dir: PathBuf,
    limits: Limits,
    /// How this host names itself in reports (`hostname:port`).
    pub host_id: String,
    listen: String,
    script: redis::Script,
    standing: Mutex<Standing>,
    /// What was last said about each bad record, so each is logged once.
    complaints: Mutex<BTreeMap<String, String>>,
    /// One sync at a time: the poller's and a deploy's own.
    syncing: tokio::sync::Mutex<()>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Cluster {
    /// A member of the cluster in Redis at `url`, for the services folder
    /// `dir` (whose manifests must fit `limits`), reporting as `host_id`
    /// serving at `listen`. Connects on first use.
    pub fn new(
        url: &str,
        dir: &Path,
        limits: Limits,
        host_id: String,
        listen: String,
    ) -> Result<Cluster> {
        Ok(Cluster {
            link: RedisLink::new(url, false, Durability::Primary)?,
            dir: dir.to_path_buf(),
            limits,
            host_id,
            listen,
            script: store::script(),
            standing: Mutex::new(Standing {
                state: "connecting",
                ..Standing::default()
            }),
            complaints: Mutex::new(BTreeMap::new()),
            syncing: tokio::sync::Mutex::new(()),
        })
    }

    /// The connection, made now if it was not yet.
    async fn connection(&self) -> Result<ConnectionManager> {
        self.link
            .get()
            .await
            .with_context(|| format!("reaching the cluster at {}", self.link.name()))
    }

    /// Where this host stands.
    pub fn standing(&self) -> Standing {
        self.standing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_standing(&self, state: &'static str, reason: Option<String>) {
        let membership = membership::load(&self.dir).ok().flatten();
        let mut standing = self.standing.lock().unwrap_or_else(PoisonError::into_inner);
        standing.state = state;
        standing.reason = reason;
        standing.id = membership.as_ref().map(|m| m.id.clone());
        standing.version = membership.map(|m| m.version);
    }

    /// Marks the cluster unreachable: this host serves its folder as it is.
    pub(crate) fn unreachable(&self, err: &anyhow::Error) {
        let was = self.standing().state;
        self.set_standing("unreachable", Some(format!("{err:#}")));
        if was != "unreachable" {
            tracing::warn!(
                "the cluster is unreachable ({err:#}); serving this host's folder as it is, \
                 which may be stale, until it comes back"
            );
        }
    }

    /// Reads the cluster and brings this host's folder to it, if what
    /// Redis holds may be followed.
    pub async fn sync(&self) -> Result<Synced> {
        let _one_at_a_time = self.syncing.lock().await;
        // A race with another host starting the cluster is settled by the
        // script; the loser reads again and joins.
        for _ in 0..3 {
            let mut connection = self.connection().await?;
            let (head, raw) = store::snapshot(&mut connection).await?;
            let local = membership::load(&self.dir)?;
            let verdict = membership::judge(&head, local.as_ref());
            match verdict {
                Verdict::Refuse(reason) => {
                    let was = self.standing();
                    if was.state != "refusing" || was.reason.as_deref() != Some(&reason) {
                        tracing::error!(
                            "refusing to follow the cluster: {reason}. This host keeps serving \
                             its folder. To make this host's folder the cluster's, run `hive \
                             cluster adopt` against it; to take Redis as it is, restart it with \
                             --cluster-init"
                        );
                    }
                    self.set_standing("refusing", Some(reason));
                    return Ok(Synced::Refusing);
                }
                Verdict::Start => {
                    let id = uuid::Uuid::new_v4().to_string();
                    let applied = self.publish_folder(Mode::Init, &id, 0).await?;
                    if applied.outcome != "done" {
                        continue;
                    }
                    self.set_standing("following", None);
                    return Ok(Synced::Following(0));
                }
                Verdict::Join | Verdict::Follow => {
                    let id = match head.id {
                        Some(id) => id,
                        None => continue,
                    };
                    let strays = if verdict == Verdict::Join {
                        Strays::SetAside
                    } else {
                        Strays::Remove
                    };
                    let changed = self.follow(&raw, strays).await?;
                    membership::save(
                        &self.dir,
                        &Membership {
                            id: id.clone(),
                            version: head.version,
                        },
                    )?;
                    if verdict == Verdict::Join {
                        tracing::info!("joined cluster {id} at version {}", head.version);
                    }
                    self.set_standing("following", None);
                    return Ok(Synced::Following(changed));
                }
            }
        }
        bail!("the cluster changed under this host three times in a row; retrying later")
    }

    /// Checks `raw` records, reconciles the folder to the good ones and
    /// logs each bad one once.
    async fn follow(&self, raw: &BTreeMap<String, String>, strays: Strays) -> Result<usize> {
        let mut records = BTreeMap::new();
        let mut bad = Vec::new();
        for (name, text) in raw {
            match record::check(name, text, &self.limits) {
                Ok(record) => {
                    records.insert(name.clone(), record);
                }
                Err(reason) => bad.push(BadRecord {
                    name: crate::logging::escape(name).into_owned(),
                    reason,
                }),
            }
        }
        let leave: BTreeSet<String> = bad.iter().map(|b| b.name.clone()).collect();
        let outcome = folder::reconcile(self, &self.dir, &records, &leave, strays).await?;
        bad.extend(outcome.bad);
        if !outcome.set_aside.is_empty() {
            tracing::warn!(
                "joining the cluster: {} service(s) of this folder that the cluster does not \
                 have were moved to {}/ and are not served: {}. Deploy them with `hive deploy` \
                 if they belong to the cluster",
                outcome.set_aside.len(),
                folder::SET_ASIDE,
                outcome.set_aside.join(", ")
            );
        }
        self.complain(&bad);
        Ok(outcome.changed)
    }

    /// Logs each bad record whose complaint is new, and remembers them all.
    fn complain(&self, bad: &[BadRecord]) {
        let mut said = self
            .complaints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now: BTreeMap<String, String> = bad
            .iter()
            .map(|b| (b.name.clone(), b.reason.clone()))
            .collect();
        for (name, reason) in &now {
            if said.get(name) != Some(reason) {
                tracing::warn!(
                    record = %name,
                    "ignoring the cluster's record for {name:?}: {reason}; this host leaves \
                     that component as it is"
                );
            }
        }
        *said = now;
        let mut standing = self.standing.lock().unwrap_or_else(PoisonError::into_inner);
        standing.bad_records = bad
            .iter()
            .map(|b| BadRecordView {
                name: b.name.clone(),
                reason: b.reason.clone(),
            })
            .collect();
    }

    /// Publishes this host's folder as the cluster's set, in `mode`
    /// ([`Mode::Init`] or [`Mode::Adopt`]), as the cluster `id`, at a
    /// version above `lowest`; records the membership when done.
    async fn publish_folder(&self, mode: Mode, id: &str, lowest: u64) -> Result<Applied> {
        let dir = self.dir.clone();
        let limits = self.limits.clone();
        let (good, bad) = tokio::task::spawn_blocking(move || folder::publishable(&dir, &limits))
            .await
            .context("reading the services folder")??;
        let changes: Vec<Change> = good
            .iter()
            .map(|local| {
                Change::wasm(&local.name, &local.digest).with_manifest(local.manifest.clone())
            })
            .collect();
        let blobs: Vec<(String, Vec<u8>)> = good
            .into_iter()
            .map(|local| (local.digest, local.wasm))
            .collect();
        let mut connection = self.connection().await?;
        let applied = store::apply(
            &mut connection,
            &self.script,
            mode,
            id,
            lowest,
            &changes,
            &blobs,
        )
        .await?;
        if applied.outcome == "done" {
            membership::save(
                &self.dir,
                &Membership {
                    id: applied.id.clone(),
                    version: applied.version,
                },
            )?;
            let how = if mode == Mode::Adopt {
                "adopted this host's folder as cluster"
            } else {
                "started cluster"
            };
            tracing::info!(
                "{how} {} at version {} with {} service(s) from this host's folder",
                applied.id,
                applied.version,
                changes.len()
            );
            // Left in the folder, they would be removed as strays later.
            for local in bad {
                folder::set_aside_service(&self.dir, &local.name).await?;
                tracing::warn!(
                    component = %local.name,
                    "not published to the cluster: {}; moved to {}/",
                    local.reason,
                    folder::SET_ASIDE
                );
            }
        }
        Ok(applied)
    }

    /// Makes this host's folder the whole cluster, whatever Redis holds:
    /// the operator's answer to a host that refuses an empty or rewound
    /// Redis. Returns the cluster's identity and new version.
    pub async fn adopt(&self) -> Result<(String, u64)> {
        let _one_at_a_time = self.syncing.lock().await;
        let mut connection = self.connection().await?;
        let (head, _) = store::snapshot(&mut connection).await?;
        let local = membership::load(&self.dir)?;
        let id = local
            .as_ref()
            .map(|m| m.id.clone())
            .or(head.id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let lowest = head.version.max(local.map_or(0, |m| m.version));
        let applied = self.publish_folder(Mode::Adopt, &id, lowest).await?;
        self.set_standing("following", None);
        Ok((applied.id, applied.version))
    }

    /// Applies `changes` (with `blobs`) to the cluster this host follows.
    async fn publish(&self, changes: &[Change], blobs: &[(String, Vec<u8>)]) -> Result<()> {
        let standing = self.standing();
        if standing.state == "refusing" {
            bail!(
                "this host refuses to follow the cluster ({}); nothing can be published \
                 through it until an operator runs `hive cluster adopt` or restarts it with \
                 --cluster-init",
                standing.reason.unwrap_or_default()
            );
        }
        let Some(member) = membership::load(&self.dir)? else {
            bail!("this host has not joined the cluster yet; retry shortly");
        };
        let mut connection = self.connection().await?;
        store::apply(
            &mut connection,
            &self.script,
            Mode::Write,
            &member.id,
            0,
            changes,
            blobs,
        )
        .await?;
        Ok(())
    }

    /// Publishes `wasm` (whose SHA-256 is `digest`) as `name`'s component.
    pub async fn publish_wasm(&self, name: &str, wasm: &[u8], digest: &str) -> Result<()> {
        let blobs = [(digest.to_string(), wasm.to_vec())];
        self.publish(&[Change::wasm(name, digest)], &blobs)
            .await
            .with_context(|| format!("publishing {name}.wasm to the cluster"))
    }

    /// Publishes (or, with `None`, withdraws) `name`'s manifest.
    pub async fn publish_manifest(&self, name: &str, text: Option<String>) -> Result<()> {
        self.publish(&[Change::manifest(name, text)], &[])
            .await
            .with_context(|| format!("publishing {name}'s manifest to the cluster"))
    }

    /// Publishes a whole version of `name`, `.wasm` and manifest together,
    /// so no host ever sees one without the other (a rollback).
    pub async fn publish_version(
        &self,
        name: &str,
        wasm: &[u8],
        digest: &str,
        manifest: Option<String>,
    ) -> Result<()> {
        let blobs = [(digest.to_string(), wasm.to_vec())];
        let change = Change::wasm(name, digest).with_manifest(manifest);
        self.publish(&[change], &blobs)
            .await
            .with_context(|| format!("publishing a version of {name} to the cluster"))
    }

    /// Removes `name` from the cluster; returns whether it was there.
    pub async fn remove(&self, name: &str) -> Result<bool> {
        let mut connection = self.connection().await?;
        let existed: bool = connection
            .hexists(store::COMPONENTS, name)
            .await
            .context("reading the cluster's components")?;
        self.publish(&[Change::remove(name)], &[])
            .await
            .with_context(|| format!("removing {name} from the cluster"))?;
        Ok(existed)
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
        let mut connection = self.connection().await?;
        let _: () = connection
            .hset(store::HOSTS, &self.host_id, serde_json::to_string(&report)?)
            .await?;
        Ok(())
    }

    /// The hosts that reported lately, by id.
    pub async fn hosts(&self) -> Result<BTreeMap<String, HostReport>> {
        let mut connection = self.connection().await?;
        let raw: BTreeMap<String, String> = connection.hgetall(store::HOSTS).await?;
        let fresh_after = now().saturating_sub(STALE.as_secs());
        Ok(raw
            .into_iter()
            .filter_map(|(id, json)| {
                let report: HostReport = serde_json::from_str(&json).ok()?;
                (report.at >= fresh_after).then_some((id, report))
            })
            .collect())
    }
}

impl Blobs for Cluster {
    async fn blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let mut connection = self.connection().await?;
        store::blob(&mut connection, digest).await
    }
}
