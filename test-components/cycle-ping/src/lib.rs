//! `cycle-ping`: one half of an endless cycle of typed calls, so the host's
//! tests can prove the host cuts it off.
//!
//! It exports `test:cycle/ping` and imports `test:cycle/pong` (exported by
//! `cycle-pong`); each `bounce(hops)` returns the other side's
//! `bounce(hops + 1)`. Its HTTP handler starts the cycle with `pong.bounce(0)`
//! and would answer 200 with the result, but never gets there: the host fails
//! the request.

wit_bindgen::generate!({
    inline: "
        package test:cycle-ping;

        world cycle-ping {
            include hive:service/service@0.1.0;
            export test:cycle/ping@0.1.0;
            import test:cycle/pong@0.1.0;
        }
    ",
    path: ["../../wit", "../wit/cycle"],
    world: "cycle-ping",
    generate_all,
});

use exports::hive::service::handler;
use exports::test::cycle::ping;
use hive::service::types::{Request, Response};
use test::cycle::pong;

struct CyclePing;

impl handler::Guest for CyclePing {
    fn handle(_req: Request) -> Response {
        let hops = pong::bounce(0);
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: hops.to_string().into_bytes(),
        }
    }
}

impl ping::Guest for CyclePing {
    fn bounce(hops: u32) -> u32 {
        pong::bounce(hops.saturating_add(1))
    }
}

export!(CyclePing);
