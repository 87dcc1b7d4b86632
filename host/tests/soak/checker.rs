//! The invariant checker: what the clients were told against what the
//! system holds once the faults stop and the queues drain, and the
//! availability the clients saw.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::Duration;

use serde_json::Value;

use crate::chaos::{Fault, Kind};
use crate::clients::{Asked, Class, Request, Told};
use crate::rig::{INITIAL_STOCK, Rig, SKUS};

/// One invariant's verdict.
pub struct Verdict {
    pub name: &'static str,
    pub held: bool,
    pub counts: String,
}

/// What the system holds, read from Redis (as any operator could).
pub struct Held {
    /// Stored orders by id.
    pub orders: BTreeMap<i64, Asked>,
    /// Each SKU's count and open reservations.
    pub stock: BTreeMap<String, (u32, usize)>,
    /// Order ids notifications recorded.
    pub notified: Vec<i64>,
}

/// A namespace's values, from the Redis primary on `port`.
fn namespace(port: u16, name: &str) -> HashMap<String, Vec<u8>> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    let mut connection = client.get_connection().unwrap();
    let key = format!("hive:kv:{{{}:{name}}}:data", name.len());
    redis::cmd("HGETALL")
        .arg(key)
        .query(&mut connection)
        .unwrap()
}

impl Held {
    /// Reads it now.
    pub fn read(rig: &Rig) -> Held {
        let port = {
            let redis = rig.redis.lock().unwrap();
            redis.primary().expect("a primary")
        };
        let mut orders = BTreeMap::new();
        for (key, value) in namespace(port, "orders") {
            let Some(id) = key.strip_prefix("order/").and_then(|id| id.parse().ok()) else {
                continue;
            };
            let order: Value = serde_json::from_slice(&value).unwrap_or_default();
            orders.insert(
                id,
                Asked {
                    user: order["user"]["id"].as_str().unwrap_or_default().to_string(),
                    sku: order["sku"].as_str().unwrap_or_default().to_string(),
                    quantity: order["quantity"].as_u64().unwrap_or_default() as u32,
                },
            );
        }
        let inventory = namespace(port, "inventory");
        let mut stock = BTreeMap::new();
        for sku in SKUS {
            let text = inventory
                .get(&format!("stock/{sku}"))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            let mut lines = text.lines();
            let count = lines.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let open = lines.filter(|line| line.starts_with("p ")).count();
            stock.insert(sku.to_string(), (count, open));
        }
        let notified = namespace(port, "notifications")
            .keys()
            .filter_map(|key| key.strip_prefix("sent/").and_then(|id| id.parse().ok()))
            .collect();
        Held {
            orders,
            stock,
            notified,
        }
    }

    /// Whether the queues look drained: no reservation waits and every
    /// stored order was notified.
    pub fn settled(&self) -> bool {
        self.stock.values().all(|(_, open)| *open == 0)
            && self
                .orders
                .keys()
                .all(|id| self.notified.binary_search(id).is_ok())
    }
}

