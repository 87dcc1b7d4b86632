//! Handing one delivery to a service: the same call path as a request (a
//! slot, a fresh or kept instance, the deadline, the memory limit), into
//! whichever export receives its deliveries.

use std::sync::Arc;
use std::time::Duration;

use super::Runtime;
use super::call::{Caller, call};
use super::failure::Failure;
use super::service::Service;
use super::world::Receiver;
use crate::api::bindings::event_types::{Delivery as WitDelivery, Disposition};
use crate::api::messaging::MessageData;
use crate::queue::Delivery;

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
    call(
        runtime,
        service,
        Caller::request(request_id),
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
    .await
}
