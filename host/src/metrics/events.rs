//! What the event system counts: publishes by topic (and by publisher, for
//! the service graph), deliveries settled by topic, group and outcome,
//! each group's standing as gauges, and the last 15 minutes of publishes
//! and handled deliveries for the console's chart.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::lock;
use super::window::{self, Point, Window};

/// Label for a topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// The topic.
    pub topic: String,
}

/// Labels for a group of a topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
}

/// Labels for a settled delivery.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// `ack`, `retry` or `dead`.
    pub outcome: String,
}

/// The event system's metrics.
pub struct EventMetrics {
    published: Family<TopicLabel, Counter>,
    settled: Family<OutcomeLabels, Counter>,
    depth: Family<GroupLabels, Gauge>,
    in_flight: Family<GroupLabels, Gauge>,
    dead: Family<GroupLabels, Gauge>,
    /// (publisher, topic) -> publishes, for the service graph.
    publishers: Mutex<BTreeMap<(String, String), u64>>,
    /// Publishes and handled deliveries lately, host-wide.
    published_window: Mutex<Window>,
    handled_window: Mutex<Window>,
}

impl EventMetrics {
    /// Creates and registers the `hive_events_*` metrics in `registry`.
    pub fn register(registry: &mut Registry) -> EventMetrics {
        let published = Family::<TopicLabel, Counter>::default();
        registry.register(
            "events_published",
            "Messages published (acknowledged durable), by topic",
            published.clone(),
        );
        let settled = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "events_deliveries",
            "Deliveries handled on this host, by topic, group and outcome (ack, retry, dead)",
            settled.clone(),
        );
        let depth = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "events_depth",
            "Messages waiting for a group (due now or later), at the last look",
            depth.clone(),
        );
        let in_flight = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "events_in_flight",
            "Deliveries of a group leased and not settled, at the last look",
            in_flight.clone(),
        );
        let dead = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "events_dead_letters",
            "Messages in a group's dead-letter queue, at the last look",
            dead.clone(),
        );
        EventMetrics {
            published,
            settled,
            depth,
            in_flight,
            dead,
            publishers: Mutex::new(BTreeMap::new()),
            published_window: Mutex::new(Window::default()),
            handled_window: Mutex::new(Window::default()),
        }
    }

    /// Counts a publish by `component` to `topic`.
    pub fn published(&self, component: &str, topic: &str) {
        self.published
            .get_or_create(&TopicLabel {
                topic: topic.to_string(),
            })
            .inc();
        *lock(&self.publishers)
            .entry((component.to_string(), topic.to_string()))
            .or_default() += 1;
        lock(&self.published_window).record(window::slot_now(), Duration::ZERO, false);
    }

    /// Counts a delivery handled in `elapsed`, settled as `outcome`.
    pub fn settled(&self, topic: &str, group: &str, outcome: &str, elapsed: Duration) {
        self.settled
            .get_or_create(&OutcomeLabels {
                topic: topic.to_string(),
                group: group.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        lock(&self.handled_window).record(window::slot_now(), elapsed, outcome != "ack");
    }

    /// Sets a group's gauges from its last look.
    pub fn standing(&self, topic: &str, group: &str, depth: u64, in_flight: u64, dead: u64) {
        let labels = GroupLabels {
            topic: topic.to_string(),
            group: group.to_string(),
        };
        self.depth.get_or_create(&labels).set(depth as i64);
        self.in_flight.get_or_create(&labels).set(in_flight as i64);
        self.dead.get_or_create(&labels).set(dead as i64);
    }

    /// Publishes since start, by (publisher, topic).
    pub fn publishers(&self) -> BTreeMap<(String, String), u64> {
        lock(&self.publishers).clone()
    }

    /// The last 15 minutes: publishes, and handled deliveries (errors are
    /// those not acked; latency is the handler's time).
    pub fn recent(&self) -> (Vec<Point>, Vec<Point>) {
        let slot = window::slot_now();
        (
            lock(&self.published_window).series(slot),
            lock(&self.handled_window).series(slot),
        )
    }
}
