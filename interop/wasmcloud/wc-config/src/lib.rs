//! Reads its configuration through `wasi:config/store@0.2.0-draft`, as a
//! wasmCloud component does: `/wc-config` lists every value, one
//! `key=value` line each; `/wc-config/<key>` answers one, or 404.

use wasmcloud_component::http;
use wasmcloud_component::wasi::config::store;

struct Config;

http::export!(Config);

impl http::Server for Config {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let key = request
            .uri()
            .path()
            .trim_start_matches("/wc-config")
            .trim_start_matches('/')
            .to_string();
        let (status, body) = if key.is_empty() {
            match store::get_all() {
                Ok(mut pairs) => {
                    pairs.sort();
                    let lines: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                    (200, lines)
                }
                Err(err) => (500, format!("{err:?}\n")),
            }
        } else {
            match store::get(&key) {
                Ok(Some(value)) => (200, value),
                Ok(None) => (404, format!("no config value {key}\n")),
                Err(err) => (500, format!("{err:?}\n")),
            }
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
        Ok(response)
    }
}
