//! `orders`: the shop's front door, and how a service *imports* the typed
//! interfaces other services export.
//!
//! - `POST /orders` with `{"user", "sku", "quantity"}` looks the user up via
//!   `shop:users/directory`, draws the order's id from `kv.increment`,
//!   reserves stock for that id via `shop:inventory/stock`, then stores the
//!   order under `order/<id>` and publishes `order.placed` in the same
//!   commit (`hive:events/outbox`), so no order is stored unannounced and
//!   no announcement names an order that was not stored; the announcement
//!   also makes the reservation final. It answers 201 with the order;
//! - `GET /orders/:id` answers the stored order, or 404;
//! - `GET /orders/:id/customer` forwards to `GET /users/<user id>` with the
//!   untyped `services.call`, for comparison: any service can be called this
//!   way, but request and response are plain HTTP shapes, not typed values.
//!
//! The typed calls read like local functions: `directory::get_user(id)`
//! returns an `Option<User>`, `stock::reserve_for(id, sku, n)` a
//! `Result<u32, String>`. The host links them to the `users` and `inventory` components.

wit_bindgen::generate!({
    // The shared Hive contract and the two interfaces this service imports,
    // each its own package, parsed in place rather than copied.
    path: [
        "../../wit",
        "../shop-wit/users",
        "../shop-wit/inventory",
    ],
    inline: "
        package shop:orders-service;

        world orders {
            include hive:service/service@0.1.0;
            import hive:events/outbox@0.1.0;
            import shop:users/directory@0.1.0;
            import shop:inventory/stock@0.1.0;
        }
    ",
    world: "orders",
    // Interfaces from packages other than the inline world's own (here:
    // all of them) are only generated when asked for; the default expects
    // them to come from another crate via `with`.
    generate_all,
});

use exports::hive::service::handler;
use hive::events::outbox::{self, Op};
use hive::events::types::Message;
use hive::service::kv;
use hive::service::log::{self, Level};
use hive::service::services::{self, CallError};
use hive::service::trace;
use hive::service::types::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shop::inventory::stock;
use shop::users::directory::{self, User};

/// The counter `kv.increment` draws order ids from: atomic, so two orders
/// placed at the same moment never get the same id.
const NEXT_ID_KEY: &str = "next-order-id";

struct Orders;

impl handler::Guest for Orders {
    fn handle(req: Request) -> Response {
        match (req.method.as_str(), req.route.as_str()) {
            ("POST", "/orders") => place_order(&req.body),
            ("GET", "/orders/:id") => with_id(&req, get_order),
            ("GET", "/orders/:id/customer") => with_id(&req, get_customer),
            (_, "/orders") => method_not_allowed("POST"),
            (_, "/orders/:id" | "/orders/:id/customer") => method_not_allowed("GET"),
            _ => error_response(404, &format!("no route for {}", req.path)),
        }
    }
}

/// The body `POST /orders` expects.
#[derive(Deserialize)]
struct PlaceOrder {
    user: String,
    sku: String,
    quantity: u32,
}

/// An order as stored in kv and sent over HTTP. The customer is copied in,
/// so the order keeps the name and address it was placed with.
#[derive(Serialize, Deserialize)]
struct Order {
    id: i64,
    user: Customer,
    sku: String,
    quantity: u32,
    /// Units of the SKU left in stock right after this order reserved its own.
    remaining: u32,
}

/// The customer part of an order: the `directory.user` record, as JSON.
#[derive(Serialize, Deserialize)]
struct Customer {
    id: String,
    name: String,
    email: String,
}

impl From<User> for Customer {
    fn from(user: User) -> Self {
        Customer {
            id: user.id,
            name: user.name,
            email: user.email,
        }
    }
}

/// Why loading an order failed: the store, or a document that is not an order.
enum LoadError {
    Store(kv::Error),
    Corrupt(serde_json::Error),
}

/// `POST /orders`: user check, stock reservation, then the order itself.
///
/// The checks run before anything is written, and the reservation is the
/// last step that can be refused, so a refused order changes nothing but
/// the id counter. The reservation is made for the order's id, and only
/// the order's announcement (stored in the same commit) makes it final: an
/// order that is never stored gives its units back on its own.
fn place_order(body: &[u8]) -> Response {
    let request: PlaceOrder = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                400,
                &format!("expected a JSON body {{\"user\", \"sku\", \"quantity\"}}: {err}"),
            );
        }
    };
    if request.quantity == 0 {
        return error_response(400, "quantity must be at least 1");
    }

    let Some(user) = directory::get_user(&request.user) else {
        return error_response(404, &format!("no such user {}", request.user));
    };
    // The id comes first: the reservation is made for it, so if this
    // instance fails before the order is stored, inventory gives the units
    // back when the order's announcement does not come.
    let id = match kv::increment(NEXT_ID_KEY, 1) {
        Ok(id) => id,
        Err(err) => return unnumbered(&err),
    };
    let remaining = match stock::reserve_for(&id.to_string(), &request.sku, request.quantity) {
        Ok(remaining) => remaining,
        Err(message) => return error_response(409, &message),
    };
    let order = Order {
        id,
        user: user.into(),
        sku: request.sku,
        quantity: request.quantity,
        remaining,
    };
    if let Err(err) = store_order(&order) {
        log::log(
            Level::Error,
            &format!(
                "order {id}: {} x {} reserved but not stored ({err}); the units come back unannounced",
                order.quantity, order.sku
            ),
        );
        return error_response(500, &format!("could not store the order: {err}"));
    }
    log::log(
        Level::Info,
        &format!(
            "order {id}: {} x {} for {}",
            order.quantity, order.sku, order.user.id
        ),
    );
    json_response(201, &order)
}

