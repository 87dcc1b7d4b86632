//! `inventory`: the shop's stock levels, and how a service changes shared
//! state safely when many instances run at once.
//!
//! Each SKU's count is stored as decimal text under `stock/<sku>` in the
//! service's key-value store. Over HTTP:
//!
//! - `PUT /inventory/:sku` with `{"count": n}` sets the count;
//! - `GET /inventory/:sku` answers `{"sku", "count"}`, or 404;
//! - `POST /inventory/:sku/holds` with `{"quantity": n, "seconds": s}` takes
//!   units out of stock for a while (a cart, say): they come back when the
//!   hold expires. Holds are released by a schedule (`release-expired` in
//!   the manifest, every 30 s), which the host delivers once per tick to
//!   this service's `hive:events/subscriber` export, on one host of a
//!   cluster only.
//!
//! The exported `shop:inventory/stock` interface lets other services read a
//! count and reserve units. Every request runs in its own instance, so two
//! orders for the same SKU can run at the same moment: `reserve` therefore
//! never writes blindly, it compare-and-swaps from the count it read.

wit_bindgen::generate!({
    // The shared Hive contract and this service's own interface, each its own
    // package, parsed in place rather than copied into the crate.
    path: ["../../wit", "../shop-wit/inventory"],
    inline: "
        package shop:inventory-service;

        world inventory {
            include hive:service/service@0.1.0;
            export shop:inventory/stock@0.1.0;
            export hive:events/subscriber@0.1.0;
        }
    ",
    world: "inventory",
    // Interfaces from packages other than the inline world's own (here:
    // all of them) are only generated when asked for; the default expects
    // them to come from another crate via `with`.
    generate_all,
});

use exports::hive::events::subscriber;
use exports::hive::service::handler;
use exports::shop::inventory::stock;
use hive::events::types::{Delivery, Disposition};
use hive::service::kv;
use hive::service::log::{self, Level};
use hive::service::types::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How often `reserve` re-reads and retries when another instance changed
/// the count between its read and its swap. Losing 16 races in a row means
/// heavy contention; the caller gets an error rather than a hung request.
const RESERVE_ATTEMPTS: usize = 16;

struct Inventory;

impl handler::Guest for Inventory {
    fn handle(req: Request) -> Response {
        let Some(sku) = param(&req, "sku") else {
            return error_response(404, &format!("no route for {}", req.path));
        };
        match (req.method.as_str(), req.route.as_str()) {
            ("POST", "/inventory/:sku/holds") => hold(sku, &req.body),
            (_, "/inventory/:sku/holds") => method_not_allowed("POST"),
            ("GET", _) => get_count(sku),
            ("PUT", _) => put_count(sku, &req.body),
            _ => method_not_allowed("GET, PUT"),
        }
    }
}

impl stock::Guest for Inventory {
    /// The interface can only say "unknown SKU", so a store failure or a
    /// corrupt count is logged for the operator and reported as `none`.
    fn get_stock(sku: String) -> Option<u32> {
        match load_count(&sku) {
            Ok(count) => count.map(|(count, _)| count),
            Err(err) => {
                log::log(Level::Error, &format!("get-stock {sku}: {err}"));
                None
            }
        }
    }

    /// Read, check, then compare-and-swap from the exact bytes read. If the
    /// swap loses, someone else changed the count in between: start over
    /// with the fresh value, so no unit is ever sold twice.
    fn reserve(sku: String, quantity: u32) -> Result<u32, String> {
        let key = stock_key(&sku);
        for _ in 0..RESERVE_ATTEMPTS {
            let (count, old) = match load_count(&sku) {
                Ok(Some(found)) => found,
                Ok(None) => return Err("no such item".to_string()),
                Err(err) => {
                    log::log(Level::Error, &format!("reserve {sku}: {err}"));
                    return Err(format!("cannot read the stock of {sku}"));
                }
            };
            let Some(remaining) = count.checked_sub(quantity) else {
                return Err(format!("only {count} left"));
            };
            match kv::compare_and_swap(&key, Some(&old), remaining.to_string().as_bytes()) {
                Ok(true) => {
                    log::log(
                        Level::Info,
                        &format!("reserved {quantity} of {sku}, {remaining} left"),
                    );
                    return Ok(remaining);
                }
                Ok(false) => continue,
                Err(err) => {
                    log::log(Level::Error, &format!("reserve {sku}: kv failed: {err}"));
                    return Err(format!("cannot update the stock of {sku}"));
                }
            }
        }
        log::log(
            Level::Warn,
            &format!("reserve {sku}: gave up after {RESERVE_ATTEMPTS} lost races"),
        );
        Err(format!("{sku} is in high demand, try again"))
    }
}

