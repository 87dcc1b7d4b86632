//! `wasi:messaging@0.2.0-draft` on Hive's event store, so components
//! written to the proposal run unchanged: `producer.send` publishes to a
//! Hive topic (durably, as `hive:events/publisher` does), and a delivery
//! to a component exporting `incoming-handler` arrives as a `message`
//! resource. There is one broker, the host's store: any client name
//! connects to it. `request-reply` is not served.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::bindings::messaging_types::{self, Error, Metadata};
use super::bindings::producer;
use super::kv::store_error_kind;
use super::lost;
use crate::kv::StoreError;
use crate::metrics::Metrics;
use crate::queue::{EventStore, Message, check_message, topic_problem};
use crate::trace::{SpanScope, inject_pairs};

/// A guest's connection (to the one broker there is, whatever its name).
pub struct Client;

/// A message, made by the guest to send or by the host to deliver.
#[derive(Debug, Clone, Default)]
pub struct MessageData {
    /// The topic it arrived on (a delivered message only).
    pub topic: Option<String>,
    /// Its payload.
    pub data: Vec<u8>,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its metadata.
    pub metadata: Vec<(String, String)>,
}

/// One service's access to the broker.
pub struct MessagingCtx {
    store: Arc<dyn EventStore>,
    component: Arc<str>,
    metrics: Arc<Metrics>,
    trace: SpanScope,
}

impl MessagingCtx {
    /// Sending as `component` into `store`, counted in `metrics`, each
    /// send a span below `trace`'s current one.
    pub fn new(
        store: Arc<dyn EventStore>,
        component: Arc<str>,
        metrics: Arc<Metrics>,
        trace: SpanScope,
    ) -> MessagingCtx {
        MessagingCtx {
            store,
            component,
            metrics,
            trace,
        }
    }
}

/// The context with the instance's resource table, where clients and
/// messages live.
pub struct MessagingView<'a> {
    /// The service's context.
    pub ctx: &'a mut MessagingCtx,
    /// The instance's resources.
    pub table: &'a mut ResourceTable,
}

struct HasMessaging;

impl HasData for HasMessaging {
    type Data<'a> = MessagingView<'a>;
}

impl MessagingView<'_> {
    fn message(&mut self, handle: &Resource<MessageData>) -> wasmtime::Result<&mut MessageData> {
        self.table.get_mut(handle).map_err(|_| lost("message"))
    }
}

impl messaging_types::HostClient for MessagingView<'_> {
    fn connect(&mut self, name: String) -> wasmtime::Result<Result<Resource<Client>, Error>> {
        tracing::debug!(component = %self.ctx.component, "wasi:messaging client {name:?} connected");
        Ok(Ok(self.table.push(Client)?))
    }

    fn disconnect(&mut self, _client: Resource<Client>) -> wasmtime::Result<Result<(), Error>> {
        Ok(Ok(()))
    }

    fn drop(&mut self, client: Resource<Client>) -> wasmtime::Result<()> {
        self.table.delete(client)?;
        Ok(())
    }
}

impl messaging_types::HostMessage for MessagingView<'_> {
    fn new(&mut self, data: Vec<u8>) -> wasmtime::Result<Resource<MessageData>> {
        Ok(self.table.push(MessageData {
            data,
            ..MessageData::default()
        })?)
    }

    fn topic(&mut self, message: Resource<MessageData>) -> wasmtime::Result<Option<String>> {
        Ok(self.message(&message)?.topic.clone())
    }

    fn content_type(&mut self, message: Resource<MessageData>) -> wasmtime::Result<Option<String>> {
        Ok(self.message(&message)?.content_type.clone())
    }

    fn set_content_type(
        &mut self,
        message: Resource<MessageData>,
        content_type: String,
    ) -> wasmtime::Result<()> {
        self.message(&message)?.content_type = Some(content_type);
        Ok(())
    }

    fn data(&mut self, message: Resource<MessageData>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.message(&message)?.data.clone())
    }

    fn set_data(&mut self, message: Resource<MessageData>, data: Vec<u8>) -> wasmtime::Result<()> {
        self.message(&message)?.data = data;
        Ok(())
    }

    fn metadata(&mut self, message: Resource<MessageData>) -> wasmtime::Result<Option<Metadata>> {
        let metadata = &self.message(&message)?.metadata;
        Ok((!metadata.is_empty()).then(|| metadata.clone()))
    }

    fn add_metadata(
        &mut self,
        message: Resource<MessageData>,
        key: String,
        value: String,
    ) -> wasmtime::Result<()> {
        self.message(&message)?.metadata.push((key, value));
        Ok(())
    }

    fn set_metadata(
        &mut self,
        message: Resource<MessageData>,
        meta: Metadata,
    ) -> wasmtime::Result<()> {
        self.message(&message)?.metadata = meta;
        Ok(())
    }

    fn remove_metadata(
        &mut self,
        message: Resource<MessageData>,
        key: String,
    ) -> wasmtime::Result<()> {
        self.message(&message)?.metadata.retain(|(k, _)| *k != key);
        Ok(())
    }

    fn drop(&mut self, message: Resource<MessageData>) -> wasmtime::Result<()> {
        self.table.delete(message)?;
        Ok(())
    }
}

impl messaging_types::Host for MessagingView<'_> {}

impl producer::Host for MessagingView<'_> {
    async fn send(
        &mut self,
        _client: Resource<Client>,
        topic: String,
        message: Resource<MessageData>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let sent = self.table.delete(message).map_err(|_| lost("message"))?;
        if let Some(problem) = topic_problem(&topic) {
            return Ok(Err(Error::Other(problem)));
        }
        let mut message = Message {
            payload: sent.data,
            content_type: sent.content_type,
            metadata: sent.metadata,
            delay: None,
            dedup_key: None,
        };
        if let Err(err) = check_message(&message) {
            return Ok(Err(Error::Other(err.to_string())));
        }
        let ctx = &self.ctx;
        let (mut span, context) =
            ctx.trace
                .producer(|| format!("send {topic}"), &ctx.component, Some(&topic));
        if let Some(context) = &context {
            inject_pairs(context, &mut message.metadata);
        }
        let published = ctx.store.publish(&topic, message).await;
        if let (Some(span), Err(err)) = (&mut span, &published) {
            span.fail(store_error_kind(err), err.to_string());
        }
        match published {
            Ok(_) => {
                ctx.metrics.published(&ctx.component, &topic);
                Ok(Ok(()))
            }
            Err(StoreError::Storage(reason)) => Ok(Err(Error::Connection(reason))),
            Err(err) => Ok(Err(Error::Other(err.to_string()))),
        }
    }
}

/// Links `wasi:messaging/types` and `producer` to the view `get` makes of
/// `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> MessagingView<'_>,
) -> wasmtime::Result<()> {
    messaging_types::add_to_linker::<T, HasMessaging>(linker, get)?;
    producer::add_to_linker::<T, HasMessaging>(linker, get)
}
