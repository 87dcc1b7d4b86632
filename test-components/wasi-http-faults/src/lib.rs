//! A `wasi:http/proxy` component, written against the raw `wasip2` bindings
//! (no framework in between), that fails in the ways the host's
//! conformance tests need. The last path segment picks how:
//!
//! | path                 | behaviour                                                         |
//! | -------------------- | ----------------------------------------------------------------- |
//! | `/head-then-trap`    | sets a 200 head announcing `content-length: 5000000`, then panics before writing a byte |
//! | `/write-then-trap`   | sets a 200 head, writes 1 KiB, waits 300 ms, then panics           |
//! | `/buffered-echo`     | reads the whole request body, then answers 200 with its length; a read error is answered 200 with the error's debug text |
//! | `/slow-head`         | waits 10 s before answering 200                                    |
//! | `/big-body`          | sets a 200 head and writes 8 MiB, 64 KiB at a time                  |
//! | `/slow-body`         | sets a 200 head, writes 1 KiB, waits 1 s, writes again, then says on stderr that it finished |

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::{OutputStream, StreamError};

wasip2::http::proxy::export!(Faults);

struct Faults;

impl wasip2::exports::http::incoming_handler::Guest for Faults {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let action = path
            .split('?')
            .next()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        match action.as_str() {
            "head-then-trap" => {
                let headers = Fields::new();
                let _ = headers.set("content-length", &[b"5000000".to_vec()]);
                let response = OutgoingResponse::new(headers);
                let _body = response.body();
                ResponseOutparam::set(response_out, Ok(response));
                panic!("trapped after setting the response head");
            }
            "write-then-trap" => {
                let (_body, mut out) = start_body(response_out);
                let _ = out.write_all(&[b'x'; 1024]);
                let _ = out.flush();
                // Long enough for the head and the first bytes to go out.
                wasip2::clocks::monotonic_clock::subscribe_duration(300_000_000).block();
                panic!("trapped in the middle of the body");
            }
            "buffered-echo" => {
                let text = match read_all(&request) {
                    Ok(length) => format!("read {length} bytes"),
                    Err(error) => error,
                };
                respond(response_out, 200, text.as_bytes());
            }
            "slow-head" => {
                wasip2::clocks::monotonic_clock::subscribe_duration(10_000_000_000).block();
                respond(response_out, 200, b"late");
            }
            "big-body" => {
                let (body, mut out) = start_body(response_out);
                for _ in 0..128 {
                    if out.write_all(&[b'z'; 64 * 1024]).is_err() {
                        break;
                    }
                }
                drop(out);
                let _ = OutgoingBody::finish(body, None);
            }
            "slow-body" => {
                let (body, mut out) = start_body(response_out);
                let _ = out.write_all(&[b'x'; 1024]);
                let _ = out.flush();
                wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000).block();
                // The client may be gone by now; the write then fails, and
                // the guest still gets to finish.
                let _ = out.write_all(&[b'y'; 1024]);
                drop(out);
                let _ = OutgoingBody::finish(body, None);
                eprintln!("slow-body finished");
            }
            _ => respond(response_out, 404, b"unknown action"),
        }
    }
}

/// Sets a 200 head and returns its body and the stream that writes it.
fn start_body(response_out: ResponseOutparam) -> (OutgoingBody, OutputStream) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let out = body.write().expect("the stream is taken once");
    (body, out)
}

/// Reads the request body to its end; the error's debug text if that fails.
fn read_all(request: &IncomingRequest) -> Result<usize, String> {
    let body = request.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no stream".to_string())?;
    let mut length = 0;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => length += chunk.len(),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(error.to_debug_string());
            }
        }
    }
    drop(stream);
    IncomingBody::finish(body);
    Ok(length)
}

fn respond(response_out: ResponseOutparam, status: u16, text: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let mut out = body.write().expect("the stream is taken once");
    let _ = out.write_all(text);
    let _ = out.flush();
    drop(out);
    let _ = OutgoingBody::finish(body, None);
}
