//! The HTTP/1.1 front door: accepts connections, hands each request to
//! [`dispatch`](crate::dispatch), and shuts down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::HttpSettings;
use crate::dispatch;
use crate::host::Host;

/// Accepts connections on `listener` until `shutdown` completes, then stops
/// accepting and waits (up to `settings.shutdown_grace`) for open requests
/// to finish.
pub async fn serve(
    listener: TcpListener,
    host: Arc<Host>,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    tracing::info!("listening on http://{address}");

    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    // A head over max_header_size gets 431; a slow one is cut off (slowloris);
    // anything unparsable gets 400 from hyper itself.
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_header_size(settings.max_header_bytes)
        .keep_alive(true);

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually running out of file descriptors: back off
                    // briefly instead of spinning or dying.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let host = host.clone();
        let service = service_fn(move |req| dispatch::handle(host.clone(), req));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, "connection ended with an error: {err}");
            }
        });
    }

    drop(listener);
    tracing::info!("shutting down: no new connections, finishing open requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!(
                "gave up waiting for open connections after {:?}",
                settings.shutdown_grace
            );
        }
    }
    Ok(())
}

/// Completes on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
