//! `hive ls`, `hive deploy`, `hive rm`, `hive rollback`, `hive graph` and
//! `hive top`: a client for a running host's admin API.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

/// Where the admin API is and how to authenticate to it.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: Client,
}

impl AdminClient {
    /// A client for the admin API at `base` (e.g. `http://127.0.0.1:9080`).
    pub fn new(base: &str, token: Option<String>) -> Result<AdminClient> {
        Ok(AdminClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .context("creating the HTTP client")?,
        })
    }

    fn send(&self, request: RequestBuilder) -> Result<Response> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().with_context(|| {
            format!(
                "cannot reach the admin API at {}; is `hive serve` running (see --admin)?",
                self.base
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().unwrap_or(Value::Null);
        let message = body["error"].as_str().unwrap_or("no details");
        match status.as_u16() {
            401 => bail!("the admin API needs a token: pass --token or set HIVE_ADMIN_TOKEN"),
            403 => bail!("the admin API rejected the token ({message})"),
            _ => bail!("the admin API answered {status}: {message}"),
        }
    }

    /// The components as the host reports them.
    pub fn components(&self) -> Result<Vec<Value>> {
        let body: Value = self
            .send(self.http.get(format!("{}/components", self.base)))?
            .json()
            .context("reading the component list")?;
        Ok(body["components"].as_array().cloned().unwrap_or_default())
    }

    /// Uploads `wasm` (and `manifest`) as `name`, then waits until the host
    /// serves that exact file or reports why not. Returns its final entry.
    pub fn deploy(&self, name: &str, wasm: &Path, manifest: Option<&Path>) -> Result<Value> {
        if let Some(manifest) = manifest {
            let text = std::fs::read(manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            self.send(
                self.http
                    .put(format!("{}/components/{name}/manifest", self.base))
                    .body(text),
            )?;
        }
        let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
        let accepted: Value = self
            .send(
                self.http
                    .put(format!("{}/components/{name}", self.base))
                    .body(bytes),
            )?
            .json()
            .context("reading the upload reply")?;
        let digest = accepted["digest"].as_str().unwrap_or_default().to_string();

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let entry = self.components()?.into_iter().find(|c| c["name"] == name);
            if let Some(entry) = entry {
                let current = entry["digest"].as_str() == Some(digest.as_str());
                if entry["state"] == "failed" {
                    bail!(
                        "{name} was uploaded but does not load: {}",
                        entry["reason"].as_str().unwrap_or("unknown reason")
                    );
                }
                if let Some(reason) = entry["update_failed"].as_str().filter(|_| !current) {
                    bail!("{name} was uploaded but the previous version keeps serving: {reason}");
                }
                if current {
                    return Ok(entry);
                }
            }
            if Instant::now() > deadline {
                bail!("{name} was uploaded but the host has not loaded it after 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The WIT packages the host's components share, by name.
    pub fn shared_wit(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let body: Value = self
            .send(self.http.get(format!("{}/wit", self.base)))?
            .json()
            .context("reading the shared WIT")?;
        Ok(body["packages"]
            .as_object()
            .map(|packages| {
                packages
                    .iter()
                    .filter_map(|(name, text)| Some((name.clone(), text.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `GET path` as JSON (`/stats`, `/graph`, `/failures` ...).
    pub fn get_json(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))?
            .json()
            .with_context(|| format!("reading {path}"))
    }

    /// The service graph in Graphviz DOT.
    pub fn graph_dot(&self) -> Result<String> {
        self.send(self.http.get(format!("{}/graph.dot", self.base)))?
            .text()
            .context("reading the graph")
    }

    /// Rolls `name` back to the version whose digest starts with `to`, or
    /// the one before the version serving; returns the digest now serving.
    pub fn roll_back(&self, name: &str, to: Option<&str>) -> Result<String> {
        let mut request = self
            .http
            .post(format!("{}/components/{name}/rollback", self.base));
        if let Some(to) = to {
            request = request.query(&[("to", to)]);
        }
        let reply: Value = self.send(request)?.json().context("reading the reply")?;
        Ok(reply["serving"].as_str().unwrap_or_default().to_string())
    }

    /// Where the host stands with its cluster (`GET /cluster`).
    pub fn cluster(&self) -> Result<Value> {
        self.get_json("/cluster")
    }

    /// Makes the host's folder the whole cluster (`POST /cluster/adopt`).
    pub fn adopt(&self) -> Result<Value> {
        self.send(self.http.post(format!("{}/cluster/adopt", self.base)))?
            .json()
            .context("reading the reply")
    }

    /// Every group's standing, subscriptions and schedules (`GET /events`).
    pub fn events(&self) -> Result<Value> {
        self.get_json("/events")
    }

    /// Publishes `payload` to `topic` (`POST /events/{topic}`); returns
    /// the message's id.
    pub fn publish_event(
        &self,
        topic: &str,
        payload: Vec<u8>,
        content_type: Option<&str>,
        dedup: Option<&str>,
        delay_ms: Option<u64>,
    ) -> Result<String> {
        let mut request = self
            .http
            .post(format!("{}/events/{}", self.base, encode_segment(topic)))
            .body(payload);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(dedup) = dedup {
            request = request.query(&[("dedup", dedup)]);
        }
        if let Some(delay) = delay_ms {
            request = request.query(&[("delay_ms", delay.to_string())]);
        }
        let reply: Value = self.send(request)?.json().context("reading the reply")?;
        Ok(reply["id"].as_str().unwrap_or_default().to_string())
    }

    /// A group's dead letters (`GET /events/{topic}/{group}/dead`).
    pub fn dead_letters(&self, topic: &str, group: &str) -> Result<Vec<Value>> {
        let path = format!(
            "/events/{}/{}/dead",
            encode_segment(topic),
            encode_segment(group)
        );
        let body = self.get_json(&path)?;
        Ok(body["dead"].as_array().cloned().unwrap_or_default())
    }

    /// Makes a group's dead letters due again; returns how many.
    pub fn replay(&self, topic: &str, group: &str) -> Result<u64> {
        let url = format!(
            "{}/events/{}/{}/replay",
            self.base,
            encode_segment(topic),
            encode_segment(group)
        );
        let reply: Value = self
            .send(self.http.post(url))?
            .json()
            .context("reading the reply")?;
        Ok(reply["replayed"].as_u64().unwrap_or(0))
    }

    /// Removes the component `name`.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.send(self.http.delete(format!("{}/components/{name}", self.base)))?;
        Ok(())
    }
}

/// `text` as one URL path segment.
fn encode_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One line per topic and group, for `hive events ls`.
pub fn format_events_table(events: &Value) -> String {
    let mut out = format!(
        "{:<28} {:<20} {:>7} {:>10} {:>9} {:>8} {:>6}\n",
        "TOPIC", "GROUP", "DEPTH", "OLDEST", "IN-FLIGHT", "RETRIED", "DEAD"
    );
    for group in events["groups"].as_array().into_iter().flatten() {
        let oldest = match group["oldest_age_ms"].as_u64() {
            Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
            None => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<28} {:<20} {:>7} {:>10} {:>9} {:>8} {:>6}\n",
            group["topic"].as_str().unwrap_or("?"),
            group["group"].as_str().unwrap_or("?"),
            group["depth"].as_u64().unwrap_or(0),
            oldest,
            group["in_flight"].as_u64().unwrap_or(0),
            group["retried"].as_u64().unwrap_or(0),
            group["dead"].as_u64().unwrap_or(0),
        ));
    }
    let schedules = events["schedules"].as_array().into_iter().flatten();
    for schedule in schedules {
        out.push_str(&format!(
            "schedule {} of {}: {}\n",
            schedule["name"].as_str().unwrap_or("?"),
            schedule["service"].as_str().unwrap_or("?"),
            schedule["when"].as_str().unwrap_or("?"),
        ));
    }
    out
}

/// One line per component, for `hive ls`; in a cluster, with the hosts
/// that serve it and which version each serves (`*` marks a host still on
/// another digest than this host's).
pub fn format_table(components: &[Value]) -> String {
    let clustered = components.iter().any(|c| c.get("hosts").is_some());
    let mut out = format!(
        "{:<20} {:<8} {:<28} {:<12} {}\n",
        "NAME", "STATE", "WORLD", "DIGEST", "ROUTES"
    );
    if clustered {
        out = format!("{}  HOSTS\n", out.trim_end());
    }
    for c in components {
        let routes: Vec<&str> = c["routes"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let digest = c["digest"].as_str().unwrap_or("");
        let mut line = format!(
            "{:<20} {:<8} {:<28} {:<12} {}",
            c["name"].as_str().unwrap_or("?"),
            c["state"].as_str().unwrap_or("?"),
            c["world"].as_str().unwrap_or("-"),
            &digest[..digest.len().min(12)],
            routes.join(" ")
        );
        if let Some(hosts) = c["hosts"].as_object() {
            let serving: Vec<String> = hosts
                .iter()
                .map(|(host, served)| {
                    let served = served.as_str().unwrap_or_default();
                    if served == digest {
                        host.clone()
                    } else {
                        format!("{host}*{}", &served[..served.len().min(12)])
                    }
                })
                .collect();
            line.push_str(&format!("  {}", serving.join(" ")));
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if let Some(reason) = c["reason"].as_str() {
            out.push_str(&format!("{:<20} reason: {reason}\n", ""));
        }
    }
    out
}
