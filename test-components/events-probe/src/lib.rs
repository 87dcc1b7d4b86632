//! `events-probe`: publishes, commits and receives events, so the host's
//! tests can drive the event system over HTTP and see what was delivered.
//!
//! | request | does | answers |
//! | --- | --- | --- |
//! | `POST .../publish/<topic>?count=N&dedup=K&delay_ms=D&behave=B&size=S` | publishes N messages (payload: the body, or `<i>`, or S bytes), metadata `behave=B` | 200 `["id", ...]`; 400 / 413 / 503 `{"error": kind, "message": ...}` |
//! | `POST .../commit/<topic>?key=K` | one commit: `kv.set(K, body)` and a publish of the body | 200 `["id"]`, or the error |
//! | `GET .../seen?topic=T` | every delivery recorded, one JSON object per line | 200 |
//! | `GET .../count/<topic>` | deliveries of a topic counted | 200 `N` |
//! | `GET .../times?topic=T` | how often each message was handled: `<id> <n>` per line | 200 |
//! | `GET .../keys?prefix=P` | kv keys with a prefix, one per line | 200 |
//!
//! Each delivery is recorded (kv `seen/<topic>/<id>/<attempt>`: attempt,
//! time, payload) before the probe does what the message's `behave` says:
//! `ack` (default), `trap`, `sleep` (past its deadline), `oom`, `retry`,
//! `retry-ms:N`, `dead`, `fail-until:N` (trap while attempt < N).

wit_bindgen::generate!({
    path: "../../wit",
    inline: "
        package hive:events-probe;
        world probe {
            include hive:service/service@0.1.0;
            import hive:events/publisher@0.1.0;
            import hive:events/outbox@0.1.0;
            export hive:events/subscriber@0.1.0;
        }
    ",
    world: "probe",
    generate_all,
});

use std::time::{SystemTime, UNIX_EPOCH};

use exports::hive::events::subscriber::Guest as Subscriber;
use exports::hive::service::handler::Guest as Handler;
use hive::events::outbox::{self, Op};
use hive::events::publisher;
use hive::events::types::{Delivery, Disposition, Error, Message};
use hive::service::kv;
use hive::service::types::{Request, Response};
use serde_json::json;

struct Probe;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Handler for Probe {
    fn handle(req: Request) -> Response {
        let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        match (
            req.method.as_str(),
            segments.get(1).copied(),
            segments.get(2).copied(),
        ) {
            ("POST", Some("publish"), Some(topic)) => publish(&req, topic),
            ("POST", Some("commit"), Some(topic)) => commit(&req, topic),
            ("GET", Some("seen"), _) => seen(&query_param(&req, "topic").unwrap_or_default()),
            ("GET", Some("count"), Some(topic)) => match kv::get(&format!("count/{topic}")) {
                Ok(value) => text(
                    200,
                    String::from_utf8(value.unwrap_or_else(|| b"0".to_vec())).unwrap_or_default(),
                ),
                Err(err) => text(503, format!("{err:?}")),
            },
            ("GET", Some("keys"), _) => keys(&query_param(&req, "prefix").unwrap_or_default()),
            ("GET", Some("times"), _) => times(&query_param(&req, "topic").unwrap_or_default()),
            _ => text(
                404,
                format!("no such probe action: {} {}", req.method, req.path),
            ),
        }
    }
}

fn message(req: &Request, i: u32) -> Message {
    let payload = match query_param(req, "size").and_then(|s| s.parse::<usize>().ok()) {
        Some(size) => vec![b'x'; size],
        None if !req.body.is_empty() => req.body.clone(),
        None => i.to_string().into_bytes(),
    };
    let behave = query_param(req, "behave").unwrap_or_else(|| "ack".into());
    Message {
        payload,
        content_type: Some("text/plain".into()),
        metadata: vec![("behave".into(), behave)],
        delay_ms: query_param(req, "delay_ms").and_then(|d| d.parse().ok()),
        dedup_key: query_param(req, "dedup"),
    }
}

