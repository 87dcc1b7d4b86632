//! Events between services, run: for every service that subscribes or
//! schedules, one dispatcher per group ([`dispatch`]) and one ticker per
//! schedule ([`schedule`]), started and stopped as services come and go.
//!
//! This sits above the runtime and the registry (it reads the live
//! deployment and calls services through the runtime's one call path) and
//! below the front doors. A dispatcher follows the service by name, not by
//! version: each delivery goes to the version serving when it starts, so a
//! hot swap loses nothing, and a service that is removed leaves its
//! group's queue in the store, filling, until it comes back.

pub mod backoff;
pub mod dispatch;
pub mod schedule;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::dispatch::Route;
use crate::config::Schedule;
use crate::host::Host;

/// How often the set of subscriptions is compared with the deployment.
const LOOK: Duration = Duration::from_millis(250);

/// How often groups' standings are read into the metrics, and topics
/// tidied.
const STANDING: Duration = Duration::from_secs(5);

/// One thing that runs for a service.
#[derive(Debug, Clone, PartialEq)]
enum Work {
    Dispatch(Arc<Route>),
    Tick(String, Schedule),
}

struct Running {
    work: Work,
    stop: watch::Sender<bool>,
    _task: JoinHandle<()>,
}

/// Starts running every service's subscriptions and schedules; stops when
/// the returned task is dropped... it runs for the process's life.
pub fn spawn(host: Arc<Host>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut last_standing = Instant::now() - STANDING;
        let mut refused: HashMap<String, String> = HashMap::new();
        loop {
            let wanted = wanted(&host);
            running.retain(|key, run| {
                let keep = wanted.get(key) == Some(&run.work);
                if !keep {
                    let _ = run.stop.send(true);
                }
                keep
            });
            for (key, work) in wanted {
                if running.contains_key(&key) {
                    continue;
                }
                if let Work::Dispatch(route) = &work
                    && let Err(err) = host
                        .runtime
                        .events()
                        .subscribe(&route.topic, &route.group)
                        .await
                {
                    let message = err.to_string();
                    if refused.get(&key) != Some(&message) {
                        tracing::warn!(
                            component = %route.service,
                            topic = %route.shown_topic,
                            group = %route.group,
                            "cannot subscribe yet: {message}; retrying"
                        );
                        refused.insert(key.clone(), message);
                    }
                    continue;
                }
                refused.remove(&key);
                let (stop, stopped) = watch::channel(false);
                let task = match &work {
                    Work::Dispatch(route) => {
                        tracing::info!(
                            component = %route.service,
                            topic = %route.shown_topic,
                            group = %route.group,
                            "delivering {} to {} (group {})",
                            route.shown_topic,
                            route.service,
                            route.group
                        );
                        tokio::spawn(dispatch::run(host.clone(), route.clone(), stopped))
                    }
                    Work::Tick(service, schedule) => {
                        tracing::info!(
                            component = %service,
                            schedule = %schedule.name,
                            "schedule {} of {}: {}",
                            schedule.name,
                            service,
                            schedule.when.describe()
                        );
                        tokio::spawn(schedule::run(
                            host.clone(),
                            service.clone(),
                            schedule.clone(),
                            stopped,
                        ))
                    }
                };
                running.insert(
                    key,
                    Running {
                        work,
                        stop,
                        _task: task,
                    },
                );
            }
            if last_standing.elapsed() >= STANDING {
                last_standing = Instant::now();
                look_at_standing(&host, &running).await;
            }
            tokio::time::sleep(LOOK).await;
        }
    })
}

/// Subscribes every group the deployment has, once, before the host takes
/// requests: a topic keeps a message only for the groups subscribed when
/// it is published, so without this the first requests' publishes could
/// reach the store before their subscribers' groups and be kept for none.
/// Groups deployed later are subscribed by [`spawn`]'s loop as they come.
pub async fn subscribe_deployed(host: &Host) {
    for work in wanted(host).into_values() {
        let Work::Dispatch(route) = work else {
            continue;
        };
        // One that fails now is retried, and reported, by `spawn`'s loop.
        let _ = host
            .runtime
            .events()
            .subscribe(&route.topic, &route.group)
            .await;
    }
}

/// What should run now, by a key naming it.
fn wanted(host: &Host) -> HashMap<String, Work> {
    let mut wanted = HashMap::new();
    for (name, service) in &host.registry.current().services {
        if service.entry.receiver().is_none() {
            continue;
        }
        for subscription in &service.events.subscriptions {
            let group = subscription.group.clone().unwrap_or_else(|| name.clone());
            let route = Route {
                service: name.clone(),
                topic: subscription.topic.clone(),
                shown_topic: subscription.topic.clone(),
                group,
                max_attempts: subscription.max_attempts,
                backoff: subscription.backoff,
                max_backoff: subscription.max_backoff,
                concurrency: subscription.concurrency,
            };
            let key = format!("dispatch {name} {} {}", route.topic, route.group);
            wanted.insert(key, Work::Dispatch(Arc::new(route)));
        }
        for schedule in &service.events.schedules {
            let route = Route {
                service: name.clone(),
                topic: schedule::topic(name, &schedule.name),
                shown_topic: schedule::shown_topic(&schedule.name),
                group: name.clone(),
                max_attempts: 5,
                backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(300),
                concurrency: 1,
            };
            let key = format!("dispatch {name} {} {}", route.topic, route.group);
            wanted.insert(key, Work::Dispatch(Arc::new(route)));
            let key = format!("tick {name} {}", schedule.name);
            wanted.insert(key, Work::Tick(name.clone(), schedule.clone()));
        }
    }
    wanted
}

/// Reads every group's standing into the metrics, and tidies the topics
/// this host delivers.
async fn look_at_standing(host: &Host, running: &HashMap<String, Running>) {
    let store = host.runtime.events();
    if let Ok(stats) = store.stats().await {
        for group in stats {
            host.metrics().events.standing(
                &group.topic,
                &group.group,
                group.depth,
                group.in_flight,
                group.dead,
            );
        }
    }
    let mut topics: Vec<&str> = running
        .values()
        .filter_map(|run| match &run.work {
            Work::Dispatch(route) => Some(route.topic.as_str()),
            Work::Tick(..) => None,
        })
        .collect();
    topics.sort_unstable();
    topics.dedup();
    for topic in topics {
        let _ = store.maintain(topic).await;
    }
}
