//! `hello-p3`: a WASI 0.3 `wasi:http/service` component, written with the
//! `wasip3` crate (the Rust registry's bindings for WASI 0.3) and nothing
//! Hive-specific: its handler is an `async fn`, and it writes its body from
//! a task of its own after returning the response.
//!
//! - `GET /hello-p3?name=ana` answers `Hello, ana!`
//! - `POST /hello-p3/echo` streams the request body straight back

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_future, wit_stream};

wasip3::http::service::export!(HelloP3);

struct HelloP3;

impl wasip3::exports::http::handler::Guest for HelloP3 {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path_and_query = request.get_path_with_query().unwrap_or_default();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query.as_str(), ""));
        match path {
            "/hello-p3/echo" => Ok(echo(request)),
            "/hello-p3" => {
                let name = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("name="))
                    .unwrap_or("world");
                text(200, format!("Hello, {name}!\n"))
            }
            _ => text(404, format!("nothing at {path}\n")),
        }
    }
}

/// The request's body, handed back as the response's: the host relays it.
fn echo(request: Request) -> Response {
    let (done_tx, done_rx) = wit_future::new(|| Ok(()));
    let (body, trailers) = Request::consume_body(request, done_rx);
    let (response, _sent) = Response::new(Fields::new(), Some(body), trailers);
    drop(done_tx);
    response
}

fn text(status: u16, body: String) -> Result<Response, ErrorCode> {
    let body = body.into_bytes();
    let headers = Fields::from_list(&[
        (
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        ),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .map_err(|err| ErrorCode::InternalError(Some(format!("{err:?}"))))?;
    let (mut writer, reader) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(reader), trailers_rx);
    drop(trailers_tx);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some(format!("bad status {status}"))))?;
    // The host reads the body once it has the response: write it after.
    wasip3::wit_bindgen::spawn_local(async move {
        writer.write_all(body).await;
    });
    Ok(response)
}
