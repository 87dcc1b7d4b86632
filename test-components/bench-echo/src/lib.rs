//! `bench-echo`: the callee of the call benchmark. The same work is reachable
//! two ways: as the typed export `test:bench/echo.ping`, and over HTTP
//! (`GET /bench-echo?value=N` answers `N`), so the two kinds of call can be
//! compared on equal terms.

wit_bindgen::generate!({
    inline: "
        package test:bench-echo;

        world bench-echo {
            include hive:service/service@0.1.0;
            export test:bench/echo@0.1.0;
        }
    ",
    path: ["../../wit", "../wit/bench"],
    world: "bench-echo",
    generate_all,
});

use exports::hive::service::handler;
use exports::test::bench::echo;
use hive::service::types::{Request, Response};

struct BenchEcho;

impl echo::Guest for BenchEcho {
    fn ping(value: u64) -> u64 {
        value
    }
}

impl handler::Guest for BenchEcho {
    fn handle(req: Request) -> Response {
        let value = req
            .query
            .as_deref()
            .and_then(|q| q.strip_prefix("value="))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: <BenchEcho as echo::Guest>::ping(value)
                .to_string()
                .into_bytes(),
        }
    }
}

export!(BenchEcho);
