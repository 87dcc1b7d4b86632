//! The cluster's keys in Redis and the commands on them. Every change to
//! the deployment goes through one Lua script (`apply.lua`), so records,
//! blobs, version and blob cleanup move together; reads of the records
//! come in one transaction with the identity and the version.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::Serialize;

use super::membership::Head;

/// Records: component name -> JSON ([`super::record::Record`]).
pub const COMPONENTS: &str = "hive:cluster:components";
/// Bumped by every change.
pub const VERSION: &str = "hive:cluster:version";
/// The cluster's identity, made once when it starts.
pub const ID: &str = "hive:cluster:id";
/// The digests of the stored blobs.
pub const BLOBS: &str = "hive:cluster:blobs";
/// Each host's report of what it serves.
pub const HOSTS: &str = "hive:cluster:hosts";

/// Where the `.wasm` with `digest` is kept.
pub fn blob_key(digest: &str) -> String {
    format!("hive:cluster:wasm:{digest}")
}

/// One component's change, as the script takes it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Change {
    /// The component.
    pub name: String,
    /// Record fields to set (`digest`, `manifest`).
    pub set: BTreeMap<&'static str, String>,
    /// Record fields to clear.
    pub clear: Vec<&'static str>,
    /// Remove the record altogether.
    pub remove: bool,
}

impl Change {
    /// Sets `name`'s `.wasm` to the one with `digest`.
    pub fn wasm(name: &str, digest: &str) -> Change {
        let mut change = Change::named(name);
        change.set.insert("digest", digest.to_string());
        change
    }

    /// Sets (or with `None` clears) `name`'s manifest.
    pub fn manifest(name: &str, text: Option<String>) -> Change {
        Change::named(name).with_manifest(text)
    }

    /// This change, also setting (or clearing) the manifest.
    pub fn with_manifest(mut self, text: Option<String>) -> Change {
        match text {
            Some(text) => {
                self.set.insert("manifest", text);
            }
            None => self.clear.push("manifest"),
        }
        self
    }

    /// Removes `name` from the cluster.
    pub fn remove(name: &str) -> Change {
        Change {
            remove: true,
            ..Change::named(name)
        }
    }

    fn named(name: &str) -> Change {
        Change {
            name: name.to_string(),
            ..Change::default()
        }
    }
}

/// How [`apply`] treats the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An ordinary change: Redis must hold the identity given.
    Write,
    /// Start a cluster with the identity given, if Redis holds none.
    Init,
    /// Make the identity and the changes the whole cluster.
    Adopt,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `done`, or for [`Mode::Init`] `exists` (another cluster is there)
    /// or `claimed` (a cluster without an identity took this one).
    pub outcome: String,
    /// The identity Redis holds now.
    pub id: String,
    /// The version Redis holds now.
    pub version: u64,
}

/// The script behind every change.
pub fn script() -> Script {
    Script::new(include_str!("apply.lua"))
}

/// Runs the change script.
pub async fn apply(
    connection: &mut ConnectionManager,
    script: &Script,
    mode: Mode,
    id: &str,
    lowest_version: u64,
    changes: &[Change],
    blobs: &[(String, Vec<u8>)],
) -> Result<Applied> {
    let mode = match mode {
        Mode::Write => "write",
        Mode::Init => "init",
        Mode::Adopt => "adopt",
    };
    let mut invocation = script.key(COMPONENTS);
    invocation
        .key(VERSION)
        .key(ID)
        .key(BLOBS)
        .arg(mode)
        .arg(id)
        .arg(lowest_version)
        .arg(serde_json::to_string(changes)?);
    for (digest, bytes) in blobs {
        invocation.arg(digest).arg(bytes.as_slice());
    }
    let (outcome, id, version): (String, String, String) = invocation
        .invoke_async(connection)
        .await
        .context("writing to the cluster")?;
    let Ok(version) = version.parse() else {
        bail!("the cluster's version is not a number: {version:?}");
    };
    Ok(Applied {
        outcome,
        id,
        version,
    })
}

/// The identity and version, cheap enough to poll.
pub async fn head(connection: &mut ConnectionManager) -> Result<(Option<String>, Option<String>)> {
    redis::pipe()
        .get(ID)
        .get(VERSION)
        .query_async(connection)
        .await
        .context("reading the cluster's version")
}

/// The identity, the version and every record's raw text, as of one moment.
pub async fn snapshot(
    connection: &mut ConnectionManager,
) -> Result<(Head, BTreeMap<String, String>)> {
    let (id, version, records): (Option<String>, Option<String>, BTreeMap<String, String>) =
        redis::pipe()
            .atomic()
            .get(ID)
            .get(VERSION)
            .hgetall(COMPONENTS)
            .query_async(connection)
            .await
            .context("reading the cluster's components")?;
    let version = match version {
        None => 0,
        Some(text) => text
            .parse()
            .with_context(|| format!("the cluster's version is not a number: {text:?}"))?,
    };
    Ok((Head { id, version }, records))
}

/// The blob with `digest`, if Redis has it.
pub async fn blob(connection: &mut ConnectionManager, digest: &str) -> Result<Option<Vec<u8>>> {
    connection
        .get(blob_key(digest))
        .await
        .with_context(|| format!("reading the .wasm with digest {digest}"))
}