/// Reads until the system settles or `limit` passes; the last reading.
pub fn settle(rig: &Rig, limit: Duration) -> (Held, Duration) {
    let started = std::time::Instant::now();
    loop {
        let mut held = Held::read(rig);
        held.notified.sort_unstable();
        if held.settled() || started.elapsed() > limit {
            return (held, started.elapsed());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Every invariant, checked.
pub fn check(rig: &Rig, told: &Told, held: &Held) -> Vec<Verdict> {
    let mut verdicts = Vec::new();

    // Every 201 order exists exactly once; every other stored order was
    // one the clients got no clear answer for.
    let mut missing = 0;
    let mut wrong = 0;
    for (id, asked) in &told.placed {
        match held.orders.get(id) {
            None => missing += 1,
            Some(stored) if stored != asked => wrong += 1,
            Some(_) => {}
        }
    }
    let mut unknown: BTreeMap<&Asked, usize> = BTreeMap::new();
    for asked in &told.unknown_orders {
        *unknown.entry(asked).or_default() += 1;
    }
    let mut unexplained = 0;
    for (id, stored) in &held.orders {
        if told.placed.contains_key(id) {
            continue;
        }
        match unknown.get_mut(stored) {
            Some(left) if *left > 0 => *left -= 1,
            _ => unexplained += 1,
        }
    }
    verdicts.push(Verdict {
        name: "every 201 order exists exactly once",
        held: missing == 0 && wrong == 0 && unexplained == 0,
        counts: format!(
            "{} acknowledged, {} stored ({} of them from {} unanswered attempts); \
             missing {missing}, different {wrong}, stored without a request {unexplained}",
            told.placed.len(),
            held.orders.len(),
            held.orders.len() - (told.placed.len() - missing),
            told.unknown_orders.len()
        ),
    });

    // Stock: initial minus what the stored orders took.
    let mut lines = Vec::new();
    let mut stock_held = true;
    for sku in SKUS {
        let sold: u64 = held
            .orders
            .values()
            .filter(|order| order.sku == sku)
            .map(|order| u64::from(order.quantity))
            .sum();
        let (count, open) = held.stock.get(sku).copied().unwrap_or_default();
        let expected = u64::from(INITIAL_STOCK).saturating_sub(sold);
        if u64::from(count) != expected || open > 0 {
            stock_held = false;
        }
        lines.push(format!(
            "{sku}: {count} left, {expected} expected ({sold} sold), {open} reservations open"
        ));
    }
    verdicts.push(Verdict {
        name: "stock = initial - stored orders",
        held: stock_held,
        counts: lines.join("; "),
    });

    // Users: the last acknowledged write, or one sent after it whose
    // outcome is unknown.
    let mut checked = 0;
    let mut lost = Vec::new();
    for (user, writes) in &told.user_writes {
        let last_acked = writes.iter().rposition(|w| w.acknowledged == Some(true));
        let allowed: Vec<&str> = writes
            .iter()
            .enumerate()
            .filter(|(i, w)| {
                Some(*i) == last_acked
                    || (w.acknowledged.is_none() && last_acked.is_none_or(|a| *i > a))
            })
            .map(|(_, w)| w.email.as_str())
            .collect();
        let found = read_user(rig, user);
        checked += 1;
        let fine = match &found {
            Some(email) => allowed.contains(&email.as_str()),
            None => last_acked.is_none(),
        };
        if !fine {
            lost.push(format!("{user}: holds {found:?}, told {allowed:?}"));
        }
    }
    let writes: usize = told.user_writes.values().map(Vec::len).sum();
    let acked = told
        .user_writes
        .values()
        .flatten()
        .filter(|w| w.acknowledged == Some(true))
        .count();
    verdicts.push(Verdict {
        name: "every acknowledged user write is readable, last value",
        held: lost.is_empty(),
        counts: format!(
            "{checked} users, {writes} writes ({acked} acknowledged); wrong: {}{}",
            lost.len(),
            lost.iter()
                .take(5)
                .map(|l| format!("; {l}"))
                .collect::<String>()
        ),
    });

    // Events: every order handled at least once, none for a missing one.
    let unhandled = held
        .orders
        .keys()
        .filter(|id| held.notified.binary_search(id).is_err())
        .count();
    let phantom = held
        .notified
        .iter()
        .filter(|id| !held.orders.contains_key(id))
        .count();
    verdicts.push(Verdict {
        name: "every order.placed handled, none for a missing order",
        held: unhandled == 0 && phantom == 0,
        counts: format!(
            "{} notified for {} orders; unhandled {unhandled}, for no order {phantom}",
            held.notified.len(),
            held.orders.len()
        ),
    });

    // No panic of a host's own. A guest's panic (a trap, which the host
    // turns into a 500 or a redelivery) is logged as the guest's output,
    // and only counted.
    let logs: Vec<String> = rig.nodes.iter().map(|node| node.log()).collect();
    let panics: Vec<String> = logs
        .iter()
        .enumerate()
        .filter_map(|(i, log)| {
            let line = log
                .lines()
                .find(|line| line.contains("panicked") && !line.contains(" guest: "))?;
            Some(format!("host {i}: {line}"))
        })
        .collect();
    let guest_panics: usize = logs
        .iter()
        .map(|log| {
            log.lines()
                .filter(|line| line.contains("panicked") && line.contains(" guest: "))
                .count()
        })
        .sum();
    verdicts.push(Verdict {
        name: "no host panicked",
        held: panics.is_empty(),
        counts: format!(
            "{} host logs read; with a panic of the host: {}{}; guest traps logged: {guest_panics}",
            rig.nodes.len(),
            panics.len(),
            panics.iter().map(|p| format!("; {p}")).collect::<String>()
        ),
    });
    verdicts
}

/// The email `user` holds now, read through HAProxy (a few tries, the
/// system being calm by now).
fn read_user(rig: &Rig, user: &str) -> Option<String> {
    for _ in 0..10 {
        if let Ok(response) = rig.http.get(rig.url(&format!("/users/{user}"))).send() {
            match response.status().as_u16() {
                200 => {
                    let user: Value = response.json().unwrap_or_default();
                    return user["email"].as_str().map(str::to_string);
                }
                404 => return None,
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Some("<unreadable>".to_string())
}

/// The report: faults, requests, availability per minute, the longest
/// unavailability, what each fault cost, and the invariants.
pub fn report(
    seed: u64,
    seconds: u64,
    durability: &str,
    faults: &[Fault],
    told: &Told,
    verdicts: &[Verdict],
    settled_in: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Soak: {seconds} s, seed {seed}, kv-durability {durability}\n"
    );
    let _ = writeln!(out, "## Faults injected ({})\n", faults.len());
    for kind in Kind::ALL {
        let count = faults.iter().filter(|f| f.kind == kind).count();
        let _ = writeln!(out, "- {}: {count}", kind.describe());
    }
    let _ = writeln!(out);
    for fault in faults {
        let _ = writeln!(
            out,
            "- {:>7.1} s {:?}: {} (undone in {:.1} s)",
            fault.at_ms as f64 / 1000.0,
            fault.kind,
            fault.detail,
            fault.took_ms as f64 / 1000.0
        );
    }

    let requests = &told.requests;
    let ok = requests.iter().filter(|r| r.ok()).count();
    let _ = writeln!(
        out,
        "\n## Requests: {} ({} 2xx, {:.3}%)\n",
        requests.len(),
        ok,
        share(ok, requests.len())
    );
    for class in [Class::Order, Class::UserWrite, Class::Read] {
        let of: Vec<&Request> = requests.iter().filter(|r| r.class == class).collect();
        let ok = of.iter().filter(|r| r.ok()).count();
        let _ = writeln!(
            out,
            "- {class:?}: {} sent, {:.3}% 2xx, p99 {:.1} ms",
            of.len(),
            share(ok, of.len()),
            p99(&of)
        );
    }

    let _ = writeln!(out, "\n## Availability per minute\n");
    let _ = writeln!(
        out,
        "| minute | requests | 2xx | p99 ms |\n| --- | --- | --- | --- |"
    );
    let minutes = requests
        .iter()
        .map(|r| r.start_ms / 60_000)
        .max()
        .unwrap_or(0);
    for minute in 0..=minutes {
        let of: Vec<&Request> = requests
            .iter()
            .filter(|r| r.start_ms / 60_000 == minute)
            .collect();
        let ok = of.iter().filter(|r| r.ok()).count();
        let _ = writeln!(
            out,
            "| {} | {} | {:.2}% | {:.1} |",
            minute + 1,
            of.len(),
            share(ok, of.len()),
            p99(&of)
        );
    }

    let _ = writeln!(
        out,
        "\n## Longest unavailability (every request of a kind failing)\n"
    );
    for class in [Class::Order, Class::UserWrite, Class::Read] {
        let (from, to) = longest_outage(requests, class);
        // The last fault to start before the stretch ended.
        let cause = faults
            .iter()
            .rev()
            .find(|f| f.at_ms <= to)
            .map(|f| {
                format!(
                    "{:?} at {:.1} s: {}",
                    f.kind,
                    f.at_ms as f64 / 1000.0,
                    f.detail
                )
            })
            .unwrap_or_else(|| "before any fault".into());
        let _ = writeln!(
            out,
            "- {class:?}: {:.2} s from {:.1} s (after {cause})",
            (to - from) as f64 / 1000.0,
            from as f64 / 1000.0
        );
    }

    let _ = writeln!(
        out,
        "\n## What each fault cost (requests started while it ran and 5 s after)\n"
    );
    let _ = writeln!(
        out,
        "| fault | count | failed requests (median, max) | longest failing stretch (median, max) |\n\
         | --- | --- | --- | --- |"
    );
    for kind in Kind::ALL {
        let mut failed = Vec::new();
        let mut stretches = Vec::new();
        for fault in faults.iter().filter(|f| f.kind == kind) {
            let end = fault.at_ms + fault.took_ms + 5_000;
            let during: Vec<&Request> = requests
                .iter()
                .filter(|r| r.start_ms >= fault.at_ms && r.start_ms < end)
                .collect();
            failed.push(during.iter().filter(|r| !r.ok()).count() as f64);
            stretches.push(longest_failing(&during) as f64 / 1000.0);
        }
        if failed.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {:.0}, {:.0} | {:.2} s, {:.2} s |",
            kind.describe(),
            failed.len(),
            median(&mut failed),
            max(&failed),
            median(&mut stretches),
            max(&stretches)
        );
    }

    let _ = writeln!(
        out,
        "\n## Invariants (settled {:.1} s after the faults stopped)\n",
        settled_in.as_secs_f64()
    );
    for verdict in verdicts {
        let _ = writeln!(
            out,
            "- [{}] {}: {}",
            if verdict.held { "held" } else { "FAILED" },
            verdict.name,
            verdict.counts
        );
    }
    out
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 100.0;
    }
    part as f64 * 100.0 / whole as f64
}

fn p99(requests: &[&Request]) -> f64 {
    let mut latencies: Vec<f64> = requests.iter().map(|r| r.latency_ms).collect();
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_by(f64::total_cmp);
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// The longest stretch (ms from, to) in which every request of `class`
/// failed: from the first failure's start to the next success's start.
fn longest_outage<'a>(requests: impl IntoIterator<Item = &'a Request>, class: Class) -> (u64, u64) {
    let mut of: Vec<&Request> = requests.into_iter().filter(|r| r.class == class).collect();
    of.sort_by_key(|r| r.start_ms);
    let mut best = (0, 0);
    let mut failing_since = None;
    for request in of {
        match (request.ok(), failing_since) {
            (false, None) => failing_since = Some(request.start_ms),
            (true, Some(since)) => {
                if request.start_ms - since > best.1 - best.0 {
                    best = (since, request.start_ms);
                }
                failing_since = None;
            }
            _ => {}
        }
    }
    best
}

/// The longest stretch (ms) among `requests` of any one kind all failing.
fn longest_failing(requests: &[&Request]) -> u64 {
    [Class::Order, Class::UserWrite, Class::Read]
        .into_iter()
        .map(|class| {
            let (from, to) = longest_outage(requests.iter().copied(), class);
            to - from
        })
        .max()
        .unwrap_or(0)
}