/// The topic every stored order is announced on.
const ORDER_PLACED: &str = "order.placed";

/// Writes `order` under `order/<id>` and publishes it on `order.placed`,
/// as one commit: both or neither, even if the host dies in between. The
/// error is only for the log and the 500 response, so a message is all it
/// carries.
fn store_order(order: &Order) -> Result<(), String> {
    let document = serde_json::to_vec(order).map_err(|err| err.to_string())?;
    let announcement = Message {
        payload: document.clone(),
        content_type: Some("application/json".into()),
        metadata: vec![("order-id".into(), order.id.to_string())],
        delay_ms: None,
        // One announcement per order, however often the commit is retried.
        dedup_key: Some(format!("order-{}", order.id)),
    };
    let ops = [
        Op::Set((order_key(&order.id.to_string()), document)),
        Op::Publish((ORDER_PLACED.to_string(), announcement)),
    ];
    // A span of the service's own in the order's trace, naming the order.
    let span = trace::Span::new("store order");
    span.set_attribute("shop.order.id", &order.id.to_string());
    let committed = outbox::commit(&ops)
        .map(|_| ())
        .map_err(|err| format!("{err:?}"));
    if let Err(err) = &committed {
        span.fail(err);
    }
    committed
}

/// 503 for an order that could not get an id (nothing was reserved).
fn unnumbered(err: &kv::Error) -> Response {
    log::log(Level::Error, &format!("numbering an order: {err}"));
    let mut response = error_response(503, &format!("could not number the order: {err}"));
    response.headers.push(("retry-after".into(), "1".into()));
    response
}

/// `GET /orders/:id`.
fn get_order(id: &str) -> Response {
    match load_order(id) {
        Ok(Some(order)) => json_response(200, &order),
        Ok(None) => error_response(404, &format!("no such order {id}")),
        Err(err) => load_error_response(err),
    }
}

/// `GET /orders/:id/customer`: the customer as the `users` service sees it
/// now, fetched with a plain in-process HTTP-shaped call and passed through
/// untouched, status and headers included.
fn get_customer(id: &str) -> Response {
    let order = match load_order(id) {
        Ok(Some(order)) => order,
        Ok(None) => return error_response(404, &format!("no such order {id}")),
        Err(err) => return load_error_response(err),
    };
    let request = Request {
        method: "GET".into(),
        path: format!("/users/{}", percent_encode_segment(&order.user.id)),
        query: None,
        headers: Vec::new(),
        // Left empty: the host fills both in from the callee's routes.
        route: String::new(),
        params: Vec::new(),
        body: Vec::new(),
    };
    match services::call("users", &request) {
        Ok(response) => response,
        Err(err) => error_response(
            502,
            &format!("users service: {}", describe_call_error(&err)),
        ),
    }
}

/// The order stored under `id`, or `None` if there is none.
fn load_order(id: &str) -> Result<Option<Order>, LoadError> {
    let Some(document) = kv::get(&order_key(id)).map_err(LoadError::Store)? else {
        return Ok(None);
    };
    serde_json::from_slice(&document)
        .map(Some)
        .map_err(LoadError::Corrupt)
}

fn order_key(id: &str) -> String {
    format!("order/{id}")
}

/// Escapes `segment` for use as one path segment. The host percent-decodes
/// `:id` before the callee sees it, so an id containing `/`, `%`, `?` or a
/// space still reaches `users` intact.
fn percent_encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A sentence for each way `services.call` can fail.
fn describe_call_error(err: &CallError) -> String {
    match err {
        CallError::NotFound(message) => format!("not found: {message}"),
        CallError::Unavailable(message) => format!("unavailable: {message}"),
        CallError::Failed(message) => format!("failed: {message}"),
        CallError::DepthExceeded(depth) => format!("call chain too deep ({depth})"),
    }
}

/// Runs `handle` with the route's `:id`, which the host always fills in for
/// the `:id` routes; a caller of `services.call` could still leave it out.
fn with_id(req: &Request, handle: impl FnOnce(&str) -> Response) -> Response {
    match param(req, "id") {
        Some(id) => handle(id),
        None => error_response(400, "missing order id"),
    }
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

/// Maps a failed order lookup to a response: an id too long for a key is
/// the client's fault (400); anything else is ours (500).
fn load_error_response(err: LoadError) -> Response {
    match err {
        LoadError::Store(kv::Error::InvalidKey(message)) => {
            error_response(400, &format!("invalid order id: {message}"))
        }
        LoadError::Store(err) => {
            log::log(Level::Error, &format!("kv failed: {err}"));
            error_response(500, &format!("storage failed: {err}"))
        }
        LoadError::Corrupt(err) => {
            log::log(Level::Error, &format!("stored order is not valid: {err}"));
            error_response(500, &format!("stored order is not valid: {err}"))
        }
    }
}

export!(Orders);