impl subscriber::Guest for Inventory {
    /// The `release-expired` schedule's tick: every hold past its time goes
    /// back into stock.
    fn handle(delivery: Delivery) -> Disposition {
        if delivery.topic != "schedule:release-expired" {
            return Disposition::DeadLetter(format!("unexpected topic {}", delivery.topic));
        }
        match release_expired(now_ms()) {
            Ok(0) => Disposition::Ack,
            Ok(released) => {
                log::log(Level::Info, &format!("released {released} expired hold(s)"));
                Disposition::Ack
            }
            Err(err) => {
                log::log(Level::Error, &format!("releasing holds: {err}"));
                Disposition::Retry(None)
            }
        }
    }
}

/// Most holds one tick releases; the rest wait for the next.
const RELEASE_BATCH: u32 = 1000;

/// Releases the holds that expired by `now`; returns how many.
///
/// A hold's key is deleted first, and only the instance whose delete found
/// it puts its units back: two ticks (or a retried one) never return the
/// same hold twice.
fn release_expired(now: u64) -> Result<u32, String> {
    let keys = kv::list_keys("hold/", RELEASE_BATCH).map_err(|err| err.to_string())?;
    let mut released = 0;
    for key in keys {
        let Some(expires) = key
            .strip_prefix("hold/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|ms| ms.parse::<u64>().ok())
        else {
            continue;
        };
        if expires > now {
            break; // keys sort by expiry
        }
        let Some(raw) = kv::get(&key).map_err(|err| err.to_string())? else {
            continue;
        };
        let held: Held = serde_json::from_slice(&raw).map_err(|err| err.to_string())?;
        if kv::delete(&key).map_err(|err| err.to_string())? {
            give_back(&held.sku, held.quantity)?;
            released += 1;
        }
    }
    Ok(released)
}

/// Adds `quantity` units of `sku` back, by compare-and-swap like `reserve`.
fn give_back(sku: &str, quantity: u32) -> Result<(), String> {
    for _ in 0..RESERVE_ATTEMPTS {
        let (count, old) = match load_count(sku) {
            Ok(Some(found)) => found,
            Ok(None) => (0, Vec::new()),
            Err(err) => return Err(err.to_string()),
        };
        let expected = (!old.is_empty()).then_some(old.as_slice());
        let next = count.saturating_add(quantity).to_string();
        match kv::compare_and_swap(&stock_key(sku), expected, next.as_bytes()) {
            Ok(true) => return Ok(()),
            Ok(false) => continue,
            Err(err) => return Err(err.to_string()),
        }
    }
    Err(format!(
        "{sku} is busy; its hold is lost after {RESERVE_ATTEMPTS} tries"
    ))
}

/// The body `POST /inventory/:sku/holds` expects.
#[derive(Deserialize)]
struct HoldRequest {
    quantity: u32,
    #[serde(default = "default_hold_seconds")]
    seconds: u64,
}

fn default_hold_seconds() -> u64 {
    300
}

/// A hold as stored under `hold/<expires ms>/<id>`.
#[derive(Serialize, Deserialize)]
struct Held {
    sku: String,
    quantity: u32,
}

/// `POST /inventory/:sku/holds`: takes units out of stock until the hold
/// expires.
fn hold(sku: &str, body: &[u8]) -> Response {
    let request: HoldRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                400,
                &format!("expected a JSON body {{\"quantity\": n, \"seconds\": s}}: {err}"),
            );
        }
    };
    if request.quantity == 0 || !(1..=86_400).contains(&request.seconds) {
        return error_response(400, "quantity must be at least 1, seconds 1 to 86400");
    }
    let remaining = match <Inventory as stock::Guest>::reserve(sku.to_string(), request.quantity) {
        Ok(remaining) => remaining,
        Err(message) => return error_response(409, &message),
    };
    let id = match kv::increment("next-hold-id", 1) {
        Ok(id) => id,
        Err(err) => return kv_error_response(&err),
    };
    let expires = now_ms() + request.seconds * 1000;
    let key = format!("hold/{expires:013}/{id}");
    let held = Held {
        sku: sku.to_string(),
        quantity: request.quantity,
    };
    let document = serde_json::to_vec(&held).unwrap_or_default();
    if let Err(err) = kv::set(&key, &document) {
        return kv_error_response(&err);
    }
    json_response(
        201,
        &json!({ "hold": id, "sku": sku, "quantity": request.quantity,
                 "expires_at_ms": expires, "remaining": remaining }),
    )
}

