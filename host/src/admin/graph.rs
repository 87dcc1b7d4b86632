//! `GET /graph` and `GET /graph.dot`: the service graph. Components are
//! nodes (ready, waiting or failed); edges are the typed links from each
//! importer to the exporter of the interface, an import no one exports
//! (which keeps its importer waiting), the generic `services.call` calls
//! seen, each with the calls and failed calls since start, and the events:
//! from each service seen publishing to a topic to each service
//! subscribed to it, with the publishes since start.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::host::{Host, NOT_GRANTED_CALL as NOT_GRANTED};
use crate::trace::EdgeLatency;

/// The whole graph.
#[derive(Debug, Serialize)]
pub struct Graph {
    /// Every component the host knows.
    pub nodes: Vec<Node>,
    /// Every link and every call path seen.
    pub edges: Vec<Edge>,
}

/// One component.
#[derive(Debug, Serialize)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// `ready`, `waiting` or `failed`.
    pub state: &'static str,
    /// Why it is waiting or failed.
    pub reason: Option<String>,
    /// Whether its routes are public (`false`: reached only by calls).
    pub public: bool,
    /// The services its manifest lets it call (`None`: any).
    pub calls: Option<Vec<String>>,
}

/// A link or a call path between two components.
#[derive(Debug, Serialize)]
pub struct Edge {
    /// The caller (the importer).
    pub from: String,
    /// The callee (the exporter), or `None` when no component exports the
    /// interface.
    pub to: Option<String>,
    /// The interface, `services.call` for generic calls, or the topic.
    pub via: String,
    /// `typed`, `call`, `event`, or `refused` (generic calls the caller's
    /// `calls` does not grant).
    pub kind: &'static str,
    /// Whether the caller's `calls` grants it (a typed link that is not
    /// granted keeps its importer waiting).
    pub granted: bool,
    /// Calls made along it since the host started.
    pub calls: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
    /// Latencies of its calls among the host's recent spans, when traces
    /// are on and some were recorded.
    pub latency: Option<Latency>,
}

/// An edge's latencies, from its calls' client spans.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Calls among the recent spans.
    pub count: usize,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// The request of the slowest call, whose waterfall shows why.
    pub slowest_request: Option<String>,
}

/// The graph of `host`'s current deployment.
pub fn graph(host: &Host) -> Graph {
    let deployment = host.registry.current();
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let serving = deployment
        .services
        .values()
        .chain(deployment.parked.values());
    let mut seen = std::collections::BTreeSet::new();
    for service in serving {
        if !seen.insert(service.name().to_string()) {
            continue;
        }
        let waiting = service.links.waiting.load_full();
        let parked = !deployment.services.contains_key(service.name());
        let reason = match (&waiting, parked) {
            (Some(reason), _) => Some(reason.to_string()),
            (None, true) => deployment
                .failures
                .get(service.name())
                .map(|f| f.reason.clone())
                .or_else(|| Some("its routes are taken by another component".to_string())),
            (None, false) => None,
        };
        nodes.push(Node {
            name: service.name().to_string(),
            state: if reason.is_some() { "waiting" } else { "ready" },
            reason,
            public: service.access.public,
            calls: service.access.grants.clone(),
        });
        for import in &service.links.imports {
            let to = deployment
                .providers
                .get(&import.name)
                .map(|p| p.name().to_string());
            let granted = to.as_deref().is_none_or(|to| service.access.may_call(to));
            edges.push(Edge {
                from: service.name().to_string(),
                to,
                via: import.name.clone(),
                kind: "typed",
                granted,
                calls: 0,
                errors: 0,
                latency: None,
            });
        }
    }
    for (name, failure) in &deployment.failures {
        if !seen.contains(name) {
            nodes.push(Node {
                name: name.clone(),
                state: "failed",
                reason: Some(failure.reason.clone()),
                public: true,
                calls: None,
            });
        }
    }
    add_calls(&mut edges, host.metrics().calls());
    let subscribers: Vec<(String, String)> = deployment
        .services
        .iter()
        .flat_map(|(name, service)| {
            let topics = service.events.subscriptions.iter().map(|s| s.topic.clone());
            topics.map(move |topic| (topic, name.clone()))
        })
        .collect();
    add_events(&mut edges, host.metrics().events.publishers(), &subscribers);
    if let Some(tracing) = host.runtime.tracing() {
        add_latencies(&mut edges, tracing.recent().edge_latencies());
    }
    Graph { nodes, edges }
}

/// An edge from each publisher seen to each subscriber of the topic, with
/// the publishes counted.
fn add_events(
    edges: &mut Vec<Edge>,
    publishers: BTreeMap<(String, String), u64>,
    subscribers: &[(String, String)],
) {
    for ((publisher, topic), count) in publishers {
        for (_, subscriber) in subscribers.iter().filter(|(t, _)| *t == topic) {
            edges.push(Edge {
                from: publisher.clone(),
                to: Some(subscriber.clone()),
                via: topic.clone(),
                kind: "event",
                granted: true,
                calls: count,
                errors: 0,
                latency: None,
            });
        }
    }
}

