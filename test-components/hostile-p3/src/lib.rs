//! A WASI 0.3 `wasi:http/service` component that misbehaves on purpose. The
//! last path segment picks how:
//!
//! | path                | behaviour                                                    |
//! | ------------------- | ------------------------------------------------------------ |
//! | `/ok`               | answers 200 `ok`                                             |
//! | `/loop`             | spins forever inside `handle`, never yielding                |
//! | `/sleep?ms=N`       | waits N ms on the monotonic clock (an async host call), then answers |
//! | `/trap-mid-stream`  | answers 200, writes 1 KiB of body, waits 300 ms, then panics |
//! | `/huge?mib=N`       | answers with an N MiB body (default 32)                      |
//! | `/count`            | how many requests this instance has served                   |

use std::sync::atomic::{AtomicU64, Ordering};

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

wasip3::http::service::export!(HostileP3);

struct HostileP3;

/// Requests served by this instance.
static SERVED: AtomicU64 = AtomicU64::new(0);

impl wasip3::exports::http::handler::Guest for HostileP3 {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        let path_and_query = request.get_path_with_query().unwrap_or_default();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query.as_str(), ""));
        let number = |key: &str, default: u64| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .unwrap_or(default)
        };
        match path.rsplit('/').next().unwrap_or_default() {
            "ok" => respond(200, vec![b"ok".to_vec()], None),
            "loop" => {
                let mut spins: u64 = 0;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            "sleep" => {
                let ms = number("ms", 100);
                wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
                respond(200, vec![format!("slept {ms} ms").into_bytes()], None)
            }
            "trap-mid-stream" => respond(200, vec![vec![b'x'; 1024]], Some(300)),
            "huge" => {
                let mib = number("mib", 32) as usize;
                respond(200, vec![vec![b'h'; 1 << 20]; mib], None)
            }
            "count" => respond(200, vec![served.to_string().into_bytes()], None),
            other => respond(
                404,
                vec![format!("unknown action {other:?}").into_bytes()],
                None,
            ),
        }
    }
}

/// A response whose body is `chunks`, written after `handle` returns; with
/// `trap_after_ms`, the writer waits that long after the chunks and panics.
fn respond(
    status: u16,
    chunks: Vec<Vec<u8>>,
    trap_after_ms: Option<u64>,
) -> Result<Response, ErrorCode> {
    let (mut writer, reader) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(Fields::new(), Some(reader), trailers_rx);
    let _ = response.set_status_code(status);
    wasip3::wit_bindgen::spawn_local(async move {
        for chunk in chunks {
            if !writer.write_all(chunk).await.is_empty() {
                return;
            }
        }
        if let Some(ms) = trap_after_ms {
            wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
            panic!("hostile-p3 trapped in the middle of its body");
        }
        drop(writer);
        drop(trailers_tx);
    });
    Ok(response)
}
