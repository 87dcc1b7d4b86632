//! `hive:service/trace`: a service reads the W3C context of the call it
//! serves and adds spans of its own below that call's span. Spans live in
//! the instance's resource table and end when the guest drops them (or
//! when the instance goes, at the latest).

use opentelemetry::trace::SpanKind;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::bindings::trace::{self, HostSpan as HostSpanResource};
use super::lost;
use crate::trace::{HostSpan, SpanScope, TRACEPARENT, traceparent};

/// Longest attribute key a guest may set.
const MAX_KEY: usize = 128;
/// Longest attribute value a guest may set.
const MAX_VALUE: usize = 4096;

/// A guest's span: `None` when nothing is recorded.
pub struct GuestSpan(Option<HostSpan>);

/// The instance's span scope with its resource table.
pub struct TraceView<'a> {
    /// Where the guest's spans go.
    pub scope: &'a SpanScope,
    /// The instance's resources.
    pub table: &'a mut ResourceTable,
}

struct HasTrace;

impl HasData for HasTrace {
    type Data<'a> = TraceView<'a>;
}

impl TraceView<'_> {
    fn span(&mut self, handle: &Resource<GuestSpan>) -> wasmtime::Result<&mut GuestSpan> {
        self.table.get_mut(handle).map_err(|_| lost("span"))
    }
}

impl trace::Host for TraceView<'_> {
    fn traceparent(&mut self) -> wasmtime::Result<Option<String>> {
        let Some(current) = self.scope.current() else {
            return Ok(None);
        };
        Ok(traceparent(&current)
            .into_iter()
            .find(|(name, _)| *name == TRACEPARENT)
            .map(|(_, value)| value))
    }
}

impl HostSpanResource for TraceView<'_> {
    fn new(&mut self, name: String) -> wasmtime::Result<Resource<GuestSpan>> {
        let mut span = self.scope.child(name, SpanKind::Internal);
        if let Some(span) = &mut span {
            span.set("hive.guest", true);
        }
        Ok(self.table.push(GuestSpan(span))?)
    }

    fn set_attribute(
        &mut self,
        handle: Resource<GuestSpan>,
        key: String,
        value: String,
    ) -> wasmtime::Result<()> {
        if key.is_empty() || key.len() > MAX_KEY || value.len() > MAX_VALUE {
            // A guest's oversized attribute is dropped, not a trap: traces
            // are never a reason for a request to fail.
            return Ok(());
        }
        if let Some(span) = &mut self.span(&handle)?.0 {
            span.set_owned(key, value);
        }
        Ok(())
    }

    fn fail(&mut self, handle: Resource<GuestSpan>, message: String) -> wasmtime::Result<()> {
        if let Some(span) = &mut self.span(&handle)?.0 {
            span.fail("guest", message);
        }
        Ok(())
    }

    fn drop(&mut self, handle: Resource<GuestSpan>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

/// Links `hive:service/trace` to the [`TraceView`] that `get` makes of `T`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> TraceView<'_>,
) -> wasmtime::Result<()> {
    trace::add_to_linker::<T, HasTrace>(linker, get)
}
