//! `hello-http`: a standard `wasi:http/proxy` component, written with the
//! `wstd` crate and nothing Hive-specific, so the same `.wasm` also runs under
//! `wasmtime serve`, Spin or wasmCloud.
//!
//! - `GET /hello-http?name=ana` answers `Hello, ana!`
//! - `POST /hello-http/echo` streams the request body straight back, so a
//!   body far larger than the component's memory passes through
//! - `GET /hello-http/headers` lists the names of the request's headers,
//!   one a line: what the host hands a standard component
//! - `GET /hello-http/fetch?url=http://...` fetches the URL with outgoing
//!   HTTP, which the host allows only for origins in the manifest's
//!   `allowed-outbound`

use wstd::http::body::Body;
use wstd::http::{Client, Error, HeaderValue, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let path = request.uri().path().to_string();
    match path.as_str() {
        "/hello-http" => Ok(greet(&request)),
        "/hello-http/echo" => Ok(Response::new(request.into_body())),
        "/hello-http/fetch" => Ok(fetch(&request).await),
        "/hello-http/headers" => Ok(header_names(&request)),
        _ => Ok(text(StatusCode::NOT_FOUND, format!("nothing at {path}\n"))),
    }
}

fn greet(request: &Request<Body>) -> Response<Body> {
    let name = query_value(request, "name").unwrap_or("world");
    text(StatusCode::OK, format!("Hello, {name}!\n"))
}

fn header_names(request: &Request<Body>) -> Response<Body> {
    let mut names: Vec<&str> = request.headers().keys().map(|name| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut body = names.join("\n");
    body.push('\n');
    text(StatusCode::OK, body)
}

/// Fetches `?url=` and relays its status and body; a failure (including
/// the host denying the origin) becomes a 502 saying why.
async fn fetch(request: &Request<Body>) -> Response<Body> {
    let Some(url) = query_value(request, "url") else {
        return text(StatusCode::BAD_REQUEST, "missing ?url=\n".into());
    };
    let outgoing = match Request::get(url).body(Body::empty()) {
        Ok(outgoing) => outgoing,
        Err(err) => return text(StatusCode::BAD_REQUEST, format!("bad url: {err}\n")),
    };
    let response = match Client::new().send(outgoing).await {
        Ok(response) => response,
        Err(err) => return text(StatusCode::BAD_GATEWAY, format!("fetch failed: {err:?}\n")),
    };
    let status = response.status();
    let mut body = response.into_body();
    match body.str_contents().await {
        Ok(contents) => text(status, format!("fetched: {contents}")),
        Err(err) => text(
            StatusCode::BAD_GATEWAY,
            format!("reading failed: {err:?}\n"),
        ),
    }
}

/// A query parameter's raw value (no decoding: this demo keeps it simple).
fn query_value<'a>(request: &'a Request<Body>, key: &str) -> Option<&'a str> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
