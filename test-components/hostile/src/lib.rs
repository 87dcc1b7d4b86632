//! A service that misbehaves on purpose. The last path segment picks how:
//!
//! | path            | behaviour                                                  |
//! | --------------- | ---------------------------------------------------------- |
//! | `/ok`           | answers 200 `ok`                                           |
//! | `/loop`         | spins forever                                              |
//! | `/spin?ms=N`    | burns CPU for N ms, then answers                           |
//! | `/sleep?ms=N`   | sleeps N ms (a host call), then answers                    |
//! | `/alloc`        | allocates 1 MiB blocks until memory runs out               |
//! | `/recurse`      | recurses without bound                                     |
//! | `/panic`        | panics                                                     |
//! | `/huge?mib=N`   | answers with an N MiB body (default 32)                    |
//! | `/file`         | tries to read and create files; reports what happened      |
//! | `/env`          | tries to read environment variables; reports what it saw   |
//! | `/socket?port=N`| tries to connect to 127.0.0.1:N; reports what happened     |
//! | `/print?lines=N`| writes N lines to stdout                                   |
//! | `/count`        | answers how many requests this instance has served         |
//! | `/say?text=T`   | writes T (percent-decoded) to stdout and stderr            |

wit_bindgen::generate!({
    world: "service",
    path: "../../wit",
});

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use exports::hive::service::handler::Guest;
use hive::service::types::{Request, Response};

struct Hostile;

/// Requests served by this instance: 1 on a fresh instance every time,
/// unless the host reuses instances.
static SERVED: AtomicU64 = AtomicU64::new(0);

impl Guest for Hostile {
    fn handle(req: Request) -> Response {
        let action = req.path.rsplit('/').next().unwrap_or_default().to_string();
        match action.as_str() {
            "ok" => text(200, "ok".into()),
            "loop" => loop {
                black_box(());
            },
            "spin" => {
                let until = Instant::now() + Duration::from_millis(number(&req, "ms", 1000));
                let mut n = 0u64;
                while Instant::now() < until {
                    n = black_box(n.wrapping_add(1));
                }
                text(200, format!("spun {n}"))
            }
            "sleep" => {
                std::thread::sleep(Duration::from_millis(number(&req, "ms", 1000)));
                text(200, "slept".into())
            }
            "alloc" => {
                let mut blocks: Vec<Vec<u8>> = Vec::new();
                loop {
                    blocks.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "recurse" => text(200, format!("{}", recurse(black_box(0)))),
            "panic" => panic!("hostile component panicked on purpose"),
            "huge" => {
                let size = number(&req, "mib", 32) as usize * (1 << 20);
                Response {
                    status: 200,
                    headers: vec![],
                    body: vec![b'x'; size],
                }
            }
            "file" => text(200, try_files()),
            "env" => text(200, try_env()),
            "socket" => text(200, try_socket(number(&req, "port", 1) as u16)),
            "count" => {
                let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
                text(200, served.to_string())
            }
            "print" => {
                for i in 0..number(&req, "lines", 10) {
                    println!("line {i}");
                }
                text(200, "printed".into())
            }
            "say" => {
                let said = percent_decode(query_value(&req, "text").unwrap_or_default());
                println!("{said}");
                eprintln!("{said}");
                text(200, "said".into())
            }
            other => text(404, format!("unknown action {other:?}")),
        }
    }
}

#[allow(unconditional_recursion)] // The point: it never stops.
fn recurse(depth: u64) -> u64 {
    // No locals in linear memory: every frame lands on the engine's stack,
    // so this exhausts that stack rather than Rust's shadow stack.
    recurse(black_box(depth + 1)).wrapping_add(black_box(depth))
}

fn try_files() -> String {
    let read = std::fs::read_to_string("/etc/passwd");
    let create = std::fs::File::create("/tmp/hive-hostile-was-here");
    let list = std::fs::read_dir("/");
    format!(
        "read: {}\ncreate: {}\nlist: {}\n",
        outcome(read.map(|text| text.len())),
        outcome(create.map(|_| ())),
        outcome(list.map(|entries| entries.count())),
    )
}

fn try_env() -> String {
    let vars: Vec<String> = std::env::vars().map(|(key, _)| key).collect();
    let path = std::env::var("PATH");
    let args = std::env::args().count();
    format!(
        "vars: {}\nPATH: {}\nargs: {args}\n",
        vars.len(),
        outcome(path.map(|p| p.len()))
    )
}

fn try_socket(port: u16) -> String {
    let connect = std::net::TcpStream::connect(("127.0.0.1", port));
    format!("connect: {}\n", outcome(connect.map(|_| ())))
}

fn outcome<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(value) => format!("ALLOWED {value:?}"),
        Err(err) => format!("denied ({err})"),
    }
}

/// The raw value of `key` in the query string.
fn query_value<'a>(req: &'a Request, key: &str) -> Option<&'a str> {
    req.query
        .as_deref()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// `%XX` decoded into bytes, read as UTF-8 (lossily): whatever a client
/// sends, control characters included.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) if hex(hi).is_some() && hex(lo).is_some() => {
                out.push((hex(hi).unwrap_or(0) * 16 + hex(lo).unwrap_or(0)) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn number(req: &Request, key: &str, default: u64) -> u64 {
    req.query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn text(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.into_bytes(),
    }
}

export!(Hostile);
