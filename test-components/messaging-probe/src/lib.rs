//! `messaging-probe`: a component written to the `wasi:messaging`
//! proposal (0.2.0-draft), with a Hive HTTP front so tests can drive it.
//!
//! - `POST .../send/<topic>` sends the body with `producer.send` (content
//!   type `text/plain`, metadata `sender=messaging-probe`): 200, or 503
//!   with the error.
//! - Each message its `incoming-handler` receives is recorded (kv
//!   `got/<n>`: topic, data, content type, metadata); a message whose data
//!   is `fail` is refused with an error, which the host retries.
//! - `GET .../got` lists what was received, one JSON object per line.

wit_bindgen::generate!({
    path: "../../wit",
    inline: "
        package hive:messaging-probe;
        world probe {
            include hive:service/service@0.1.0;
            import wasi:messaging/producer@0.2.0-draft;
            export wasi:messaging/incoming-handler@0.2.0-draft;
        }
    ",
    world: "probe",
    generate_all,
});

use exports::hive::service::handler::Guest as Handler;
use exports::wasi::messaging::incoming_handler::Guest as IncomingHandler;
use hive::service::kv;
use hive::service::types::{Request, Response};
use serde_json::json;
use wasi::messaging::producer;
use wasi::messaging::types::{Client, Error, Message};

struct Probe;

impl Handler for Probe {
    fn handle(req: Request) -> Response {
        let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        match (
            req.method.as_str(),
            segments.get(1).copied(),
            segments.get(2).copied(),
        ) {
            ("POST", Some("send"), Some(topic)) => send(topic, &req.body),
            ("GET", Some("got"), _) => got(),
            _ => text(404, "no such probe action".into()),
        }
    }
}

fn send(topic: &str, body: &[u8]) -> Response {
    let client = match Client::connect("default") {
        Ok(client) => client,
        Err(err) => return text(503, format!("connect: {err:?}")),
    };
    let message = Message::new(body);
    message.set_content_type("text/plain");
    message.add_metadata("sender", "messaging-probe");
    match producer::send(&client, &topic.to_string(), message) {
        Ok(()) => text(200, "sent".into()),
        Err(err) => text(503, format!("send: {err:?}")),
    }
}

fn got() -> Response {
    let keys = match kv::list_keys("got/", 100_000) {
        Ok(keys) => keys,
        Err(err) => return text(503, format!("{err:?}")),
    };
    let mut out = String::new();
    for key in keys {
        if let Ok(Some(value)) = kv::get(&key) {
            out.push_str(&String::from_utf8_lossy(&value));
            out.push('\n');
        }
    }
    text(200, out)
}

impl IncomingHandler for Probe {
    fn handle(message: Message) -> Result<(), Error> {
        let data = message.data();
        let n = kv::increment("received", 1).map_err(|err| Error::Other(format!("{err:?}")))?;
        let record = json!({
            "topic": message.topic(),
            "data": String::from_utf8_lossy(&data),
            "content_type": message.content_type(),
            "metadata": message.metadata().unwrap_or_default(),
        });
        kv::set(&format!("got/{n:06}"), record.to_string().as_bytes())
            .map_err(|err| Error::Other(format!("{err:?}")))?;
        if data == b"fail" {
            return Err(Error::Other("asked to fail".into()));
        }
        Ok(())
    }
}

fn text(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.into_bytes(),
    }
}

export!(Probe);
