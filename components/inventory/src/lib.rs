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
//! orders for the same SKU can run at the same moment: every change to a
//! SKU's record is a compare-and-swap from the record read.
//!
//! `reserve-for` ties units to an order: they stay taken once the order is
//! announced on `order.placed` (this service subscribes), and come back a
//! minute later if it never is (its caller failed, or its host died, after
//! reserving). The reservation lives in the SKU's own record, so taking the
//! units and remembering why is one atomic swap:
//!
//! ```text
//! 97                       <- the count (all a record is without reservations)
//! p 1041 3 1764690000000   <- order 1041 holds 3, since that millisecond
//! r 1002 1 1764689000000   <- order 1002's 1 came back (kept a day, in case
//!                             its announcement is only late)
//! ```

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

mod record;

use exports::hive::events::subscriber;
use exports::hive::service::handler;
use exports::shop::inventory::stock;
use hive::events::types::{Delivery, Disposition};
use hive::service::kv;
use hive::service::log::{self, Level};
use hive::service::types::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use record::{Change, Record};

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
        match load_record(&sku) {
            Ok(found) => found.map(|(record, _)| record.count),
            Err(err) => {
                log::log(Level::Error, &format!("get-stock {sku}: {err}"));
                None
            }
        }
    }

    /// Takes the units with a compare-and-swap of the SKU's record.
    fn reserve(sku: String, quantity: u32) -> Result<u32, String> {
        let remaining = update(&sku, |record| {
            let Some(remaining) = record.count.checked_sub(quantity) else {
                return Err(format!("only {} left", record.count));
            };
            record.count = remaining;
            Ok(Change::Write(remaining))
        })?;
        log::log(
            Level::Info,
            &format!("reserved {quantity} of {sku}, {remaining} left"),
        );
        Ok(remaining)
    }

    /// Takes the units and notes them as `order`'s, in one swap; a second
    /// call for the same order changes nothing.
    fn reserve_for(order: String, sku: String, quantity: u32) -> Result<u32, String> {
        if order.is_empty() || order.len() > 64 || order.contains(char::is_whitespace) {
            return Err("an order id is 1 to 64 characters without spaces".to_string());
        }
        let now = now_ms();
        let remaining = update(&sku, |record| {
            if record.holds(&order) {
                return Ok(Change::Keep(record.count));
            }
            let Some(remaining) = record.count.checked_sub(quantity) else {
                return Err(format!("only {} left", record.count));
            };
            record.count = remaining;
            record.hold(&order, quantity, now);
            Ok(Change::Write(remaining))
        })?;
        log::log(
            Level::Info,
            &format!("reserved {quantity} of {sku} for order {order}, {remaining} left"),
        );
        Ok(remaining)
    }
}

/// Applies `change` to `sku`'s record by compare-and-swap from the bytes
/// read, starting over when another instance changed the record in
/// between, so no unit is ever sold twice. Errors are messages for the
/// caller.
fn update<T>(
    sku: &str,
    mut change: impl FnMut(&mut Record) -> Result<Change<T>, String>,
) -> Result<T, String> {
    let key = stock_key(sku);
    for _ in 0..RESERVE_ATTEMPTS {
        let (mut record, old) = match load_record(sku) {
            Ok(Some(found)) => found,
            Ok(None) => return Err("no such item".to_string()),
            Err(err) => {
                log::log(Level::Error, &format!("{sku}: {err}"));
                return Err(format!("cannot read the stock of {sku}"));
            }
        };
        let value = match change(&mut record)? {
            Change::Keep(value) => return Ok(value),
            Change::Write(value) => value,
        };
        match swap(&key, &old, record.encode().as_bytes()) {
            Ok(true) => return Ok(value),
            Ok(false) => continue,
            Err(err) => {
                log::log(Level::Error, &format!("{sku}: kv failed: {err}"));
                return Err(format!("cannot update the stock of {sku}"));
            }
        }
    }
    log::log(
        Level::Warn,
        &format!("{sku}: gave up after {RESERVE_ATTEMPTS} lost races"),
    );
    Err(format!("{sku} is in high demand, try again"))
}

/// Replaces `old` by `new` under `key` if `old` is still there.
#[cfg(not(feature = "blind-writes"))]
fn swap(key: &str, old: &[u8], new: &[u8]) -> Result<bool, kv::Error> {
    kv::compare_and_swap(key, Some(old), new)
}

/// The broken build the soak's checker is tested against: it writes
/// without checking that the record is still the one it read, so two
/// orders at once can both take the same units.
#[cfg(feature = "blind-writes")]
fn swap(key: &str, _old: &[u8], new: &[u8]) -> Result<bool, kv::Error> {
    kv::set(key, new).map(|()| true)
}

