//! The soak's clients: they place orders, write users, read the catalog and
//! review items through HAProxy, and write down every request and what
//! they were told, for the checker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::rig::{CUSTOMERS, SKUS};

/// Most requests one client sends, whatever the duration.
const MAX_REQUESTS: u64 = 5_000_000;

/// The users one writer owns; no other client writes them.
const USERS_PER_WRITER: usize = 40;

/// What a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Order,
    UserWrite,
    Read,
}

/// One request: when it started (ms since the soak's start), how long it
/// took, and its status (0 when no answer came).
#[derive(Debug, Clone)]
pub struct Request {
    pub class: Class,
    pub start_ms: u64,
    pub latency_ms: f64,
    pub status: u16,
}

impl Request {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An order as the client asked for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Asked {
    pub user: String,
    pub sku: String,
    pub quantity: u32,
}

/// One write of a user: the email sent and whether it was acknowledged
/// (`Some(true)`), refused (`Some(false)`) or unknown (`None`: no answer,
/// or a 5xx, after which it may or may not have been applied).
#[derive(Debug, Clone)]
pub struct UserWrite {
    pub email: String,
    pub acknowledged: Option<bool>,
}

/// What the clients were told, kept for the checker.
#[derive(Default)]
pub struct Told {
    pub requests: Vec<Request>,
    /// Orders answered 201, by the id in the answer.
    pub placed: BTreeMap<i64, Asked>,
    /// Orders with no answer or a 5xx: they may exist.
    pub unknown_orders: Vec<Asked>,
    /// Each user's writes, in the order sent.
    pub user_writes: BTreeMap<String, Vec<UserWrite>>,
}

/// The running clients.
pub struct Clients {
    pub told: Arc<Mutex<Told>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    /// Starts `orderers` order placers, one user writer and one reader (who
    /// also reviews), each with its own generator from `seed`; request
    /// times count from `started`.
    pub fn start(base: String, seed: u64, orderers: usize, started: Instant) -> Clients {
        let told = Arc::new(Mutex::new(Told::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..orderers + 2 {
            let (told, stop, base) = (told.clone(), stop.clone(), base.clone());
            let rng = StdRng::seed_from_u64(seed.wrapping_add(1 + i as u64));
            let client = Client {
                http: reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap(),
                base,
                told,
                started,
                rng,
            };
            let role = if i < orderers {
                Role::Orderer
            } else if i == orderers {
                Role::Writer
            } else {
                Role::Reader
            };
            threads.push(std::thread::spawn(move || client.run(role, &stop)));
        }
        Clients {
            told,
            stop,
            threads,
        }
    }

    /// Stops every client after its current request.
    pub fn stop(self) -> Arc<Mutex<Told>> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        self.told
    }
}

enum Role {
    Orderer,
    Writer,
    Reader,
}

struct Client {
    http: reqwest::blocking::Client,
    base: String,
    told: Arc<Mutex<Told>>,
    started: Instant,
    rng: StdRng,
}

impl Client {
    fn run(mut self, role: Role, stop: &AtomicBool) {
        let writer_id = self.rng.random::<u32>();
        let mut version = 0u64;
        for n in 0..MAX_REQUESTS {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match role {
                Role::Orderer => self.order(),
                Role::Writer => {
                    let user = format!("w{writer_id:08x}-{}", n as usize % USERS_PER_WRITER);
                    version += 1;
                    self.write_user(&user, version);
                }
                Role::Reader => self.read(n),
            }
        }
    }

    /// Sends one request; its status and body (empty when none came).
    fn send(&mut self, class: Class, request: reqwest::blocking::RequestBuilder) -> (u16, Vec<u8>) {
        let start = Instant::now();
        let (status, body) = match request.send() {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes() {
                    Ok(body) => (status, body.to_vec()),
                    Err(_) => (0, Vec::new()),
                }
            }
            Err(_) => (0, Vec::new()),
        };
        let record = Request {
            class,
            start_ms: start.duration_since(self.started).as_millis() as u64,
            latency_ms: start.elapsed().as_secs_f64() * 1000.0,
            status,
        };
        self.told.lock().unwrap().requests.push(record);
        (status, body)
    }

    fn order(&mut self) {
        let asked = Asked {
            user: format!("customer-{}", self.rng.random_range(0..CUSTOMERS)),
            sku: SKUS[self.rng.random_range(0..SKUS.len())].to_string(),
            quantity: self.rng.random_range(1..=3),
        };
        let body = serde_json::json!({
            "user": asked.user, "sku": asked.sku, "quantity": asked.quantity
        });
        let request = self.http.post(format!("{}/orders", self.base)).json(&body);
        let (status, body) = self.send(Class::Order, request);
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|order| order["id"].as_i64());
        let mut told = self.told.lock().unwrap();
        match (status, id) {
            (201, Some(id)) => {
                told.placed.insert(id, asked);
            }
            (0 | 500..=599, _) => told.unknown_orders.push(asked),
            _ => {}
        }
    }

    fn write_user(&mut self, user: &str, version: u64) {
        let email = format!("v{version}@{user}.example.com");
        let request = self
            .http
            .put(format!("{}/users/{user}", self.base))
            .body(format!(r#"{{"name": "{user}", "email": "{email}"}}"#));
        let (status, _) = self.send(Class::UserWrite, request);
        let acknowledged = match status {
            200..=299 => Some(true),
            0 | 500..=599 => None,
            _ => Some(false),
        };
        self.told
            .lock()
            .unwrap()
            .user_writes
            .entry(user.to_string())
            .or_default()
            .push(UserWrite {
                email,
                acknowledged,
            });
    }

    fn read(&mut self, n: u64) {
        let sku = SKUS[self.rng.random_range(0..SKUS.len())];
        let request = match n % 50 {
            0 => self
                .http
                .post(format!("{}/reviews/{sku}", self.base))
                .body(format!(
                    r#"{{"user": "customer-{}", "stars": {}, "text": "soak"}}"#,
                    self.rng.random_range(0..CUSTOMERS),
                    self.rng.random_range(1..=5)
                )),
            1..=15 => self.http.get(format!("{}/reviews/{sku}", self.base)),
            _ => self.http.get(format!("{}/catalog/{sku}", self.base)),
        };
        self.send(Class::Read, request);
    }
}
