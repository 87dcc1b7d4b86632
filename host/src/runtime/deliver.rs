//! Handing one delivery to a service: the same call path as a request (a
//! slot, a fresh or kept instance, the deadline, the memory limit), into
//! whichever export receives its deliveries.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::SpanKind;

use super::Runtime;
use super::call::{Caller, call};
use super::failure::Failure;
use super::service::Service;
use super::world::Receiver;
use crate::api::bindings::event_types::{Delivery as WitDelivery, Disposition};
use crate::api::messaging::MessageData;
use crate::queue::Delivery;
use crate::trace::{HostSpan, REQUEST_ID, extract_pairs};

/// What the handler said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Handled.
    Ack,
    /// Deliver again: after this long, or after the backoff; with the
    /// handler's reason, if it gave one.
    Retry(Option<Duration>, Option<String>),
    /// Never handle it; why.
    DeadLetter(String),
}

/// Calls `service`'s receiver with `delivery`, as the request
/// `request_id`. A trap, timeout or memory-limit hit is the [`Failure`].
pub async fn deliver(
    runtime: &Runtime,
    service: &Arc<Service>,
    delivery: &Delivery,
    topic: &str,
    request_id: Arc<str>,
) -> Result<Answer, Failure> {
    let Some(receiver) = service.entry.receiver() else {
        return Err(Failure::with_detail(
            super::failure::FailureKind::Trap,
            "the component no longer exports a subscriber".to_string(),
        ));
    };
    let mut span = consumer_span(runtime, service, delivery, topic, &request_id);
    let caller = Caller::request(request_id).traced(span.as_ref().map(HostSpan::context));
    let answer = call(
        runtime,
        service,
        caller,
        async |store, live| match receiver {
            Receiver::Subscriber => {
                let wit = WitDelivery {
                    topic: topic.to_string(),
                    id: delivery.header.id.clone(),
                    payload: delivery.payload.clone(),
                    content_type: delivery.header.content_type.clone(),
                    metadata: delivery.header.metadata.clone(),
                    attempt: delivery.attempt,
                    published_at_ms: delivery.header.published_at_ms,
                };
                let subscriber = live.subscriber(&mut *store, &service.entry)?;
                Ok(match subscriber.call_handle(&mut *store, &wit).await? {
                    Disposition::Ack => Answer::Ack,
                    Disposition::Retry(delay) => {
                        Answer::Retry(delay.map(Duration::from_millis), None)
                    }
                    Disposition::DeadLetter(reason) => Answer::DeadLetter(reason),
                })
            }
            Receiver::Messaging => {
                let message = store.data_mut().table().push(MessageData {
                    topic: Some(topic.to_string()),
                    data: delivery.payload.clone(),
                    content_type: delivery.header.content_type.clone(),
                    metadata: delivery.header.metadata.clone(),
                })?;
                let handler = live.messaging(&mut *store, &service.entry)?;
                Ok(match handler.call_handle(&mut *store, message).await? {
                    Ok(()) => Answer::Ack,
                    Err(err) => Answer::Retry(None, Some(format!("{err:?}"))),
                })
            }
        },
    )
    .await;
    if let Some(span) = &mut span {
        match &answer {
            Ok(Answer::Ack) => {}
            Ok(Answer::Retry(_, reason)) => {
                span.fail("retry", reason.clone().unwrap_or_else(|| "retry".into()));
            }
            Ok(Answer::DeadLetter(reason)) => span.fail("dead-letter", reason.clone()),
            Err(failure) => span.fail(failure.kind.name(), failure.describe()),
        }
    }
    answer
}

/// The consumer span of a delivery: below the publish's span when the
/// message carries one (so a trace follows an order into whoever handles
/// its event), else the start of a trace of its own.
fn consumer_span(
    runtime: &Runtime,
    service: &Service,
    delivery: &Delivery,
    topic: &str,
    request_id: &Arc<str>,
) -> Option<HostSpan> {
    let tracing = runtime.tracing()?;
    let producer = extract_pairs(&delivery.header.metadata);
    let mut span = tracing.root(
        format!("process {topic}"),
        SpanKind::Consumer,
        producer.as_ref(),
    );
    span.set("messaging.system", "hive");
    span.set("messaging.operation.type", "process");
    span.set("messaging.destination.name", topic.to_string());
    span.set("messaging.message.id", delivery.header.id.clone());
    span.set(
        "messaging.message.delivery_count",
        i64::from(delivery.attempt),
    );
    span.set("hive.component", service.name().to_string());
    span.set(REQUEST_ID, request_id.to_string());
    Some(span)
}
