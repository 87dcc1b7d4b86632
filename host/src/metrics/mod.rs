//! Prometheus metrics for the host and each component, served as text by
//! the admin listener at `/metrics`; the last 15 minutes of requests per
//! component and host-wide ([`window`]), for charts; and the calls between
//! services, for the service graph.

pub mod events;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use self::events::EventMetrics;
use self::window::{Point, Window};

/// Label for a request's component, or `-` when no route matched.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabel {
    /// The component's name (shared, so a lookup allocates nothing).
    pub component: Arc<str>,
}

/// Labels for a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The component's name, or `-`.
    pub component: Arc<str>,
    /// The HTTP status sent.
    pub status: u16,
}

/// Labels for a failed call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The component's name.
    pub component: String,
    /// The failure kind, as in the JSON error bodies (`trap`, `timeout`, ...).
    pub kind: String,
}

type LatencyFamily = Family<ComponentLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 us to ~13 s: covers a cached hello and a request at its time limit.
    Histogram::new(exponential_buckets(0.00005, 2.0, 19))
}

/// Every metric the host keeps.
pub struct Metrics {
    registry: Registry,
    requests: Family<StatusLabels, Counter>,
    latency: LatencyFamily,
    failures: Family<FailureLabels, Counter>,
    in_flight: Family<ComponentLabel, Gauge>,
    instances: Family<ComponentLabel, Counter>,
    made_ahead: Family<ComponentLabel, Counter>,
    components: Gauge,
    compile_seconds: Counter<f64, AtomicU64>,
    loads: Counter,
    cache_hits: Counter,
    kv_failures: Counter,
    folder_refreshes: Counter,
    trace_spans_dropped: Counter,
    trace_spans_exported: Counter,
    /// Publishes, deliveries and groups.
    pub events: EventMetrics,
    /// Recent requests, host-wide and per component.
    host_window: Mutex<Window>,
    windows: Mutex<HashMap<Arc<str>, Arc<Mutex<Window>>>>,
    /// Calls between services since start: (caller, callee, interface or
    /// `services.call`) -> (calls, failed).
    calls: Mutex<CallCounts>,
    /// The `-` label of requests no route matched, made once.
    unrouted: ComponentLabel,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hive");
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests answered, by component and status",
            requests.clone(),
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from request head to response head, by component",
            latency.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "failures",
            "Calls that failed (traps, timeouts, rejections ...), by component and kind",
            failures.clone(),
        );
        let in_flight = Family::<ComponentLabel, Gauge>::default();
        registry.register(
            "instances_in_flight",
            "Instances running right now, by component",
            in_flight.clone(),
        );
        let instances = Family::<ComponentLabel, Counter>::default();
        registry.register(
            "instantiations",
            "Instances created, by component (one per request unless reused)",
            instances.clone(),
        );
        let made_ahead = Family::<ComponentLabel, Counter>::default();
        registry.register(
            "instances_prewarmed",
            "Calls that got an instance made ahead of them (prewarm), by component",
            made_ahead.clone(),
        );
        let components = Gauge::default();
        registry.register(
            "components_loaded",
            "Components being served",
            components.clone(),
        );
        let compile_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "compile_seconds",
            "Time spent loading components (compiling or reading the cache)",
            compile_seconds.clone(),
        );
        let loads = Counter::default();
        registry.register("component_loads", "Component files loaded", loads.clone());
        let cache_hits = Counter::default();
        registry.register(
            "compile_cache_hits",
            "Component loads served from the compile cache",
            cache_hits.clone(),
        );
        let kv_failures = Counter::default();
        registry.register(
            "kv_failures",
            "Key-value operations that failed because the store (Redis) did not answer",
            kv_failures.clone(),
        );
        let folder_refreshes = Counter::default();
        registry.register(
            "folder_refreshes",
            "Times the services folder was re-read after the watcher saw files change",
            folder_refreshes.clone(),
        );
        let trace_spans_dropped = Counter::default();
        registry.register(
            "trace_spans_dropped",
            "Spans not exported: the export queue was full or the collector failed to take them",
            trace_spans_dropped.clone(),
        );
        let trace_spans_exported = Counter::default();
        registry.register(
            "trace_spans_exported",
            "Spans the OTLP collector took",
            trace_spans_exported.clone(),
        );
        let events = EventMetrics::register(&mut registry);
        Metrics {
            kv_failures,
            folder_refreshes,
            trace_spans_dropped,
            trace_spans_exported,
            events,
            host_window: Mutex::new(Window::default()),
            windows: Mutex::new(HashMap::new()),
            calls: Mutex::new(BTreeMap::new()),
            registry,
            requests,
            latency,
            failures,
            in_flight,
            instances,
            made_ahead,
            components,
            compile_seconds,
            loads,
            cache_hits,
            unrouted: ComponentLabel {
                component: Arc::from("-"),
            },
        }
    }

    /// The handles for `component`'s series, looked up once so that the
    /// request path does no label allocation or lookup for them.
    pub fn service(&self, component: &str) -> ServiceMetrics {
        let label = ComponentLabel {
            component: Arc::from(component),
        };
        let window = lock(&self.windows)
            .entry(label.component.clone())
            .or_default()
            .clone();
        ServiceMetrics {
            window,
            latency: self.latency.get_or_create(&label).clone(),
            in_flight: self.in_flight.get_or_create(&label).clone(),
            instances: self.instances.get_or_create(&label).clone(),
            made_ahead: self.made_ahead.get_or_create(&label).clone(),
            component: label.component,
        }
    }

    /// Records one answered request; `service` is `None` when no route
    /// matched.
    pub fn request(&self, service: Option<&ServiceMetrics>, status: u16, elapsed: Duration) {
        let slot = window::slot_now();
        let failed = status >= 500;
        lock(&self.host_window).record(slot, elapsed, failed);
        let component = match service {
            Some(service) => {
                service.latency.observe(elapsed.as_secs_f64());
                lock(&service.window).record(slot, elapsed, failed);
                service.component.clone()
            }
            None => {
                self.latency
                    .get_or_create(&self.unrouted)
                    .observe(elapsed.as_secs_f64());
                self.unrouted.component.clone()
            }
        };
        self.requests
            .get_or_create(&StatusLabels { component, status })
            .inc();
    }

    /// The last 15 minutes host-wide, and of each component that had
    /// requests.
    pub fn recent(&self) -> (Vec<Point>, BTreeMap<String, Vec<Point>>) {
        let slot = window::slot_now();
        let host = lock(&self.host_window).series(slot);
        let windows: Vec<(Arc<str>, Arc<Mutex<Window>>)> = lock(&self.windows)
            .iter()
            .map(|(name, window)| (name.clone(), window.clone()))
            .collect();
        let components = windows
            .into_iter()
            .map(|(name, window)| (name.to_string(), lock(&window).series(slot)))
            .collect();
        (host, components)
    }

    /// Counts a call from `caller` to `callee` (`via` an interface, or
    /// `services.call`), and whether it failed.
    pub fn call(&self, caller: &str, callee: &str, via: &str, failed: bool) {
        let mut calls = lock(&self.calls);
        let entry = calls
            .entry((caller.to_string(), callee.to_string(), via.to_string()))
            .or_default();
        entry.0 += 1;
        entry.1 += u64::from(failed);
    }

    /// Every call edge seen since start: (caller, callee, via) -> (calls,
    /// failed).
    pub fn calls(&self) -> CallCounts {
        lock(&self.calls).clone()
    }

    /// Records one failed call of `kind`.
    pub fn failure(&self, component: &str, kind: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                component: component.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Records a component load and how long it took.
    pub fn loaded(&self, elapsed: Duration, from_cache: bool) {
        self.loads.inc();
        self.compile_seconds.inc_by(elapsed.as_secs_f64());
        if from_cache {
            self.cache_hits.inc();
        }
    }

    /// Counts a publish by `component` to `topic`.
    pub fn published(&self, component: &str, topic: &str) {
        self.events.published(component, topic);
    }

    /// Counts one re-reading of the services folder by its watcher.
    pub fn folder_refreshed(&self) {
        self.folder_refreshes.inc();
    }

    /// The counter a shared key-value store adds its failures to.
    pub fn kv_failures(&self) -> Counter {
        self.kv_failures.clone()
    }

    /// The counters of spans dropped and exported.
    pub fn trace_counters(&self) -> (Counter, Counter) {
        (
            self.trace_spans_dropped.clone(),
            self.trace_spans_exported.clone(),
        )
    }

    /// Sets the number of components being served.
    pub fn set_components(&self, count: usize) {
        self.components.set(count as i64);
    }

    /// All metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Calls between services: (caller, callee, via) -> (calls, failed).
pub type CallCounts = BTreeMap<(String, String, String), (u64, u64)>;

/// A poisoned lock only means a panic elsewhere; the data is still good.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One component's series, shared by every request to it.
#[derive(Clone)]
pub struct ServiceMetrics {
    component: Arc<str>,
    window: Arc<Mutex<Window>>,
    latency: Histogram,
    in_flight: Gauge,
    instances: Counter,
    made_ahead: Counter,
}

impl ServiceMetrics {
    /// Counts an instance as running until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Counts a new instance.
    pub fn instance_created(&self) {
        self.instances.inc();
    }

    /// Counts a call that got an instance made ahead of it.
    pub fn instance_made_ahead(&self) {
        self.made_ahead.inc();
    }
}

/// Decrements the in-flight gauge when the instance is gone.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_in_the_text() {
        let metrics = Metrics::new();
        let hello = metrics.service("hello");
        metrics.request(Some(&hello), 200, Duration::from_millis(2));
        metrics.request(None, 404, Duration::from_micros(80));
        metrics.failure("hostile", "timeout");
        metrics.loaded(Duration::from_millis(30), true);
        metrics.set_components(3);
        let guard = hello.in_flight();
        hello.instance_created();
        // A second lookup shares the first one's series.
        metrics.service("hello").instance_created();
        let text = metrics.encode();
        assert!(
            text.contains(r#"hive_requests_total{component="hello",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hive_requests_total{component="-",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hive_failures_total{component="hostile",kind="timeout"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hive_instances_in_flight{component="hello"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hive_instantiations_total{component="hello"} 2"#),
            "{text}"
        );
        assert!(text.contains("hive_components_loaded 3"), "{text}");
        assert!(text.contains("hive_compile_cache_hits_total 1"), "{text}");
        assert!(
            text.contains("hive_request_duration_seconds_bucket"),
            "{text}"
        );
        drop(guard);
        assert!(
            metrics
                .encode()
                .contains(r#"hive_instances_in_flight{component="hello"} 0"#)
        );
    }
}