fn publish(req: &Request, topic: &str) -> Response {
    let count: u32 = query_param(req, "count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let mut ids = Vec::new();
    for i in 0..count {
        match publisher::publish(topic, &message(req, i)) {
            Ok(id) => ids.push(id),
            Err(err) => return failed(err),
        }
    }
    text(200, json!(ids).to_string())
}

fn commit(req: &Request, topic: &str) -> Response {
    let Some(key) = query_param(req, "key") else {
        return text(400, "commit needs ?key=".into());
    };
    let ops = vec![
        Op::Set((key, req.body.clone())),
        Op::Publish((topic.to_string(), message(req, 0))),
    ];
    match outbox::commit(&ops) {
        Ok(ids) => text(200, json!(ids).to_string()),
        Err(err) => failed(err),
    }
}

fn failed(err: Error) -> Response {
    let (status, kind, message) = match err {
        Error::InvalidTopic(m) => (400, "invalid-topic", m),
        Error::TooLarge(size) => (413, "too-large", size.to_string()),
        Error::Invalid(m) => (400, "invalid", m),
        Error::Storage(m) => (503, "storage", m),
    };
    text(
        status,
        json!({ "error": kind, "message": message }).to_string(),
    )
}

fn seen(topic: &str) -> Response {
    let prefix = if topic.is_empty() {
        "seen/".to_string()
    } else {
        format!("seen/{topic}/")
    };
    let keys = match kv::list_keys(&prefix, 1_000_000) {
        Ok(keys) => keys,
        Err(err) => return text(503, format!("{err:?}")),
    };
    let mut out = String::new();
    for key in keys {
        if let Ok(Some(value)) = kv::get(&key) {
            out.push_str(&String::from_utf8_lossy(&value));
            out.push('\n');
        }
    }
    text(200, out)
}

fn times(topic: &str) -> Response {
    let prefix = format!("times/{topic}/");
    let keys = match kv::list_keys(&prefix, 1_000_000) {
        Ok(keys) => keys,
        Err(err) => return text(503, format!("{err:?}")),
    };
    let mut out = String::new();
    for key in keys {
        if let Ok(Some(value)) = kv::get(&key) {
            let id = key.strip_prefix(&prefix).unwrap_or(&key);
            out.push_str(&format!("{id} {}\n", String::from_utf8_lossy(&value)));
        }
    }
    text(200, out)
}

fn keys(prefix: &str) -> Response {
    match kv::list_keys(prefix, 1_000_000) {
        Ok(keys) => text(200, keys.join("\n")),
        Err(err) => text(503, format!("{err:?}")),
    }
}

impl Subscriber for Probe {
    fn handle(delivery: Delivery) -> Disposition {
        let behave = delivery
            .metadata
            .iter()
            .find(|(key, _)| key == "behave")
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| "ack".into());
        let record = json!({
            "topic": delivery.topic,
            "id": delivery.id,
            "attempt": delivery.attempt,
            "at_ms": now_ms(),
            "published_at_ms": delivery.published_at_ms,
            "payload": String::from_utf8_lossy(&delivery.payload),
            "content_type": delivery.content_type,
        });
        let key = format!(
            "seen/{}/{}/{:04}",
            delivery.topic, delivery.id, delivery.attempt
        );
        if kv::set(&key, record.to_string().as_bytes()).is_err()
            || kv::increment(&format!("count/{}", delivery.topic), 1).is_err()
            || kv::increment(&format!("times/{}/{}", delivery.topic, delivery.id), 1).is_err()
        {
            return Disposition::Retry(Some(100));
        }
        match behave.as_str() {
            "trap" => panic!("asked to trap on attempt {}", delivery.attempt),
            "sleep" => loop {
                std::hint::black_box(now_ms());
            },
            "oom" => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![1; 1 << 20]);
                }
            }
            "retry" => Disposition::Retry(None),
            "dead" => Disposition::DeadLetter("the probe was asked to refuse it".into()),
            other => {
                if let Some(ms) = other.strip_prefix("retry-ms:") {
                    return Disposition::Retry(ms.parse().ok());
                }
                if let Some(n) = other.strip_prefix("fail-until:") {
                    let n: u32 = n.parse().unwrap_or(1);
                    if delivery.attempt < n {
                        panic!("failing attempt {} of {n}", delivery.attempt);
                    }
                }
                Disposition::Ack
            }
        }
    }
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query
        .as_deref()?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.replace("%3A", ":").replace("%2F", "/"))
}

fn text(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.into_bytes(),
    }
}

export!(Probe);
