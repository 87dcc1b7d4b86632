//! Which cluster a host's folder belongs to, and how far it has followed
//! it: the guard against a Redis that comes back empty or rewound.
//!
//! Redis keeps an identity (`hive:cluster:id`, made once when the cluster
//! starts) beside its version counter. Each host keeps the identity and
//! the last version it brought its folder to in `<dir>/.cluster.json`. A
//! Redis with no identity, another identity, or a version behind the one a
//! host already followed has lost data (a flush, lost persistence, a
//! restore, another cluster's Redis): following it would delete or roll
//! back that host's services, so the host refuses and keeps serving its
//! folder until an operator says which side wins (`hive cluster adopt`:
//! this host's folder; `hive serve --cluster-init`: Redis as it is).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The file, hidden so the folder watcher ignores it.
const FILE: &str = ".cluster.json";

/// A host's record of the cluster it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The cluster's identity, as Redis held it.
    pub id: String,
    /// The last cluster version this host's folder was brought to.
    pub version: u64,
}

/// What Redis holds about the cluster, read in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// `hive:cluster:id`, if set.
    pub id: Option<String>,
    /// `hive:cluster:version` (0 when missing).
    pub version: u64,
}

/// What a host does with what it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Redis holds no cluster and this host follows none: start one from
    /// this host's folder.
    Start,
    /// A cluster this host has not followed before: take its set (local
    /// services it does not have are moved aside, not deleted).
    Join,
    /// The cluster this host follows: bring the folder to its set.
    Follow,
    /// Following would wipe or roll back this host's folder: refuse, why.
    Refuse(String),
}

/// Decides what to do with `head` for a host that follows `local`.
pub fn judge(head: &Head, local: Option<&Membership>) -> Verdict {
    match (&head.id, local) {
        (None, None) => Verdict::Start,
        // A cluster from before identities: claim it and join it.
        (Some(_), None) => Verdict::Join,
        (None, Some(known)) => Verdict::Refuse(format!(
            "Redis holds no cluster, but this host followed cluster {} up to version {} \
             (was Redis flushed or restarted without its data?)",
            known.id, known.version
        )),
        (Some(id), Some(known)) if *id != known.id => Verdict::Refuse(format!(
            "Redis holds cluster {id}, but this host followed cluster {}",
            known.id
        )),
        (Some(_), Some(known)) if head.version < known.version => Verdict::Refuse(format!(
            "the cluster's version went back from {} to {} (was Redis restored from an \
             older copy?)",
            known.version, head.version
        )),
        (Some(_), Some(_)) => Verdict::Follow,
    }
}

/// The membership file of the services folder `dir`.
fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The membership recorded in `dir`, if any.
pub fn load(dir: &Path) -> Result<Option<Membership>> {
    let path = path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("reading {} (delete it to rejoin)", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Records `membership` in `dir`, atomically.
pub fn save(dir: &Path, membership: &Membership) -> Result<()> {
    let path = path(dir);
    let temporary = dir.join(format!(
        ".cluster.json.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let text = serde_json::to_string(membership)?;
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))
}

/// Forgets which cluster `dir` followed (`--cluster-init`).
pub fn forget(dir: &Path) -> Result<()> {
    match std::fs::remove_file(path(dir)) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path(dir).display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(id: Option<&str>, version: u64) -> Head {
        Head {
            id: id.map(str::to_string),
            version,
        }
    }

    fn member(id: &str, version: u64) -> Membership {
        Membership {
            id: id.to_string(),
            version,
        }
    }

    #[test]
    fn an_empty_or_rewound_redis_is_refused() {
        assert_eq!(judge(&head(None, 0), None), Verdict::Start);
        assert_eq!(judge(&head(Some("a"), 3), None), Verdict::Join);
        assert_eq!(
            judge(&head(Some("a"), 3), Some(&member("a", 3))),
            Verdict::Follow
        );
        assert_eq!(
            judge(&head(Some("a"), 9), Some(&member("a", 3))),
            Verdict::Follow
        );
        for (remote, local) in [
            (head(None, 0), member("a", 3)),
            (head(Some("b"), 5), member("a", 3)),
            (head(Some("a"), 2), member("a", 3)),
        ] {
            assert!(
                matches!(judge(&remote, Some(&local)), Verdict::Refuse(_)),
                "{remote:?} {local:?}"
            );
        }
    }

    #[test]
    fn membership_survives_a_round_trip_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        save(dir.path(), &member("x", 7)).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(member("x", 7)));
        forget(dir.path()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
    }
}
