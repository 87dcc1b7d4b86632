//! `trap-directory`: a provider of `shop:users/directory` that traps, so the
//! host's tests can see how a typed call into a failing service is reported.
//!
//! `get-user("ok")` returns a fixed user; every other id panics with
//! "trap-directory panicked on purpose". Its HTTP handler answers 200
//! `trap-directory`.

wit_bindgen::generate!({
    inline: "
        package test:trap-directory;

        world trap-directory {
            include hive:service/service@0.1.0;
            export shop:users/directory@0.1.0;
        }
    ",
    path: ["../../wit", "../../components/shop-wit/users"],
    world: "trap-directory",
    generate_all,
});

use exports::hive::service::handler;
use exports::shop::users::directory::{self, User};
use hive::service::types::{Request, Response};

struct TrapDirectory;

impl handler::Guest for TrapDirectory {
    fn handle(_req: Request) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"trap-directory".to_vec(),
        }
    }
}

impl directory::Guest for TrapDirectory {
    fn get_user(id: String) -> Option<User> {
        if id != "ok" {
            panic!("trap-directory panicked on purpose");
        }
        Some(User {
            id,
            name: "Okay".into(),
            email: "ok@example.com".into(),
        })
    }
}

export!(TrapDirectory);
