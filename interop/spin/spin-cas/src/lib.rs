//! `wasi:keyvalue@0.2.0-draft2` as Spin vendors it, used the way a Spin
//! component does through spin-sdk's bindings: compare-and-swap retried
//! until it wins, atomic increments, batch writes and paged key listing.
//! Its router matches the path below its component route (Spin's
//! `spin-path-info`, which the host sets).

use spin_sdk::http::{IntoResponse, Params, Request, Response, Router};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};

#[http_component]
fn handle(req: Request) -> Response {
    let mut router = Router::suffix();
    router.post("/swap/:key", swap);
    router.post("/add/:key", add);
    router.post("/fill/:count", fill);
    router.get("/keys", keys);
    router.get("/open/:bucket", open);
    router.handle(req)
}

fn failed(what: &str, err: impl std::fmt::Debug) -> Response {
    Response::new(500, format!("{what}: {err:?}"))
}

/// Adds one to the decimal number under the key by compare-and-swap,
/// reading again and retrying whenever another writer got there first.
fn swap(_req: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let key = params.get("key").unwrap_or_default();
    let bucket = match store::open("default") {
        Ok(bucket) => bucket,
        Err(err) => return Ok(failed("open", err)),
    };
    let mut cas = match atomics::Cas::new(&bucket, key) {
        Ok(cas) => cas,
        Err(err) => return Ok(failed("cas", err)),
    };
    for attempt in 1..=1000 {
        let current = match cas.current() {
            Ok(current) => current,
            Err(err) => return Ok(failed("current", err)),
        };
        let next = current
            .map(|bytes| String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0))
            .unwrap_or(0)
            + 1;
        match atomics::swap(cas, next.to_string().as_bytes()) {
            Ok(()) => return Ok(Response::new(200, format!("{next} after {attempt}"))),
            Err(atomics::CasError::CasFailed(again)) => cas = again,
            Err(atomics::CasError::StoreError(err)) => return Ok(failed("swap", err)),
        }
    }
    Ok(Response::new(409, "gave up after 1000 lost races"))
}

fn add(_req: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let key = params.get("key").unwrap_or_default();
    let bucket = match store::open("default") {
        Ok(bucket) => bucket,
        Err(err) => return Ok(failed("open", err)),
    };
    Ok(match atomics::increment(&bucket, key, 1) {
        Ok(total) => Response::new(200, total.to_string()),
        Err(err) => failed("increment", err),
    })
}

/// Writes keys `item-0000` .. in one batch, in the bucket named `items`.
fn fill(_req: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let count: usize = params.get("count").unwrap_or_default().parse()?;
    let bucket = match store::open("items") {
        Ok(bucket) => bucket,
        Err(err) => return Ok(failed("open", err)),
    };
    let pairs: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("item-{i:04}"), i.to_string().into_bytes()))
        .collect();
    Ok(match batch::set_many(&bucket, &pairs) {
        Ok(()) => Response::new(200, format!("wrote {count}")),
        Err(err) => failed("set-many", err),
    })
}

/// Lists the `items` bucket page by page: `<keys> keys in <pages> pages`.
fn keys(_req: Request, _params: Params) -> anyhow::Result<impl IntoResponse> {
    let bucket = match store::open("items") {
        Ok(bucket) => bucket,
        Err(err) => return Ok(failed("open", err)),
    };
    let (mut total, mut pages, mut cursor) = (0, 0, None);
    loop {
        let page = match bucket.list_keys(cursor.as_deref()) {
            Ok(page) => page,
            Err(err) => return Ok(failed("list-keys", err)),
        };
        total += page.keys.len();
        pages += 1;
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    Ok(Response::new(200, format!("{total} keys in {pages} pages")))
}

fn open(_req: Request, params: Params) -> anyhow::Result<impl IntoResponse> {
    let name = params.get("bucket").unwrap_or_default();
    Ok(match store::open(name) {
        Ok(_) => Response::new(200, format!("opened {name}")),
        Err(err) => failed("open", err),
    })
}
