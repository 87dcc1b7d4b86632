//! An HTTP component as Spin users write it: spin-sdk's `Router` on the
//! full path (its component route is `/spin-router/...`) with a path
//! parameter, Spin's key-value store and its variables.

use spin_sdk::http::{IntoResponse, Params, Request, Response, Router};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::variables;

#[http_component]
fn handle(req: Request) -> Response {
    let mut router = Router::new();
    router.get("/spin-router/hello/:name", hello);
    router.post("/spin-router/visits", visit);
    router.get("/spin-router/stores/:label", open_store);
    router.get("/spin-router/variables/:name", variable);
    router.get("/spin-router/headers", spin_headers);
    router.handle(req)
}

fn hello(_req: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let name = params.get("name").unwrap_or("world");
    Ok(Response::new(200, format!("Hello, {name}!")))
}

/// Counts visits in the default store: read, add one, write.
fn visit(_req: Request, _params: Params) -> anyhow::Result<impl IntoResponse> {
    let store = Store::open_default()?;
    let visits: u64 = match store.get("visits")? {
        Some(bytes) => String::from_utf8(bytes)?.parse()?,
        None => 0,
    };
    store.set("visits", (visits + 1).to_string().as_bytes())?;
    Ok(Response::new(200, (visits + 1).to_string()))
}

/// Opens a store by label: Spin refuses a label the app does not grant.
fn open_store(_req: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let label = params.get("label").unwrap_or_default();
    Ok(match Store::open(label) {
        Ok(_) => Response::new(200, format!("opened {label}")),
        Err(err) => Response::new(500, format!("{err:?}")),
    })
}

fn variable(_req: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let name = params.get("name").unwrap_or_default();
    Ok(match variables::get(name) {
        Ok(value) => Response::new(200, value),
        Err(err) => Response::new(500, format!("{err:?}")),
    })
}

/// The routing headers the host set, one `name: value` line each.
fn spin_headers(req: Request, _params: Params) -> anyhow::Result<impl IntoResponse> {
    let mut lines = String::new();
    for name in [
        "spin-full-url",
        "spin-path-info",
        "spin-matched-route",
        "spin-base-path",
        "spin-component-route",
        "spin-raw-component-route",
        "spin-client-addr",
    ] {
        let value = req.header(name).and_then(|v| v.as_str()).unwrap_or("-");
        lines.push_str(&format!("{name}: {value}\n"));
    }
    Ok(Response::new(200, lines))
}
