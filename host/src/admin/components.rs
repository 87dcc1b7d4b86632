//! `GET /components`: every service, waiting service and failed file, as
//! JSON, for `hive ls`, the status page and other tools.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use crate::cluster::HostReport;
use crate::config::display_name;
use crate::host::Host;
use crate::runtime::service::Service;

/// The host's components as `{"components": [...]}`; in a cluster, each
/// with the hosts serving it and which digest each serves, and the hosts.
pub fn list(host: &Host, cluster: Option<&BTreeMap<String, HostReport>>) -> Value {
    let deployment = host.registry.current();
    let mut list = Vec::new();
    for service in deployment.services.values() {
        let (state, reason) = match service.links.waiting.load_full() {
            Some(reason) => ("waiting", Some(reason.to_string())),
            None => ("ready", None),
        };
        list.push(describe(service, state, reason));
    }
    for (name, service) in &deployment.parked {
        if !deployment.services.contains_key(name) {
            let reason = deployment.failures.get(name).map(|f| f.reason.clone());
            list.push(describe(service, "waiting", reason));
        }
    }
    for (name, failure) in &deployment.failures {
        let serving =
            deployment.services.contains_key(name) || deployment.parked.contains_key(name);
        if !serving {
            list.push(json!({
                "name": name,
                "file": display_name(&failure.file),
                "state": "failed",
                "reason": failure.reason,
            }));
        } else if let Some(entry) = list.iter_mut().find(|c| c["name"] == name.as_str()) {
            // The previous version serves; the newest file failed.
            entry["update_failed"] = json!(failure.reason);
        }
    }
    let Some(hosts) = cluster else {
        return json!({ "components": list });
    };
    for entry in &mut list {
        let name = entry["name"].as_str().unwrap_or_default().to_string();
        let serving: BTreeMap<&str, &str> = hosts
            .iter()
            .filter_map(|(id, report)| Some((id.as_str(), report.served.get(&name)?.as_str())))
            .collect();
        entry["hosts"] = json!(serving);
    }
    let reports: BTreeMap<&str, &str> = hosts
        .iter()
        .map(|(id, report)| (id.as_str(), report.listen.as_str()))
        .collect();
    json!({ "components": list, "hosts": reports })
}

fn describe(service: &Service, state: &str, reason: Option<String>) -> Value {
    let limits = &service.info.limits;
    let loaded_at = service
        .source
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    json!({
        "name": service.name(),
        "file": service.file_name(),
        "digest": service.digest(),
        "world": service.entry.world().name(),
        "state": state,
        "reason": reason,
        "routes": service.routes.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "loaded_at": loaded_at,
        "limits": {
            "memory_bytes": limits.memory_bytes,
            "timeout_ms": limits.timeout.as_millis() as u64,
            "concurrency": limits.concurrency,
            "queue_timeout_ms": limits.queue_timeout.as_millis() as u64,
            "request_body_bytes": limits.request_body_bytes,
            "response_body_bytes": limits.response_body_bytes,
        },
        "imports": service.links.imports.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        "exports": service.links.exports.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
    })
}