impl subscriber::Guest for Inventory {
    /// `order.placed` confirms an order's reservation; the
    /// `release-expired` schedule's tick gives back every hold and every
    /// reservation past its time.
    fn handle(delivery: Delivery) -> Disposition {
        let done = match delivery.topic.as_str() {
            "order.placed" => match serde_json::from_slice::<PlacedOrder>(&delivery.payload) {
                Ok(order) => confirm(&order),
                Err(err) => return Disposition::DeadLetter(format!("not an order: {err}")),
            },
            "schedule:release-expired" => release_expired(now_ms()).and_then(|holds| {
                let reservations = release_reservations(now_ms())?;
                if holds + reservations > 0 {
                    log::log(
                        Level::Info,
                        &format!(
                            "released {holds} expired hold(s), {reservations} reservation(s) \
                             whose order never came"
                        ),
                    );
                }
                Ok(())
            }),
            topic => return Disposition::DeadLetter(format!("unexpected topic {topic}")),
        };
        match done {
            Ok(()) => Disposition::Ack,
            Err(err) => {
                log::log(Level::Error, &format!("{}: {err}", delivery.topic));
                Disposition::Retry(None)
            }
        }
    }
}

/// What `order.placed` carries that this service needs.
#[derive(Deserialize)]
struct PlacedOrder {
    id: i64,
    sku: String,
}

/// How long reserved units wait for their order's announcement.
const RESERVATION_MS: u64 = 60_000;

/// How long a given-back reservation is remembered, in case its order's
/// announcement was only late.
const RELEASED_KEPT_MS: u64 = 86_400_000;

/// Makes the order's reservation final. An order whose units already came
/// back (its announcement came after the minute) takes them again, even
/// if that leaves too few: the order exists, so its units are sold.
fn confirm(order: &PlacedOrder) -> Result<(), String> {
    let id = order.id.to_string();
    let oversold = update(&order.sku, |record| {
        if record.confirm(&id) {
            return Ok(Change::Write(None));
        }
        match record.take_released(&id) {
            Some(quantity) => {
                let short = quantity.saturating_sub(record.count);
                record.count = record.count.saturating_sub(quantity);
                Ok(Change::Write((short > 0).then_some(short)))
            }
            None => Ok(Change::Keep(None)),
        }
    });
    match oversold {
        Ok(Some(short)) => {
            log::log(
                Level::Error,
                &format!(
                    "order {id}: {} oversold by {short} (came after its reservation)",
                    order.sku
                ),
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        // The SKU was deleted: nothing to confirm.
        Err(message) if message == "no such item" => Ok(()),
        Err(message) => Err(message),
    }
}

/// Gives back every reservation older than [`RESERVATION_MS`] whose order
/// was not announced; returns how many.
fn release_reservations(now: u64) -> Result<u32, String> {
    let keys = kv::list_keys("stock/", RELEASE_BATCH).map_err(|err| err.to_string())?;
    let mut released = 0;
    for key in keys {
        let Some(sku) = key.strip_prefix("stock/") else {
            continue;
        };
        released += update(sku, |record| {
            let count = record.release_older_than(now.saturating_sub(RESERVATION_MS), now);
            let forgotten = record.forget_released_before(now.saturating_sub(RELEASED_KEPT_MS));
            Ok(match count + forgotten {
                0 => Change::Keep(0),
                _ => Change::Write(count),
            })
        })
        .or_else(|message| match message.as_str() {
            "no such item" => Ok(0),
            _ => Err(message),
        })?;
    }
    Ok(released)
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
    update(sku, |record| {
        record.count = record.count.saturating_add(quantity);
        Ok(Change::Write(()))
    })
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
            LoadError::Corrupt(value) => write!(f, "stored record {value:?} is not a stock record"),
        }
    }
}

/// `GET /inventory/:sku`.
fn get_count(sku: &str) -> Response {
    match load_record(sku) {
        Ok(Some((record, _))) => json_response(
            200,
            &StockLevel {
                sku,
                count: record.count,
            },
        ),
        Ok(None) => error_response(404, &format!("no such item {sku}")),
        Err(LoadError::Store(err)) => kv_error_response(&err),
        Err(err @ LoadError::Corrupt(_)) => error_response(500, &err.to_string()),
    }
}

/// `PUT /inventory/:sku`: sets the count outright (a restock or a recount),
/// so a plain `set` is right here, and open reservations are forgotten
/// with the old count.
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

/// The record stored for `sku` together with the raw bytes it was read
/// from, which a compare-and-swap needs; `None` if the SKU is unknown.
fn load_record(sku: &str) -> Result<Option<(Record, Vec<u8>)>, LoadError> {
    let Some(raw) = kv::get(&stock_key(sku)).map_err(LoadError::Store)? else {
        return Ok(None);
    };
    let record = std::str::from_utf8(&raw)
        .ok()
        .and_then(Record::decode)
        .ok_or_else(|| LoadError::Corrupt(String::from_utf8_lossy(&raw).into_owned()))?;
    Ok(Some((record, raw)))
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
