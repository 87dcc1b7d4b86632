//! `hive:events/publisher` and `hive:events/outbox`: a service publishes
//! to topics, alone or together with writes to its own key-value
//! namespace. What reaches the store is checked here first (topic names,
//! sizes, keys), so a bad publish is the publisher's error and stores
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::event_types::{Error, Message as WitMessage};
use super::bindings::outbox::{self, Op};
use super::bindings::publisher;
use super::kv::store_error_kind;
use crate::kv::{StoreError, check_key, check_value};
use crate::metrics::Metrics;
use crate::queue::{EventStore, MAX_COMMIT_OPS, Message, TxOp, check_message, topic_problem};
use crate::trace::{SpanScope, inject_pairs};

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        match err {
            StoreError::InvalidKey(reason) => Error::Invalid(reason),
            StoreError::ValueTooLarge(size) => Error::TooLarge(size),
            StoreError::NotANumber => Error::Invalid("not a number".into()),
            StoreError::Storage(reason) => Error::Storage(reason),
        }
    }
}

/// One service's access to the event store.
pub struct EventsCtx {
    store: Arc<dyn EventStore>,
    /// The service: its kv namespace for commits, and the publisher the
    /// service graph names.
    component: Arc<str>,
    metrics: Arc<Metrics>,
    trace: SpanScope,
}

impl EventsCtx {
    /// Publishing as `component` into `store`, counted in `metrics`; each
    /// publish is a span below `trace`'s current one, and its context
    /// travels in the message's metadata to every delivery.
    pub fn new(
        store: Arc<dyn EventStore>,
        component: Arc<str>,
        metrics: Arc<Metrics>,
        trace: SpanScope,
    ) -> EventsCtx {
        EventsCtx {
            store,
            component,
            metrics,
            trace,
        }
    }
}

/// A guest's message as the store takes it, checked.
pub fn message(topic: &str, message: WitMessage) -> Result<Message, Error> {
    if let Some(problem) = topic_problem(topic) {
        return Err(Error::InvalidTopic(problem));
    }
    let message = Message {
        payload: message.payload,
        content_type: message.content_type,
        metadata: message.metadata,
        delay: message.delay_ms.map(Duration::from_millis),
        dedup_key: message.dedup_key,
    };
    check_message(&message)?;
    Ok(message)
}

impl publisher::Host for EventsCtx {
    async fn publish(&mut self, topic: String, wit: WitMessage) -> Result<String, Error> {
        let mut message = message(&topic, wit)?;
        let (mut span, context) =
            self.trace
                .producer(|| format!("send {topic}"), &self.component, Some(&topic));
        if let Some(context) = &context {
            inject_pairs(context, &mut message.metadata);
        }
        let published = self.store.publish(&topic, message).await;
        match (&mut span, &published) {
            (Some(span), Ok(id)) => span.set("messaging.message.id", id.clone()),
            (Some(span), Err(err)) => span.fail(store_error_kind(err), err.to_string()),
            (None, _) => {}
        }
        let id = published?;
        self.metrics.published(&self.component, &topic);
        Ok(id)
    }
}

impl outbox::Host for EventsCtx {
    async fn commit(&mut self, ops: Vec<Op>) -> Result<Vec<String>, Error> {
        if ops.len() > MAX_COMMIT_OPS {
            return Err(Error::Invalid(format!(
                "{} ops; a commit holds at most {MAX_COMMIT_OPS}",
                ops.len()
            )));
        }
        let mut checked = Vec::with_capacity(ops.len());
        let mut topics = Vec::new();
        for op in ops {
            checked.push(match op {
                Op::Set((key, value)) => {
                    check_key(&key)?;
                    check_value(&value)?;
                    TxOp::Set(key, value)
                }
                Op::Delete(key) => {
                    check_key(&key)?;
                    TxOp::Delete(key)
                }
                Op::Publish((topic, wit)) => {
                    let message = message(&topic, wit)?;
                    topics.push(topic.clone());
                    TxOp::Publish(topic, message)
                }
            });
        }
        // Checked, so the commit's span is of a commit that is tried.
        let (mut span, context) = self.trace.producer(
            || format!("commit {}", self.component),
            &self.component,
            None,
        );
        if let Some(context) = &context {
            for op in &mut checked {
                if let TxOp::Publish(_, message) = op {
                    inject_pairs(context, &mut message.metadata);
                }
            }
        }
        if let Some(span) = &mut span {
            span.set("messaging.batch.message_count", topics.len() as i64);
            span.set("db.namespace", self.component.to_string());
        }
        let committed = self.store.commit(&self.component, checked).await;
        if let (Some(span), Err(err)) = (&mut span, &committed) {
            span.fail(store_error_kind(err), err.to_string());
        }
        drop(span);
        let ids = committed?;
        for topic in topics {
            self.metrics.published(&self.component, &topic);
        }
        Ok(ids)
    }
}

impl super::bindings::event_types::Host for EventsCtx {}

/// Links `hive:events/publisher` and `hive:events/outbox` to the
/// [`EventsCtx`] that `get` finds in `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut EventsCtx,
) -> wasmtime::Result<()> {
    super::bindings::event_types::add_to_linker::<T, HasSelf<EventsCtx>>(linker, get)?;
    publisher::add_to_linker::<T, HasSelf<EventsCtx>>(linker, get)?;
    outbox::add_to_linker::<T, HasSelf<EventsCtx>>(linker, get)
}
