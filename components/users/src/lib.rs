//! `users`: the shop's user directory, and how a service *exports* a typed
//! interface.
//!
//! Users live in the service's private key-value store, one JSON document per
//! user under `user/<id>`. Over HTTP:
//!
//! - `PUT /users/:id` with `{"name": ..., "email": ...}` stores the user and
//!   answers 201 with it;
//! - `GET /users/:id` answers 200 with the user, or 404;
//! - `GET /users` answers the list of ids.
//!
//! Other services do not need HTTP to read a user: this component also
//! exports `shop:users/directory`, whose `get-user` reads the same key. The
//! host links that export to every service importing the interface (see
//! `orders`).

wit_bindgen::generate!({
    // The shared Hive contract and this service's own interface, each its own
    // package, parsed in place rather than copied into the crate.
    path: ["../../wit", "../shop-wit/users"],
    inline: "
        package shop:users-service;

        world users {
            include hive:service/service@0.1.0;
            export shop:users/directory@0.1.0;
        }
    ",
    world: "users",
    // Interfaces from packages other than the inline world's own (here:
    // all of them) are only generated when asked for; the default expects
    // them to come from another crate via `with`.
    generate_all,
});

use exports::hive::service::handler;
use exports::shop::users::directory::{self, User};
use hive::service::kv;
use hive::service::log::{self, Level};
use hive::service::types::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Prefix of every user's key in the store; the rest of the key is the id.
const KEY_PREFIX: &str = "user/";

/// The most ids `GET /users` lists; a demo has no need for paging.
const LIST_LIMIT: u32 = 1000;

struct Users;

impl handler::Guest for Users {
    fn handle(req: Request) -> Response {
        // Dispatch on the route pattern the host matched rather than on the
        // raw path, so percent-escapes and trailing details are its problem.
        match (req.method.as_str(), req.route.as_str()) {
            ("GET", "/users") => list_users(),
            ("GET", "/users/:id") => with_id(&req, get_user),
            ("PUT", "/users/:id") => with_id(&req, |id| put_user(id, &req.body)),
            (_, "/users") => method_not_allowed("GET"),
            (_, "/users/:id") => method_not_allowed("GET, PUT"),
            _ => error_response(404, &format!("no route for {}", req.path)),
        }
    }
}

impl directory::Guest for Users {
    /// Reads the same document as `GET /users/:id`. The interface can only
    /// say "no such user", so a store failure is logged here, where the
    /// operator will see it, and reported to the caller as `none`.
    fn get_user(id: String) -> Option<User> {
        if id.is_empty() {
            return None;
        }
        match load_user(&id) {
            Ok(user) => user.map(User::from),
            Err(err) => {
                log::log(Level::Error, &format!("get-user {id}: {err}"));
                None
            }
        }
    }
}

/// A user as stored in kv and sent over HTTP.
#[derive(Serialize, Deserialize)]
struct StoredUser {
    id: String,
    name: String,
    email: String,
}

impl From<StoredUser> for User {
    fn from(user: StoredUser) -> Self {
        User {
            id: user.id,
            name: user.name,
            email: user.email,
        }
    }
}

/// The body `PUT /users/:id` expects. The id comes from the path, so a body
/// cannot store a user under another user's key.
#[derive(Deserialize)]
struct NewUser {
    name: String,
    email: String,
}

/// Why loading a user failed: the store, or a document that is not a user.
enum LoadError {
    Store(kv::Error),
    Corrupt(serde_json::Error),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Store(err) => write!(f, "store failed: {err}"),
            LoadError::Corrupt(err) => write!(f, "stored user is not valid: {err}"),
        }
    }
}

/// `GET /users`: the ids of all users, in byte order.
fn list_users() -> Response {
    match kv::list_keys(KEY_PREFIX, LIST_LIMIT) {
        Ok(keys) => {
            let ids: Vec<&str> = keys
                .iter()
                .filter_map(|key| key.strip_prefix(KEY_PREFIX))
                .collect();
            json_response(200, &ids)
        }
        Err(err) => kv_error_response(&err),
    }
}

/// `GET /users/:id`.
fn get_user(id: &str) -> Response {
    match load_user(id) {
        Ok(Some(user)) => json_response(200, &user),
        Ok(None) => error_response(404, &format!("no such user {id}")),
        Err(LoadError::Store(err)) => kv_error_response(&err),
        Err(err @ LoadError::Corrupt(_)) => error_response(500, &err.to_string()),
    }
}

/// `PUT /users/:id`: creates or replaces the user.
fn put_user(id: &str, body: &[u8]) -> Response {
    let new: NewUser = match serde_json::from_slice(body) {
        Ok(new) => new,
        Err(err) => {
            return error_response(
                400,
                &format!("expected a JSON body {{\"name\", \"email\"}}: {err}"),
            );
        }
    };
    let user = StoredUser {
        id: id.to_string(),
        name: new.name,
        email: new.email,
    };
    let document = match serde_json::to_vec(&user) {
        Ok(document) => document,
        Err(err) => return error_response(500, &err.to_string()),
    };
    match kv::set(&user_key(id), &document) {
        Ok(()) => {
            log::log(Level::Info, &format!("stored user {id}"));
            json_response(201, &user)
        }
        Err(err) => kv_error_response(&err),
    }
}

/// The user stored under `id`, or `None` if there is none.
fn load_user(id: &str) -> Result<Option<StoredUser>, LoadError> {
    let Some(document) = kv::get(&user_key(id)).map_err(LoadError::Store)? else {
        return Ok(None);
    };
    serde_json::from_slice(&document)
        .map(Some)
        .map_err(LoadError::Corrupt)
}

fn user_key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// Runs `handle` with the route's `:id`, which the host always fills in for
/// `/users/:id`; a caller of `services.call` could still leave it out.
fn with_id(req: &Request, handle: impl FnOnce(&str) -> Response) -> Response {
    match param(req, "id") {
        Some(id) => handle(id),
        None => error_response(400, "missing user id"),
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

/// Maps a store failure to the status it deserves: limits the client ran
/// into are its fault (400, 413); a store that cannot be reached right now
/// (a shared Redis restarting, say) is worth a retry (503); anything else
/// is ours (500).
fn kv_error_response(err: &kv::Error) -> Response {
    match err {
        kv::Error::InvalidKey(message) => error_response(400, &format!("invalid id: {message}")),
        kv::Error::ValueTooLarge(size) => {
            error_response(413, &format!("user too large to store ({size} bytes)"))
        }
        kv::Error::Storage(_) => {
            log::log(Level::Error, &format!("kv failed: {err}"));
            let mut response = error_response(503, &format!("storage unavailable: {err}"));
            response.headers.push(("retry-after".into(), "1".into()));
            response
        }
        kv::Error::NotANumber => {
            log::log(Level::Error, &format!("kv failed: {err}"));
            error_response(500, &format!("storage failed: {err}"))
        }
    }
}

export!(Users);
