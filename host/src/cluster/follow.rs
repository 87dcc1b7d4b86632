//! Keeping a host in step with its cluster: the sync before the folder
//! loads, and the poller after.
//!
//! A host that cannot reach Redis when it starts does not wait for it: it
//! serves its folder as it is (it may be stale, and says so) and reports
//! ready; the poller keeps trying and syncs once Redis answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::{Cluster, HEARTBEAT, Synced};
use crate::registry::Registry;

/// How often a host looks for changes.
pub const POLL: Duration = Duration::from_millis(250);

/// How long a starting host tries to reach its cluster before it serves
/// its folder as it is.
pub const STARTUP_WAIT: Duration = Duration::from_secs(5);

impl Cluster {
    /// Syncs before the folder loads, retrying for [`STARTUP_WAIT`] (Redis
    /// may be starting with this host); after that, the host serves its
    /// folder as it is and the poller catches up later.
    pub async fn catch_up(&self) {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.sync().await {
                Ok(Synced::Following(changed)) => {
                    tracing::info!(
                        "caught up with the cluster ({changed} file(s) written or removed)"
                    );
                    return;
                }
                Ok(Synced::Refusing) => return,
                Err(err) if started.elapsed() + delay >= STARTUP_WAIT => {
                    self.unreachable(&err);
                    return;
                }
                Err(err) => {
                    tracing::debug!("cannot reach the cluster yet: {err:#}; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Keeps this host in step: syncs whenever the cluster's identity or
    /// version moves (or Redis comes back after a loss), and reports what
    /// it serves.
    pub fn spawn(self: Arc<Cluster>, registry: Arc<Registry>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut seen = None;
            let mut last_report = Instant::now() - HEARTBEAT;
            // Whether the last sync did not finish (Redis lost, or it failed).
            let mut behind =
                self.standing().state != "following" && self.standing().state != "refusing";
            let mut last_error = String::new();
            loop {
                tokio::time::sleep(POLL).await;
                let head = match self.connection().await {
                    Ok(mut connection) => super::store::head(&mut connection).await,
                    Err(err) => Err(err),
                };
                match head {
                    Ok(head) if seen.as_ref() != Some(&head) || behind => match self.sync().await {
                        Ok(synced) => {
                            if let Synced::Following(changed) = synced
                                && changed > 0
                            {
                                tracing::info!(
                                    "cluster version {}: {changed} file(s) changed",
                                    head.1.as_deref().unwrap_or("0")
                                );
                            }
                            if behind && matches!(synced, Synced::Following(_)) {
                                tracing::info!("the cluster is reachable again; caught up");
                            }
                            seen = Some(head);
                            behind = false;
                            last_error.clear();
                        }
                        Err(err) => {
                            let message = format!("{err:#}");
                            if message != last_error {
                                tracing::warn!("syncing with the cluster: {message}");
                                last_error = message;
                            }
                            behind = true;
                        }
                    },
                    Ok(_) => {}
                    Err(err) => {
                        if !behind {
                            self.unreachable(&err);
                        }
                        behind = true;
                    }
                }
                if last_report.elapsed() >= HEARTBEAT && self.heartbeat(&registry).await.is_ok() {
                    last_report = Instant::now();
                }
            }
        })
    }
}
