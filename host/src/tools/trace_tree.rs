//! `hive trace <request-id>`: a request's trace as a tree in the terminal,
//! from the same `GET /requests/<id>/trace` the console draws.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde_json::Value;

/// The trace `view` (as the admin API serves it) as indented lines: when
/// each span started after the first, how long it took, its name, kind and
/// status, children below their parents.
pub fn format_trace(view: &Value) -> String {
    let empty = Vec::new();
    let spans = view["spans"].as_array().unwrap_or(&empty);
    let ids: HashSet<&str> = spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    let mut children: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    let mut roots = Vec::new();
    for span in spans {
        match span["parent_span_id"]
            .as_str()
            .filter(|id| ids.contains(id))
        {
            Some(parent) => children.entry(parent).or_default().push(span),
            None => roots.push(span),
        }
    }
    let mut out = format!(
        "trace {} (request {})\n{:>10} {:>10}  span\n",
        view["trace_id"].as_str().unwrap_or("?"),
        view["request_id"].as_str().unwrap_or("?"),
        "start",
        "duration"
    );
    for root in roots {
        write_span(&mut out, root, &children, 0);
    }
    out
}

fn write_span(
    out: &mut String,
    span: &Value,
    children: &BTreeMap<&str, Vec<&Value>>,
    depth: usize,
) {
    let ms = |key: &str| span[key].as_u64().unwrap_or(0) as f64 / 1000.0;
    let status = match span["status"].as_str() {
        Some("error") => format!(
            "  ERROR: {}",
            span["status_message"].as_str().unwrap_or("failed")
        ),
        _ => String::new(),
    };
    let component = span["attributes"]["hive.component"]
        .as_str()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:>8.2}ms {:>8.2}ms  {}{} [{}]{component}{status}",
        ms("start_us"),
        ms("duration_us"),
        "  ".repeat(depth),
        span["name"].as_str().unwrap_or("?"),
        span["kind"].as_str().unwrap_or("?"),
    );
    let id = span["span_id"].as_str().unwrap_or_default();
    for child in children.get(id).into_iter().flatten() {
        write_span(out, child, children, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn children_are_indented_below_their_parents() {
        let view = json!({
            "trace_id": "t1",
            "request_id": "r1",
            "spans": [
                {"span_id": "a", "parent_span_id": "remote", "name": "POST /orders",
                 "kind": "server", "start_us": 0, "duration_us": 2500, "status": "unset",
                 "attributes": {"hive.component": "orders"}},
                {"span_id": "b", "parent_span_id": "a", "name": "kv set", "kind": "client",
                 "start_us": 100, "duration_us": 300, "status": "error",
                 "status_message": "storage failure", "attributes": {}}
            ]
        });
        let text = format_trace(&view);
        assert!(text.contains("trace t1 (request r1)"), "{text}");
        assert!(
            text.contains("    0.00ms     2.50ms  POST /orders [server] (orders)"),
            "{text}"
        );
        assert!(
            text.contains("    0.10ms     0.30ms    kv set [client]  ERROR: storage failure"),
            "{text}"
        );
    }
}
