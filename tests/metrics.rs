//! `GET /metrics` on `switchboard run`'s HTTP server: Prometheus' text format, the messages a
//! customer sent (on the fake Telegram) counted by channel and outcome, and nothing the customer
//! wrote or is known by. Also: the README's table and the Grafana dashboard name every metric
//! there is, and no other.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_core::metrics::{ALL, Kind};
use switchboard_testkit::telegram::{FakeTelegram, FakeUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "123456789:AAHmetrics-Token_for_tests";
/// How long the binary may take to start (the pack is trained at start, in a debug build).
const TIMEOUT: Duration = Duration::from_secs(90);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `switchboard run`, killed when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` on 127.0.0.1:`port`: the status, the headers (lowercase names) and the body.
async fn get(port: u16, path: &str) -> std::io::Result<(u16, Vec<(String, String)>, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    Ok((status, headers, body.to_string()))
}

/// Polls `check` every 50 ms until it says `Some`, or [`TIMEOUT`] passes.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, logs: &Path, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; logs:\n{}", std::fs::read_to_string(logs).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_customers_messages_by_channel_and_show_nothing_of_them() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let data = tempfile::tempdir().unwrap();
    let logs = data.path().join("stderr.log");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("run")
        .current_dir(root())
        .env("SWITCHBOARD_DATA_DIR", data.path())
        .env("SWITCHBOARD_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("DISCORD_TOKEN")
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("SWITCHBOARD_TELEGRAM__API_URL", fake.api_url())
        .env("SWITCHBOARD_TELEGRAM__POLL_TIMEOUT_SECS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&logs).unwrap()))
        .spawn()
        .expect("the binary runs");
    let _running = Running(child);

    // Served once it runs, before any message.
    let (status, headers, _) = eventually("/metrics", &logs, || async { get(port, "/metrics").await.ok() }).await;
    assert_eq!(status, 200);
    let content_type = headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str()).unwrap_or_default();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");

    // A customer asks two things; a secret in the second is masked before anything counts it.
    let customer = FakeUser::new(781_234_567, "Quillon").lang("en");
    let question = "my account is locked";
    let secret = "my password is Hunter2Zebra! and my transfer is stuck";
    fake.push_text(&customer, question);
    eventually("the first answer", &logs, || async { fake.sent_to(customer.id).into_iter().next() }).await;
    fake.push_text(&customer, secret);
    let body = eventually("both messages counted", &logs, || async {
        let (_, _, body) = get(port, "/metrics").await.ok()?;
        body.contains("switchboard_messages_in_total{channel=\"telegram\"} 2").then_some(body)
    })
    .await;
    assert!(body.contains("# HELP switchboard_messages_in_total "), "{body}");
    assert!(body.contains("# TYPE switchboard_messages_in_total counter"), "{body}");
    assert!(body.contains("switchboard_outcomes_total{channel=\"telegram\",intent=\"account_locked\",outcome=\"answer\"} 1"), "{body}");
    assert!(body.contains("switchboard_replies_out_total{channel=\"telegram\",by=\"bot\"}"), "{body}");
    assert!(body.contains("# TYPE switchboard_matcher_seconds histogram"), "{body}");
    assert!(body.contains("switchboard_matcher_seconds_count 2"), "{body}");
    assert!(body.contains("switchboard_queue_length{priority=\"normal\"}"), "the gauges are read at start: {body}");
    // Delivered through the outbox, counted per target.
    let body = eventually("the deliveries counted", &logs, || async {
        let (_, _, body) = get(port, "/metrics").await.ok()?;
        body.contains("switchboard_outbox_delivered_total{target=\"telegram\"}").then_some(body)
    })
    .await;

    // Nothing the customer wrote or is known by.
    for private in [question, secret, "Hunter2Zebra", "Quillon", &customer.id.to_string(), TOKEN] {
        assert!(!body.contains(private), "{private:?} in /metrics:\n{body}");
    }
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.starts_with("switchboard_"), "a metric of Switchboard's own: {line}");
    }
}

/// Names of metrics a text refers to (`switchboard_…`), histogram series folded to the metric.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("switchboard_") {
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let name = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).map_or(n.clone(), str::to_string));
        out.insert(name);
    }
    out
}

#[test]
fn the_readme_and_the_dashboard_name_every_metric_and_no_other() {
    let all: BTreeSet<String> = ALL.iter().map(|m| m.name.to_string()).collect();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme.split("\n## Metrics\n").nth(1).expect("a Metrics section in the README");
    let section = section.split("\n## ").next().unwrap();
    for m in ALL {
        let row = section.lines().find(|l| l.starts_with(&format!("| `{}` |", m.name)));
        let row = row.unwrap_or_else(|| panic!("{} has no row in the README's table", m.name));
        assert!(row.contains(m.kind.as_str()), "{}: its kind, {}", m.name, m.kind.as_str());
        for label in m.labels {
            assert!(row.contains(&format!("`{label}`")), "{}: its label {label}", m.name);
        }
    }
    // Histogram series names in the README's text are the metric's too.
    let named = names_in(section);
    assert!(named.is_subset(&all), "the README names metrics that do not exist: {:?}", named.difference(&all).collect::<Vec<_>>());

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("src/grafana-dashboard.json")).unwrap()).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let exprs: Vec<&str> =
        panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten()).filter_map(|t| t["expr"].as_str()).collect();
    let used = names_in(&exprs.join("\n"));
    assert!(used.is_subset(&all), "the dashboard queries metrics that do not exist: {:?}", used.difference(&all).collect::<Vec<_>>());
    for name in &all {
        assert!(used.contains(name), "no dashboard panel queries {name}");
    }
    // Histograms are queried through their buckets.
    for m in ALL.iter().filter(|m| m.kind == Kind::Histogram) {
        assert!(exprs.iter().any(|e| e.contains(&format!("{}_bucket", m.name))), "{}: quantiles from its buckets", m.name);
    }
}
