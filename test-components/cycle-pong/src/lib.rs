//! `cycle-pong`: the other half of the endless cycle of typed calls started
//! by `cycle-ping`.
//!
//! It exports `test:cycle/pong` and imports `test:cycle/ping`; each
//! `bounce(hops)` returns `ping.bounce(hops + 1)`. Its HTTP handler answers
//! 200 `pong`.

wit_bindgen::generate!({
    inline: "
        package test:cycle-pong;

        world cycle-pong {
            include hive:service/service@0.1.0;
            export test:cycle/pong@0.1.0;
            import test:cycle/ping@0.1.0;
        }
    ",
    path: ["../../wit", "../wit/cycle"],
    world: "cycle-pong",
    generate_all,
});

use exports::hive::service::handler;
use exports::test::cycle::pong;
use hive::service::types::{Request, Response};
use test::cycle::ping;

struct CyclePong;

impl handler::Guest for CyclePong {
    fn handle(_req: Request) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"pong".to_vec(),
        }
    }
}

impl pong::Guest for CyclePong {
    fn bounce(hops: u32) -> u32 {
        ping::bounce(hops.saturating_add(1))
    }
}

export!(CyclePong);
