//! One group's deliveries on this host: lease what is due (at most the
//! subscription's `concurrency` at once), hand each to the live version
//! of the service, and settle it by what the handler said. Runs until told
//! to stop, then lets the deliveries in hand finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use super::backoff;
use crate::host::Host;
use crate::queue::{Delivery, Settle};
use crate::runtime::deliver::{Answer, deliver};

/// What a dispatcher delivers, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The service that handles.
    pub service: String,
    /// The topic in the store.
    pub topic: String,
    /// The topic as the handler sees it (`schedule:<name>` for a tick).
    pub shown_topic: String,
    /// The group.
    pub group: String,
    /// Deliveries before the dead-letter queue.
    pub max_attempts: u32,
    /// The first retry's delay.
    pub backoff: Duration,
    /// The longest retry delay.
    pub max_backoff: Duration,
    /// Deliveries at once on this host.
    pub concurrency: usize,
}

/// The shortest and longest wait between looks when nothing is due.
const IDLE_MIN: Duration = Duration::from_millis(10);
const IDLE_MAX: Duration = Duration::from_millis(200);

/// Delivers `route` until `stop` says so.
pub async fn run(host: Arc<Host>, route: Arc<Route>, mut stop: watch::Receiver<bool>) {
    let store = host.runtime.events().clone();
    let published = store.published();
    let slots = Arc::new(Semaphore::new(route.concurrency));
    let mut idle = IDLE_MIN;
    let mut last_lease_error = String::new();
    while !*stop.borrow() {
        let free = slots.available_permits();
        if free == 0 {
            // Wait for a delivery to finish (or a stop).
            tokio::select! {
                permit = slots.clone().acquire_owned() => drop(permit),
                _ = stop.changed() => {}
            }
            continue;
        }
        let lease = lease_for(&host, &route);
        match store.lease(&route.topic, &route.group, free, lease).await {
            Ok(deliveries) if !deliveries.is_empty() => {
                idle = IDLE_MIN;
                last_lease_error.clear();
                for delivery in deliveries {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    let (host, route) = (host.clone(), route.clone());
                    tokio::spawn(async move {
                        handle(&host, &route, delivery).await;
                        drop(permit);
                    });
                }
                continue;
            }
            Ok(_) => last_lease_error.clear(),
            Err(err) => {
                let message = err.to_string();
                if message != last_lease_error {
                    tracing::warn!(
                        topic = %route.shown_topic,
                        group = %route.group,
                        "cannot read the queue: {message}; retrying"
                    );
                    last_lease_error = message;
                }
                idle = IDLE_MAX;
            }
        }
        let notified = published.notified();
        tokio::select! {
            _ = notified => idle = IDLE_MIN,
            _ = tokio::time::sleep(idle) => idle = (idle * 2).min(IDLE_MAX),
            _ = stop.changed() => {}
        }
    }
    // Let the deliveries in hand finish and settle.
    let _ = slots.acquire_many(route.concurrency as u32).await;
}

/// How long a delivery stays leased: the handler's own deadline and a
/// margin, so a live handler never loses its lease, and a dead host's is
/// taken over soon after.
fn lease_for(host: &Host, route: &Route) -> Duration {
    let timeout = host
        .registry
        .current()
        .services
        .get(&route.service)
        .map_or(Duration::from_secs(10), |s| s.info.limits.timeout);
    timeout + Duration::from_secs(5)
}

/// Hands one delivery to the live version of the service and settles it.
async fn handle(host: &Host, route: &Route, delivery: Delivery) {
    let started = Instant::now();
    let request_id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
    let service = host
        .registry
        .current()
        .services
        .get(&route.service)
        .cloned();
    let answer = match &service {
        Some(service) => deliver(
            &host.runtime,
            service,
            &delivery,
            &route.shown_topic,
            request_id.clone(),
        )
        .await
        .map_err(|failure| failure.describe()),
        None => Err(format!("{} is not serving", route.service)),
    };
    let settle = decide(route, &delivery, answer);
    let outcome = match &settle {
        Settle::Ack => "ack",
        Settle::Retry { .. } => "retry",
        Settle::Dead { .. } => "dead",
    };
    let elapsed = started.elapsed();
    let detail = match &settle {
        Settle::Ack => String::new(),
        Settle::Retry { delay, reason } => format!(" (again in {delay:?}: {reason})"),
        Settle::Dead { reason } => format!(" (dead-lettered: {reason})"),
    };
    tracing::info!(
        component = %route.service,
        request_id = %request_id,
        topic = %route.shown_topic,
        group = %route.group,
        message_id = %delivery.header.id,
        attempt = delivery.attempt,
        outcome,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "delivery {outcome}{}",
        crate::logging::escape(&detail)
    );
    host.metrics()
        .events
        .settled(&route.shown_topic, &route.group, outcome, elapsed);
    if let Err(err) = host.runtime.events().settle(&delivery, settle).await {
        tracing::warn!(
            topic = %route.shown_topic,
            group = %route.group,
            message_id = %delivery.header.id,
            "cannot settle the delivery ({err}); it comes again when its lease ends"
        );
    }
}

/// What to do with a delivery after the handler's answer (or failure).
pub fn decide(route: &Route, delivery: &Delivery, answer: Result<Answer, String>) -> Settle {
    let (delay, reason) = match answer {
        Ok(Answer::Ack) => return Settle::Ack,
        Ok(Answer::DeadLetter(reason)) => return Settle::Dead { reason },
        Ok(Answer::Retry(delay, reason)) => (
            delay,
            reason.unwrap_or_else(|| "the handler asked for a retry".to_string()),
        ),
        Err(failure) => (None, failure),
    };
    if delivery.attempt >= route.max_attempts {
        return Settle::Dead {
            reason: format!(
                "gave up after {} attempts; the last: {reason}",
                delivery.attempt
            ),
        };
    }
    let delay =
        delay.unwrap_or_else(|| backoff::delay(delivery.attempt, route.backoff, route.max_backoff));
    Settle::Retry { delay, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Header;

    fn route() -> Route {
        Route {
            service: "s".into(),
            topic: "t".into(),
            shown_topic: "t".into(),
            group: "g".into(),
            max_attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            concurrency: 1,
        }
    }

    fn delivery(attempt: u32) -> Delivery {
        Delivery {
            topic: "t".into(),
            group: "g".into(),
            header: Header {
                id: "m".into(),
                content_type: None,
                metadata: vec![],
                published_at_ms: 0,
            },
            payload: vec![],
            attempt,
            token: String::new(),
        }
    }

    #[test]
    fn failures_retry_until_the_last_attempt_then_go_to_the_dead_letters() {
        let route = route();
        assert_eq!(decide(&route, &delivery(1), Ok(Answer::Ack)), Settle::Ack);
        let retry = decide(&route, &delivery(1), Err("trap".into()));
        assert!(
            matches!(retry, Settle::Retry { ref reason, .. } if reason == "trap"),
            "{retry:?}"
        );
        let asked = decide(
            &route,
            &delivery(2),
            Ok(Answer::Retry(Some(Duration::from_millis(7)), None)),
        );
        assert!(matches!(asked, Settle::Retry { delay, .. } if delay == Duration::from_millis(7)));
        let last = decide(&route, &delivery(3), Err("timeout".into()));
        assert!(
            matches!(last, Settle::Dead { ref reason } if reason.contains("3 attempts") && reason.contains("timeout")),
            "{last:?}"
        );
        let refused = decide(&route, &delivery(1), Ok(Answer::DeadLetter("bad".into())));
        assert_eq!(
            refused,
            Settle::Dead {
                reason: "bad".into()
            }
        );
    }
}
