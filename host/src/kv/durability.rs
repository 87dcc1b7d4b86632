//! When a write to a shared (Redis) store counts as done: once the primary
//! has it, or once a replica has it too. The second costs a round trip to
//! the replica per write; it is what lets a failover lose no acknowledged
//! write.

use serde::Deserialize;

/// What "acknowledged" promises for a write to Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// The primary applied it (and, with `appendfsync always`, logged it
    /// to disk). A failover to a replica that had not caught up loses it.
    #[default]
    Primary,
    /// The primary applied it and at least one replica holds it
    /// (`WAIT 1`); when no replica confirms in time the write is reported
    /// as failed, though the primary may keep it.
    Replicated,
}
