//! `hello`: the smallest useful Hive service.
//!
//! `GET /hello?name=ana` and `GET /hello/ana` both answer `Hello, ana!`. The
//! greeting and the name used when none is given come from the service's
//! config (see `service.toml`), so they change without a rebuild.

wit_bindgen::generate!({
    world: "service",
    path: "../../wit",
});

use exports::hive::service::handler::Guest;
use hive::service::config;
use hive::service::log::{self, Level};
use hive::service::types::{Request, Response};

struct Hello;

impl Guest for Hello {
    fn handle(req: Request) -> Response {
        let name = name_from_params(&req)
            .or_else(|| name_from_query(&req))
            .or_else(|| config::get("default-name"))
            .unwrap_or_else(|| "world".to_string());
        let greeting = config::get("greeting").unwrap_or_else(|| "Hello".to_string());
        log::log(Level::Info, &format!("greeting {name}"));

        Response {
            status: 200,
            headers: vec![(
                "content-type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            )],
            body: format!("{greeting}, {name}!\n").into_bytes(),
        }
    }
}

/// The `:name` segment of `/hello/:name`, already percent-decoded by the host.
fn name_from_params(req: &Request) -> Option<String> {
    req.params
        .iter()
        .find(|(key, value)| key == "name" && !value.is_empty())
        .map(|(_, value)| value.clone())
}

/// `?name=...` from the query string, form-decoded.
fn name_from_query(req: &Request) -> Option<String> {
    let query = req.query.as_deref()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, value)| key == "name" && !value.is_empty())
        .map(|(_, value)| value.into_owned())
}

export!(Hello);