/// Puts the recent spans' latencies on the call edges they measure.
fn add_latencies(edges: &mut [Edge], latencies: Vec<EdgeLatency>) {
    for measured in latencies {
        let edge = edges.iter_mut().find(|e| {
            e.from == measured.from
                && e.to.as_deref() == Some(&*measured.to)
                && e.via == measured.via
        });
        if let Some(edge) = edge {
            edge.latency = Some(Latency {
                count: measured.count,
                p50_ms: measured.p50_ms,
                p99_ms: measured.p99_ms,
                slowest_request: measured.slowest_request,
            });
        }
    }
}

/// Puts the counted calls on their edges, adding an edge for each call
/// path no current link explains (generic calls, or a provider since
/// replaced).
fn add_calls(edges: &mut Vec<Edge>, calls: BTreeMap<(String, String, String), (u64, u64)>) {
    for ((caller, callee, via), (count, failed)) in calls {
        let existing = edges
            .iter_mut()
            .find(|e| e.from == caller && e.to.as_deref() == Some(&*callee) && e.via == via);
        match existing {
            Some(edge) => {
                edge.calls = count;
                edge.errors = failed;
            }
            None => edges.push(Edge {
                kind: match via.as_str() {
                    "services.call" => "call",
                    NOT_GRANTED => "refused",
                    _ => "typed",
                },
                granted: via != NOT_GRANTED,
                from: caller,
                to: Some(callee),
                via,
                calls: count,
                errors: failed,
                latency: None,
            }),
        }
    }
}

/// The graph in Graphviz DOT: `hive graph | dot -Tsvg > graph.svg`.
pub fn dot(graph: &Graph) -> String {
    let mut out =
        String::from("digraph hive {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for node in &graph.nodes {
        let style = match node.state {
            "ready" => "",
            "waiting" => ", color=orange",
            _ => ", color=red",
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\"{style}];",
            quote(&node.name),
            quote(&node.name),
            node.state
        );
    }
    for (index, edge) in graph.edges.iter().enumerate() {
        let counts = if edge.kind == "event" {
            format!("{} published", edge.calls)
        } else {
            format!("{} calls, {} errors", edge.calls, edge.errors)
        };
        let label = format!("{}\\n{counts}", quote(&edge.via));
        match &edge.to {
            Some(to) => {
                let style = match edge.kind {
                    _ if !edge.granted => ", style=dashed, color=red",
                    "call" => ", style=dashed",
                    "event" => ", style=dotted, color=blue",
                    _ => "",
                };
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\" [label=\"{label}\"{style}];",
                    quote(&edge.from),
                    quote(to)
                );
            }
            None => {
                // An import with no exporter points at a placeholder.
                let _ = writeln!(
                    out,
                    "  \"missing{index}\" [label=\"no exporter\\n{}\", shape=plaintext, fontcolor=red];\n  \"{}\" -> \"missing{index}\" [style=dotted, color=red];",
                    quote(&edge.via),
                    quote(&edge.from)
                );
            }
        }
    }
    out.push_str("}\n");
    out
}

/// `text` inside a DOT double-quoted string.
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_land_on_their_links_or_make_edges_of_their_own() {
        let mut edges = vec![Edge {
            from: "orders".into(),
            to: Some("users".into()),
            via: "shop:users/directory@0.1.0".into(),
            kind: "typed",
            granted: true,
            calls: 0,
            errors: 0,
            latency: None,
        }];
        let mut calls = BTreeMap::new();
        calls.insert(
            (
                "orders".to_string(),
                "users".to_string(),
                "shop:users/directory@0.1.0".to_string(),
            ),
            (5, 1),
        );
        calls.insert(
            (
                "orders".to_string(),
                "users".to_string(),
                "services.call".to_string(),
            ),
            (2, 0),
        );
        add_calls(&mut edges, calls);
        assert_eq!((edges[0].calls, edges[0].errors), (5, 1));
        assert_eq!(edges[1].kind, "call");
        let mut published = BTreeMap::new();
        published.insert(("orders".to_string(), "order.placed".to_string()), 3);
        let subscribers = [("order.placed".to_string(), "notifications".to_string())];
        add_events(&mut edges, published, &subscribers);
        assert_eq!(edges[2].kind, "event");
        assert_eq!(edges[2].to.as_deref(), Some("notifications"));
        let text = dot(&Graph {
            nodes: vec![Node {
                name: "or\"ders".into(),
                state: "waiting",
                reason: None,
                public: true,
                calls: None,
            }],
            edges,
        });
        assert!(text.contains(r#""or\"ders" [label="or\"ders\nwaiting", color=orange];"#));
        assert!(
            text.contains(
                r#""orders" -> "users" [label="services.call\n2 calls, 0 errors", style=dashed];"#
            ),
            "{text}"
        );
    }
}