/// Milliseconds since the Unix epoch, from the host's clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The body `PUT /inventory/:sku` expects. `u32` rejects negative counts and
/// fractions at parse time.
#[derive(Deserialize)]
struct SetCount {
    count: u32,
}

/// What both HTTP routes answer.
#[derive(Serialize)]
struct StockLevel<'a> {
    sku: &'a str,
    count: u32,
}

/// Why reading a count failed: the store, or a value that is not a count.
enum LoadError {
    Store(kv::Error),
    Corrupt(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Store(err) => write!(f, "store failed: {err}"),
            LoadError::Corrupt(value) => write!(f, "stored count {value:?} is not a number"),
        }
    }
}

/// `GET /inventory/:sku`.
fn get_count(sku: &str) -> Response {
    match load_count(sku) {
        Ok(Some((count, _))) => json_response(200, &StockLevel { sku, count }),
        Ok(None) => error_response(404, &format!("no such item {sku}")),
        Err(LoadError::Store(err)) => kv_error_response(&err),
        Err(err @ LoadError::Corrupt(_)) => error_response(500, &err.to_string()),
    }
}

/// `PUT /inventory/:sku`: sets the count outright (a restock or a recount),
/// so a plain `set` is right here; only `reserve` needs to be conditional.
fn put_count(sku: &str, body: &[u8]) -> Response {
    let SetCount { count } = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(err) => {
            return error_response(
                400,
                &format!("expected a JSON body {{\"count\": n}} with n >= 0: {err}"),
            );
        }
    };
    match kv::set(&stock_key(sku), count.to_string().as_bytes()) {
        Ok(()) => {
            log::log(Level::Info, &format!("stock of {sku} set to {count}"));
            json_response(200, &StockLevel { sku, count })
        }
        Err(err) => kv_error_response(&err),
    }
}

/// The count stored for `sku` together with the raw bytes it was read from,
/// which `reserve` needs for its compare-and-swap; `None` if the SKU is
/// unknown.
fn load_count(sku: &str) -> Result<Option<(u32, Vec<u8>)>, LoadError> {
    let Some(raw) = kv::get(&stock_key(sku)).map_err(LoadError::Store)? else {
        return Ok(None);
    };
    let count = std::str::from_utf8(&raw)
        .ok()
        .and_then(|text| text.parse::<u32>().ok())
        .ok_or_else(|| LoadError::Corrupt(String::from_utf8_lossy(&raw).into_owned()))?;
    Ok(Some((count, raw)))
}

fn stock_key(sku: &str) -> String {
    format!("stock/{sku}")
}

/// The value of the route parameter `name`, if present and not empty.
fn param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.params
        .iter()
        .find(|(key, value)| key == name && !value.is_empty())
        .map(|(_, value)| value.as_str())
}

/// A response whose body is `body` as JSON.
fn json_response(status: u16, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(body) => Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        },
        Err(err) => Response {
            status: 500,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("could not encode the response: {err}").into_bytes(),
        },
    }
}

/// A JSON error, `{"error": message}`, the shape every shop service uses.
fn error_response(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// 405 with the `allow` header listing what the route accepts.
fn method_not_allowed(allow: &str) -> Response {
    let mut response = error_response(405, &format!("method not allowed; use {allow}"));
    response.headers.push(("allow".into(), allow.into()));
    response
}

/// Maps a store failure to a status: an SKU too long for a key is the
/// client's fault (400); anything else is ours (500).
fn kv_error_response(err: &kv::Error) -> Response {
    match err {
        kv::Error::InvalidKey(message) => error_response(400, &format!("invalid sku: {message}")),
        // A store that cannot be reached right now is worth a retry.
        kv::Error::Storage(_) => {
            log::log(Level::Error, &format!("kv failed: {err}"));
            let mut response = error_response(503, &format!("storage unavailable: {err}"));
            response.headers.push(("retry-after".into(), "1".into()));
            response
        }
        kv::Error::ValueTooLarge(_) | kv::Error::NotANumber => {
            log::log(Level::Error, &format!("kv failed: {err}"));
            error_response(500, &format!("storage failed: {err}"))
        }
    }
}

export!(Inventory);
