//! `bench-caller`: `GET /bench-caller?n=N` makes N typed calls to
//! `test:bench/echo.ping` and answers with the nanoseconds they took,
//! measured inside the guest so HTTP overhead is left out.

wit_bindgen::generate!({
    inline: "
        package test:bench-caller;

        world bench-caller {
            include hive:service/service@0.1.0;
            import test:bench/echo@0.1.0;
        }
    ",
    path: ["../../wit", "../wit/bench"],
    world: "bench-caller",
    generate_all,
});

use std::time::Instant;

use exports::hive::service::handler;
use hive::service::types::{Request, Response};
use test::bench::echo;

struct BenchCaller;

impl handler::Guest for BenchCaller {
    fn handle(req: Request) -> Response {
        let calls = req
            .query
            .as_deref()
            .and_then(|q| q.strip_prefix("n="))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        let started = Instant::now();
        let mut checksum = 0u64;
        for i in 0..calls {
            checksum = checksum.wrapping_add(echo::ping(i));
        }
        let nanos = started.elapsed().as_nanos();
        let expected = (0..calls).fold(0u64, |sum, i| sum.wrapping_add(i));
        let (status, body) = if checksum == expected {
            (200, nanos.to_string())
        } else {
            (
                500,
                format!("wrong checksum {checksum}, expected {expected}"),
            )
        };
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into_bytes(),
        }
    }
}

export!(BenchCaller);
