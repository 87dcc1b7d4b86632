//! `hive top`: the operator console in a terminal, for hosts reached over
//! SSH. It polls the admin API (`/components`, `/stats`, `/failures`) and
//! draws the host's request rate over the last 15 minutes, a row per
//! component (state, rates and latencies) and the latest failures. `q`,
//! Esc or Ctrl-C quits.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Sparkline, Table};
use ratatui::{DefaultTerminal, Frame};
use serde_json::Value;

use super::client::AdminClient;

/// Failures shown at the bottom.
const FAILURES_SHOWN: usize = 8;

/// One component's line.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentRow {
    /// Its name.
    pub name: String,
    /// `ready`, `waiting` or `failed`.
    pub state: String,
    /// Requests per second in the last complete 5 s bucket.
    pub requests_per_second: f64,
    /// Failed requests per second in it.
    pub errors_per_second: f64,
    /// Median latency of the newest bucket with requests, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of that bucket, ms.
    pub p99_ms: Option<f64>,
    /// Requests in the whole 15 minute window.
    pub requests: u64,
}

/// What one screen shows, read from the admin API.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The host-wide row (its name is `all`).
    pub host: Option<ComponentRow>,
    /// Requests per 5 s bucket host-wide, oldest first, for the sparkline.
    pub host_series: Vec<u64>,
    /// A row per component.
    pub components: Vec<ComponentRow>,
    /// The latest failures: (time, request id, component, kind, status).
    pub failures: Vec<[String; 5]>,
}

impl Snapshot {
    /// Reads the admin API once.
    pub fn fetch(client: &AdminClient) -> Result<Snapshot> {
        let components = client.get_json("/components")?;
        let stats = client.get_json("/stats")?;
        let failures = client.get_json("/failures")?;
        Ok(Snapshot::from_json(&components, &stats, &failures))
    }

    /// Builds a snapshot from the three JSON answers.
    pub fn from_json(components: &Value, stats: &Value, failures: &Value) -> Snapshot {
        let bucket = stats["bucket_seconds"].as_f64().unwrap_or(5.0);
        let empty = Vec::new();
        let host_points = stats["host"].as_array().unwrap_or(&empty);
        let rows = components["components"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or("?").to_string();
                let state = c["state"].as_str().unwrap_or("?").to_string();
                let points = stats["components"][&name].as_array().unwrap_or(&empty);
                summarize(name, state, points, bucket)
            })
            .collect();
        let failures = failures["failures"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .take(FAILURES_SHOWN)
            .map(|f| {
                [
                    clock(f["at_ms"].as_u64().unwrap_or_default()),
                    f["request_id"].as_str().unwrap_or_default().to_string(),
                    f["component"].as_str().unwrap_or_default().to_string(),
                    f["kind"].as_str().unwrap_or_default().to_string(),
                    f["status"].as_u64().unwrap_or_default().to_string(),
                ]
            })
            .collect();
        Snapshot {
            host: Some(summarize(
                "all".to_string(),
                String::new(),
                host_points,
                bucket,
            )),
            host_series: host_points
                .iter()
                .map(|p| (p["requests_per_second"].as_f64().unwrap_or(0.0) * bucket).round() as u64)
                .collect(),
            components: rows,
            failures,
        }
    }
}

/// A row from a component's points (oldest first; the last is the bucket
/// still filling).
fn summarize(name: String, state: String, points: &[Value], bucket: f64) -> ComponentRow {
    let rate = |p: Option<&Value>, key: &str| p.and_then(|p| p[key].as_f64()).unwrap_or(0.0);
    let complete = points.len().checked_sub(2).and_then(|i| points.get(i));
    let latest = points.iter().rev().find(|p| p["p50_ms"].is_number());
    ComponentRow {
        name,
        state,
        requests_per_second: rate(complete, "requests_per_second"),
        errors_per_second: rate(complete, "errors_per_second"),
        p50_ms: latest.and_then(|p| p["p50_ms"].as_f64()),
        p99_ms: latest.and_then(|p| p["p99_ms"].as_f64()),
        requests: points
            .iter()
            .map(|p| rate(Some(p), "requests_per_second") * bucket)
            .sum::<f64>()
            .round() as u64,
    }
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
fn clock(at_ms: u64) -> String {
    let seconds = at_ms / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1}"))
}

/// Runs the console until the user quits, refreshing every `interval`.
pub fn run(client: &AdminClient, admin: &str, interval: Duration) -> Result<()> {
    // Fail before taking over the terminal if the host is not there.
    let mut snapshot = Snapshot::fetch(client)?;
    let mut terminal = ratatui::try_init().context("taking over the terminal")?;
    let outcome = watch(&mut terminal, client, admin, interval, &mut snapshot);
    ratatui::restore();
    outcome
}

