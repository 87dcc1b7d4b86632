//! The event system from the admin API: every group's standing with the
//! last 15 minutes of publishes and handled deliveries (`GET /events`), a
//! group's dead letters and their replay, and a publish by the operator
//! (`POST /events/{topic}`), as `hive events` and the console use them.

use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::{error, parameter};
use crate::host::Host;
use crate::http::body::HttpResponse;
use crate::http::problem::{close_if_unread, json_response};
use crate::kv::StoreError;
use crate::metrics::window::{BUCKET_SECONDS, BUCKETS};
use crate::queue::{MAX_PAYLOAD_BYTES, Message, check_message, topic_problem};

/// `GET /events`: groups, subscriptions, schedules and recent rates.
pub async fn list(host: &Host) -> HttpResponse {
    let groups = match host.runtime.events().stats().await {
        Ok(groups) => groups,
        Err(err) => return store_error(&err),
    };
    let mut subscriptions = Vec::new();
    let mut schedules = Vec::new();
    for (name, service) in &host.registry.current().services {
        for s in &service.events.subscriptions {
            subscriptions.push(json!({
                "service": name,
                "topic": s.topic,
                "group": s.group.clone().unwrap_or_else(|| name.clone()),
                "max_attempts": s.max_attempts,
                "backoff_ms": s.backoff.as_millis() as u64,
                "max_backoff_ms": s.max_backoff.as_millis() as u64,
                "concurrency": s.concurrency,
            }));
        }
        for s in &service.events.schedules {
            schedules.push(json!({
                "service": name,
                "name": s.name,
                "topic": format!("schedule:{}", s.name),
                "when": s.when.describe(),
            }));
        }
    }
    let (published, handled) = host.metrics().events.recent();
    json_response(
        StatusCode::OK,
        &json!({
            "groups": groups,
            "subscriptions": subscriptions,
            "schedules": schedules,
            "bucket_seconds": BUCKET_SECONDS,
            "window_seconds": BUCKET_SECONDS * BUCKETS as u64,
            "published": published,
            "handled": handled,
        }),
    )
}

/// `GET /events/{topic}/{group}/dead`: the group's dead letters.
pub async fn dead(host: &Host, topic: &str, group: &str) -> HttpResponse {
    match host.runtime.events().dead_letters(topic, group, 1000).await {
        Ok(letters) => json_response(
            StatusCode::OK,
            &json!({ "topic": topic, "group": group, "dead": letters }),
        ),
        Err(err) => store_error(&err),
    }
}

/// `POST /events/{topic}/{group}/replay`: the group's dead letters, due
/// again.
pub async fn replay(host: &Host, topic: &str, group: &str) -> HttpResponse {
    match host.runtime.events().replay(topic, group).await {
        Ok(count) => {
            tracing::info!(
                topic,
                group,
                "replayed {count} dead letter(s) over the admin API"
            );
            json_response(
                StatusCode::OK,
                &json!({ "topic": topic, "group": group, "replayed": count }),
            )
        }
        Err(err) => store_error(&err),
    }
}

/// `POST /events/{topic}[?dedup=KEY&delay_ms=MS]`: publishes the body, with
/// the request's content type.
pub async fn publish(
    host: &Host,
    topic: &str,
    query: &str,
    req: Request<Incoming>,
) -> HttpResponse {
    if let Some(problem) = topic_problem(topic) {
        return close_if_unread(error(StatusCode::BAD_REQUEST, &problem), true);
    }
    if req.body().size_hint().lower() > MAX_PAYLOAD_BYTES as u64 {
        return close_if_unread(
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a payload is at most {MAX_PAYLOAD_BYTES} bytes"),
            ),
            true,
        );
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match http_body_util::Limited::new(req.into_body(), MAX_PAYLOAD_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes().to_vec(),
        Err(err) => {
            return close_if_unread(
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("reading the payload: {err}"),
                ),
                true,
            );
        }
    };
    let delay = match parameter(query, "delay_ms").map(|d| d.parse::<u64>()) {
        None => None,
        Some(Ok(ms)) => Some(std::time::Duration::from_millis(ms)),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "delay_ms is not a number"),
    };
    let message = Message {
        payload: body,
        content_type,
        metadata: vec![("published-by".into(), "admin".into())],
        delay,
        dedup_key: parameter(query, "dedup"),
    };
    if let Err(err) = check_message(&message) {
        return store_error(&err);
    }
    match host.runtime.events().publish(topic, message).await {
        Ok(id) => {
            host.metrics().published("(admin)", topic);
            json_response(StatusCode::ACCEPTED, &json!({ "topic": topic, "id": id }))
        }
        Err(err) => store_error(&err),
    }
}

fn store_error(err: &StoreError) -> HttpResponse {
    let status = match err {
        StoreError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::ValueTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body: Value = json!({ "error": err.to_string(), "status": status.as_u16() });
    json_response(status, &body)
}
