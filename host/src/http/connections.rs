//! How many connections each listener may hold, so the process never runs
//! out of file descriptors: a host that meets `EMFILE` can no longer accept
//! anyone, not even a health probe, nor open its own files.
//!
//! The cap comes from the open-files limit (raised to its hard maximum at
//! start), minus a reserve for the host's own files (compile cache, kv
//! store, folder watches, outbound sockets) and the admin listener's share.
//! At the cap the public listener stops accepting: new connections wait in
//! the kernel's queue until one closes, and the admin API stays reachable.

/// Connections the admin listener may hold at once.
pub const ADMIN_CONNECTIONS: usize = 32;

/// Descriptors kept back for the host's own files, at least.
const MIN_RESERVE: usize = 64;

/// The caps for both listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Open client connections on the public listener.
    pub public: usize,
    /// Open connections on the admin listener.
    pub admin: usize,
    /// The open-files limit they were derived from.
    pub open_files: usize,
}

impl ConnectionCaps {
    /// Caps for a process allowed `open_files` descriptors; `configured`
    /// (`--max-connections`) may lower the public cap, never raise it past
    /// what the descriptors allow.
    pub fn for_open_files(open_files: usize, configured: Option<usize>) -> ConnectionCaps {
        let reserve = (open_files / 8).max(MIN_RESERVE) + ADMIN_CONNECTIONS;
        let derived = open_files.saturating_sub(reserve).max(1);
        let public = match configured {
            Some(wanted) if wanted > derived => {
                tracing::warn!(
                    "--max-connections {wanted} is more than the open-files limit \
                     ({open_files}) allows; using {derived}"
                );
                derived
            }
            Some(wanted) => wanted,
            None => derived,
        };
        ConnectionCaps {
            public,
            admin: ADMIN_CONNECTIONS,
            open_files,
        }
    }

    /// Caps for this process, after raising its open-files limit as far as
    /// it may go.
    pub fn for_this_process(configured: Option<usize>) -> ConnectionCaps {
        ConnectionCaps::for_open_files(raise_open_files_limit(), configured)
    }
}

/// Raises the soft open-files limit to the hard one (most systems start
/// processes at 1,024 however many they allow) and returns the result.
fn raise_open_files_limit() -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // Beyond this, a descriptor table costs more than it is worth.
    const CEILING: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(CEILING).min(CEILING);
    let hard = limit.maximum.unwrap_or(CEILING).min(CEILING);
    if soft < hard {
        let raised = Rlimit {
            current: Some(hard),
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return hard as usize;
        }
    }
    soft as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_room_for_files_and_the_admin_listener() {
        let caps = ConnectionCaps::for_open_files(1024, None);
        assert_eq!(caps.public, 1024 - 128 - ADMIN_CONNECTIONS);
        assert!(caps.public + caps.admin < caps.open_files);
        let small = ConnectionCaps::for_open_files(256, None);
        assert_eq!(small.public, 256 - 64 - ADMIN_CONNECTIONS);
        assert_eq!(ConnectionCaps::for_open_files(50, None).public, 1);
    }

    #[test]
    fn a_configured_cap_may_lower_it_but_not_raise_it() {
        assert_eq!(ConnectionCaps::for_open_files(1024, Some(10)).public, 10);
        assert_eq!(
            ConnectionCaps::for_open_files(1024, Some(5000)).public,
            1024 - 128 - ADMIN_CONNECTIONS
        );
    }
}