fn watch(
    terminal: &mut DefaultTerminal,
    client: &AdminClient,
    admin: &str,
    interval: Duration,
    snapshot: &mut Snapshot,
) -> Result<()> {
    let mut problem: Option<String> = None;
    let mut fetched = Instant::now();
    loop {
        terminal.draw(|frame| draw(frame, admin, snapshot, problem.as_deref()))?;
        let wait = interval.saturating_sub(fetched.elapsed());
        if event::poll(wait)?
            && let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
        {
            let ctrl_c =
                key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
            if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                return Ok(());
            }
        }
        if fetched.elapsed() >= interval {
            fetched = Instant::now();
            match Snapshot::fetch(client) {
                Ok(next) => {
                    *snapshot = next;
                    problem = None;
                }
                // Keep the last picture and say why it is stale.
                Err(err) => problem = Some(format!("{err:#}")),
            }
        }
    }
}

fn draw(frame: &mut Frame, admin: &str, snapshot: &Snapshot, problem: Option<&str>) {
    let [header, chart, table, failures] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(5),
        Constraint::Min(4),
        Constraint::Length(FAILURES_SHOWN as u16 + 2),
    ])
    .areas(frame.area());
    let ready = snapshot
        .components
        .iter()
        .filter(|c| c.state == "ready")
        .count();
    let mut title = vec![Line::from(format!(
        "hive top  {admin}  {} components, {ready} ready  (q quits)",
        snapshot.components.len()
    ))];
    if let Some(host) = &snapshot.host {
        title.push(Line::from(format!(
            "host: {:.1} req/s  {:.1} err/s  p50 {} ms  p99 {} ms  {} requests in 15 min",
            host.requests_per_second,
            host.errors_per_second,
            millis(host.p50_ms),
            millis(host.p99_ms),
            host.requests
        )));
    }
    if let Some(problem) = problem {
        title[0] = Line::styled(
            format!("admin API unreachable, showing the last answer: {problem}"),
            Style::default().fg(Color::Red),
        );
    }
    frame.render_widget(Paragraph::new(title), header);

    let sparkline = Sparkline::default()
        .block(Block::bordered().title("requests per 5 s, last 15 minutes"))
        .data(&snapshot.host_series)
        .style(Style::default().fg(Color::Cyan));
    frame.render_widget(sparkline, chart);

    let rows = snapshot.components.iter().map(|c| {
        let style = match c.state.as_str() {
            "ready" => Style::default(),
            "waiting" => Style::default().fg(Color::Yellow),
            _ => Style::default().fg(Color::Red),
        };
        Row::new(vec![
            c.name.clone(),
            c.state.clone(),
            format!("{:.1}", c.requests_per_second),
            format!("{:.1}", c.errors_per_second),
            millis(c.p50_ms),
            millis(c.p99_ms),
            c.requests.to_string(),
        ])
        .style(style)
    });
    let header_row = Row::new(vec![
        "component",
        "state",
        "req/s",
        "err/s",
        "p50 ms",
        "p99 ms",
        "15m reqs",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Min(16),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(9),
    ];
    let table_widget = Table::new(rows, widths)
        .header(header_row)
        .block(Block::bordered().title("components"));
    frame.render_widget(table_widget, table);

    let lines: Vec<Line> = if snapshot.failures.is_empty() {
        vec![Line::from("none")]
    } else {
        snapshot
            .failures
            .iter()
            .map(|[at, id, component, kind, status]| {
                Line::from(format!("{at}  {status}  {component:<14} {kind:<18} {id}"))
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("recent failures")),
        failures,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_use_the_last_complete_bucket_and_the_whole_window() {
        let point = |rps: f64, p50: Option<f64>| {
            json!({"requests_per_second": rps, "errors_per_second": rps / 2.0,
                   "p50_ms": p50, "p99_ms": p50.map(|p| p * 3.0)})
        };
        let stats = json!({
            "bucket_seconds": 5,
            "host": [point(2.0, Some(1.0)), point(4.0, Some(2.0)), point(0.2, None)],
            "components": {"hello": [point(2.0, Some(1.0)), point(4.0, Some(2.0)), point(0.2, None)]},
        });
        let components = json!({"components": [
            {"name": "hello", "state": "ready"},
            {"name": "broken", "state": "failed"},
        ]});
        let failures = json!({"failures": [
            {"at_ms": 3_723_000u64, "request_id": "r1", "component": "hostile", "kind": "trap", "status": 500}
        ]});
        let snapshot = Snapshot::from_json(&components, &stats, &failures);
        let hello = &snapshot.components[0];
        assert_eq!(hello.requests_per_second, 4.0);
        assert_eq!(hello.errors_per_second, 2.0);
        assert_eq!(hello.p50_ms, Some(2.0));
        assert_eq!(hello.requests, 31);
        assert_eq!(snapshot.components[1].requests, 0);
        assert_eq!(snapshot.host_series, vec![10, 20, 1]);
        assert_eq!(snapshot.failures[0][0], "01:02:03");
        assert_eq!(snapshot.failures[0][1], "r1");
    }
}
