//! `native-hello`: the benchmark ceiling for `just bench` (`bench/run.sh`).
//!
//! A plain Rust HTTP server (tokio multi-thread runtime, hyper 1, HTTP/1.1
//! with keep-alive) that answers every request with the same bytes and
//! content-type as Hive's `hello` component: `200`, `text/plain;
//! charset=utf-8`, `Hello, world!\n`. There is no WebAssembly, routing,
//! limits or logging here, so it shows how fast the machine can serve that
//! response at all; Hive and `wasmtime serve` are quoted as a ratio of it.
//!
//! Usage: `native-hello --listen 127.0.0.1:PORT` (default `127.0.0.1:8090`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, world!\n";
const CONTENT_TYPE_VALUE: &str = "text/plain; charset=utf-8";
const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
const USAGE: &str = "usage: native-hello [--listen ADDR:PORT]";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let listen = match parse_args(std::env::args().skip(1)) {
        Ok(Some(listen)) => listen,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("native-hello: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(listen).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("native-hello: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `--listen ADDR` / `--listen=ADDR`; `Ok(None)` means `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<SocketAddr>, String> {
    let mut listen = DEFAULT_LISTEN.to_string();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = args.next().ok_or("--listen needs a value")?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = value.to_string();
        } else if arg == "-h" || arg == "--help" {
            return Ok(None);
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    listen
        .parse()
        .map(Some)
        .map_err(|err| format!("bad --listen address {listen:?}: {err}"))
}

async fn serve(listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!(
        "native-hello listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Running out of file descriptors and similar are transient:
            // keep serving the connections already open.
            Err(err) => {
                eprintln!("native-hello: accept failed: {err}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(hello));
            // A client that goes away mid-request is not worth reporting.
            let _ = connection.await;
        });
    }
}

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_VALUE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parses_listen_forms_and_rejects_bad_input() {
        let expected: SocketAddr = "127.0.0.1:9000".parse().expect("valid address");
        assert_eq!(
            parse_args(args(&["--listen", "127.0.0.1:9000"])),
            Ok(Some(expected))
        );
        assert_eq!(
            parse_args(args(&["--listen=127.0.0.1:9000"])),
            Ok(Some(expected))
        );
        assert_eq!(parse_args(args(&["--help"])), Ok(None));
        assert!(parse_args(args(&["--listen"])).is_err());
        assert!(parse_args(args(&["--listen", "nope"])).is_err());
        assert!(parse_args(args(&["--port", "1"])).is_err());
    }
}
