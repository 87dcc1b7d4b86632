//! `hive:service/types`: the request and response records. It defines
//! types only, but a component that uses them imports the interface, so
//! the linker must still provide it.

use wasmtime::component::{HasSelf, Linker};

use super::bindings::types;

/// The (empty, stateless) host side of `types`.
pub struct TypesCtx;

impl types::Host for TypesCtx {}

/// Links `hive:service/types`. The interface has no functions, so no store
/// ever needs a context for it: the getter hands out a zero-sized value,
/// which costs no allocation.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasSelf<TypesCtx>>(linker, |_| Box::leak(Box::new(TypesCtx)))
}
