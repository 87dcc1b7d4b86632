//! The front door: the public HTTP/1.1 listener and everything between a
//! request's bytes and a service's call. A request goes
//! [`request::handle`] (id, route, log line) -> [`hive_world`] or
//! [`wasi_http`] (by the service's world) -> the runtime's one call path;
//! failures become responses in [`problem`].

pub mod auth;
pub mod body;
pub mod body_budget;
pub mod connections;
pub mod convert;
pub mod drained;
pub mod guarded_body;
pub mod guest_run;
pub mod hive_world;
pub mod listener;
pub mod prepend;
pub mod problem;
pub mod request;
pub mod request_span;
pub mod spin_headers;
pub mod tls;
pub mod wasi_http;

use std::sync::Arc;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use self::body_budget::BodyBudget;
use crate::config::HttpSettings;
use crate::host::Host;

/// What every public request shares: the host, and the budget its body
/// is buffered against.
pub struct Front {
    /// The running host.
    pub host: Arc<Host>,
    /// Memory for buffered request bodies, host-wide.
    pub budget: BodyBudget,
}

/// Serves `host` on `listener`, at most `max_connections` connections at
/// once, until `shutdown` completes; then lets open requests finish (up to
/// `settings.shutdown_grace`).
pub async fn serve(
    listener: TcpListener,
    host: Arc<Host>,
    settings: &HttpSettings,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{address} (at most {max_connections} connections)");

    let mut http = http1::Builder::new();
    // A head over max_header_size gets 431; a slow one is cut off (slowloris);
    // anything unparsable gets 400 from hyper itself.
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_header_size(settings.max_header_bytes)
        .keep_alive(true);
    let front = Arc::new(Front {
        host,
        budget: BodyBudget::new(settings.body_budget_bytes),
    });
    let handler = move |req| request::handle(front.clone(), req);
    listener::serve_connections(
        listener,
        http,
        tls,
        handler,
        max_connections,
        shutdown,
        settings.shutdown_grace,
    )
    .await;
    Ok(())
}
