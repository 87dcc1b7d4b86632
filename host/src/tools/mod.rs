//! The command line's helpers beyond serving: building component crates,
//! scaffolding new ones, rebuilding on save, inspecting a file, and a
//! client for a running host's admin API.

pub mod build;
pub mod client;
pub mod componentize;
pub mod dev;
pub mod inspect;
pub mod new;
pub mod top;
pub mod trace_tree;
pub mod wit;
