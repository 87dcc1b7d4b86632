//! A schedule's ticks: every host runs the same ticker, and the store
//! lets exactly one of them fire each tick (the claim and the publish are
//! one step), so a schedule fires once per tick across a cluster, and a
//! tick is still fired when some hosts are down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Schedule;
use crate::host::Host;
use crate::queue::{Message, now_ms};

/// The store's topic for `service`'s schedule `name` (no publisher can
/// name one: `:` is not allowed in topics).
pub fn topic(service: &str, name: &str) -> String {
    format!("schedule:{service}:{name}")
}

/// The topic the handler sees.
pub fn shown_topic(name: &str) -> String {
    format!("schedule:{name}")
}

/// Fires `schedule` of `service` on each tick until `stop` says so.
pub async fn run(
    host: Arc<Host>,
    service: String,
    schedule: Schedule,
    mut stop: watch::Receiver<bool>,
) {
    let store = host.runtime.events().clone();
    let topic = topic(&service, &schedule.name);
    let mut after = now_ms();
    while !*stop.borrow() {
        let Some(tick) = schedule.when.next_after(after) else {
            tracing::warn!(component = %service, schedule = %schedule.name, "the schedule has no next tick; it stops");
            return;
        };
        let wait = Duration::from_millis(tick.saturating_sub(now_ms()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => continue,
        }
        // The clock may wake early by a hair: never fire before the tick.
        let early = tick.saturating_sub(now_ms());
        if early > 0 {
            tokio::time::sleep(Duration::from_millis(early)).await;
        }
        let message = Message {
            payload: format!(r#"{{"schedule":"{}","tick_ms":{tick}}}"#, schedule.name).into_bytes(),
            content_type: Some("application/json".into()),
            metadata: vec![
                ("schedule".into(), schedule.name.clone()),
                ("tick-ms".into(), tick.to_string()),
            ],
            delay: None,
            dedup_key: None,
        };
        match store.fire(&topic, &service, tick, message).await {
            Ok(true) => {
                tracing::debug!(component = %service, schedule = %schedule.name, tick, "fired")
            }
            Ok(false) => {}
            Err(err) => tracing::warn!(
                component = %service,
                schedule = %schedule.name,
                "could not fire the tick at {tick}: {err}"
            ),
        }
        after = tick;
    }
}
