//! Web chat load benchmark (issue 16): N widget sessions open at once on one server process, each
//! asking FAQ questions over the chat's WebSocket (`/chat/ws`), at an aggregate pace. Reports
//! replies per second, the time from sending a `send` frame to the bot's `line` (p50/p90/p99/max),
//! messages lost (no `ack` or no bot line), `error` frames, replies that differ from what the
//! engine answers the same script on its own, and the server's memory per open session.
//!
//! The server is this process, built as `switchboard run` builds it: an `Engine` over SQLite (WAL
//! file in a temporary folder), `Web::start`, `axum::serve` on 127.0.0.1:0 and the outbox, on one
//! multi-thread tokio runtime (one worker per core). The clients are this same binary started
//! again as a child process (`WEB_BENCH_ROLE=clients`) with a one-worker runtime, so that the
//! server's resident memory holds no client socket; the clients still share the machine's cores
//! with the server, and the table shows how much CPU each side used.
//!
//! Each session says hello, waits for `welcome`, then sends a question, waits for its `ack` (the
//! bot's line comes before it), then waits a random think time (uniform in 0.75–1.25 × sessions /
//! rate) counted from the previous send, so the offered load is about `WEB_RATE` messages a
//! second. Warm-up first, then the measured window, then the sessions stop asking and the last
//! answers are awaited.
//!
//! Run: `cargo bench --bench web`. Knobs: `WEB_SESSIONS=1000`, `WEB_RATE=600` (messages a second,
//! all sessions together), `WEB_SECONDS=20` (measured), `WEB_WARMUP=5` (seconds before it);
//! experiments: `WEB_NODELAY=1` (TCP_NODELAY on the server's sockets), `WEB_CLIENT_READ_BUFFER=8192`
//! (the clients' tungstenite read buffer, in bytes).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_core::engine::{Engine, EngineConfig};
use switchboard_core::guard::CustomerLimit;
use switchboard_core::pack::Pack;
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{Content, Inbound, now_ms};
use switchboard_web::{Web, WebConfig};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Set in the child process that plays the browsers.
const ROLE_ENV: &str = "WEB_BENCH_ROLE";
/// The chat socket's address, for the child.
const URL_ENV: &str = "WEB_BENCH_URL";

/// FAQ questions visitors ask, each answered by the bot with one line and none leading to a person
/// (a handoff opens a ticket, and its reply depends on the queue). English-speaking visitors ask
/// the first list, Chinese-speaking ones (one in three) the second; checked at start.
const QUESTIONS_EN: &[&str] = &[
    "my account is locked",
    "my transfer is pending for hours",
    "transfer failed, what do I do",
    "how do I close my account",
    "how do I keep my account safe",
    "I never got the password reset email",
];
const QUESTIONS_ZH: &[&str] =
    &["我的账号被锁了", "转账一直在处理中", "转账失败了怎么办", "怎么注销账户", "怎么设置两步验证", "收不到重置密码的邮件"];

/// The longest script the replies are checked against (a session asks fewer at the default pace).
const PROBE_MESSAGES: usize = 64;
/// How long a sent message may wait for its answer before it counts as lost.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|v: &f64| *v > 0.0).unwrap_or(default)
}

/// The run's settings, from the environment.
#[derive(Debug, Clone, Copy)]
struct Knobs {
    sessions: usize,
    rate: f64,
    seconds: f64,
    warmup: f64,
}

impl Knobs {
    fn read() -> Knobs {
        Knobs {
            sessions: env_num("WEB_SESSIONS", 1000.0) as usize,
            rate: env_num("WEB_RATE", 600.0),
            seconds: env_num("WEB_SECONDS", 20.0),
            warmup: env_num("WEB_WARMUP", 5.0),
        }
    }

    /// The mean time between one session's messages.
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.sessions as f64 / self.rate)
    }

    /// The messages one session is expected to send in a run.
    fn mean_per_session(&self) -> f64 {
        (self.warmup + self.seconds) / self.interval().as_secs_f64()
    }
}

/// Whether a token bucket of `burst` filled at `per_minute` admits every message of a session: the
/// k-th is sent no earlier than k − 1 mean intervals less four standard deviations of their sum
/// (think times are uniform in 0.75–1.25 × the interval: σ = 0.144 × the interval each), which
/// is where the bucket must still hold a token for it.
fn bucket_admits(burst: u32, per_minute: u32, knobs: &Knobs) -> bool {
    let span = knobs.warmup + knobs.seconds;
    let t = knobs.interval().as_secs_f64();
    (1..)
        .map(|k: u32| (k, (f64::from(k - 1) * t - 4.0 * f64::from(k - 1).sqrt() * 0.144 * t).max(0.0)))
        .take_while(|(_, at)| *at < span)
        .all(|(k, at)| f64::from(k) <= f64::from(burst) + f64::from(per_minute) / 60.0 * at)
}

/// A small, seedable random source (think times, first sends).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What session `c` asks and in which language.
fn script(c: usize) -> (&'static [&'static str], &'static str, usize) {
    if c % 3 == 2 { (QUESTIONS_ZH, "zh-CN", c / 3) } else { (QUESTIONS_EN, "en", c / 3) }
}

/// The resident memory of process `pid` ("self" for this one), in KiB.
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

/// CPU seconds used so far by each kind of thread of process `pid` (names without their numbers:
/// `tokio-runtime-w`, `sqlx-sqlite-wor`, …).
fn cpu_by_thread(pid: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let name = name.trim().trim_end_matches(|c: char| c.is_ascii_digit() || c == '-').to_string();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the name in parentheses: utime and stime are the 12th and 13th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        *out.entry(name).or_insert(0.0) += ticks / 100.0;
    }
    out
}

fn cpu_delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0))).collect()
}

fn main() {
    if std::env::var(ROLE_ENV).is_ok_and(|r| r == "clients") {
        clients();
    } else {
        server();
    }
}

// ------------------------------------------------------------------------------------------------
// The server process: starts the chat as `switchboard run` does, drives the clients, prints.

fn server() {
    let knobs = Knobs::read();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let pack_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents/okpay");

    // The engine's flood limit and the chat's per-visitor limit stay at their defaults when one
    // session's messages fit them; otherwise they are raised (and the table says so).
    let mut notes = Vec::new();
    let mut config = EngineConfig::default();
    let limit = config.customer_limit;
    if !bucket_admits(limit.burst, limit.per_minute, &knobs) {
        let per_minute = (knobs.rate / knobs.sessions as f64 * 60.0 * 2.0).ceil() as u32;
        config.customer_limit = CustomerLimit { burst: limit.burst, per_minute };
        notes.push(format!(
            "the engine's customer_limit was raised from {}/minute to {per_minute}/minute (burst {}): one session sends about {:.0} messages in {:.0} s",
            limit.per_minute,
            limit.burst,
            knobs.mean_per_session(),
            knobs.warmup + knobs.seconds
        ));
    }
    let mut web_config = WebConfig::default();
    if !bucket_admits(web_config.burst, web_config.messages_per_minute, &knobs) {
        let per_minute = (knobs.rate / knobs.sessions as f64 * 60.0 * 2.0).ceil() as u32;
        notes.push(format!("web.messages_per_minute was raised from {} to {per_minute}", web_config.messages_per_minute));
        web_config.messages_per_minute = per_minute;
    }

    // As `switchboard run` serves (Nagle's algorithm on); `WEB_NODELAY=1` sets TCP_NODELAY on the
    // server's sockets, to compare.
    let nodelay = std::env::var("WEB_NODELAY").is_ok_and(|v| v == "1");
    if nodelay {
        notes.push("WEB_NODELAY=1: the server's sockets have TCP_NODELAY (`switchboard run` does not set it)".into());
    }
    if let Some(size) = client_read_buffer() {
        notes.push(format!("WEB_CLIENT_READ_BUFFER={size}: the clients' tungstenite read buffer is {size} bytes (default 128 KiB)"));
    }
    let (stop, shutdown) = watch::channel(false);
    let stopped = |rx: &watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let (addr, tasks) = rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.expect("SQLite"));
        let pack = Pack::load(&pack_dir).expect("the OKPay pack loads");
        let engine = Engine::new(store, pack, config);
        let web = Web::start(engine.clone(), web_config, None, shutdown.clone()).await.expect("the web channel starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("its address");
        let app = web.router();
        let serve = tokio::spawn({
            let stopped = stopped(&shutdown);
            async move {
                let served = if nodelay {
                    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                        let _ = tcp.set_nodelay(true);
                    });
                    axum::serve(listener, app).with_graceful_shutdown(stopped).await
                } else {
                    axum::serve(listener, app).with_graceful_shutdown(stopped).await
                };
                if let Err(e) = served {
                    eprintln!("the HTTP server failed: {e}");
                }
            }
        });
        let outbox = tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_secs(1), stopped(&shutdown)));
        (addr, vec![serve, outbox])
    });

    let exe = std::env::current_exe().expect("this benchmark's path");
    let mut child = Command::new(exe)
        .env(ROLE_ENV, "clients")
        .env(URL_ENV, format!("ws://{addr}/chat/ws"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the clients' process starts");
    let child_pid = child.id().to_string();
    let mut to_child = child.stdin.take().expect("its stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    let mut say = |what: &str| {
        writeln!(to_child, "{what}").expect("the clients listen");
        to_child.flush().expect("the clients listen");
    };
    let mut expect = |prefix: &str| -> String {
        loop {
            let line = from_child.next().expect("the clients' process ended early (see its error above)").expect("readable");
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
            eprintln!("clients: {line}");
        }
    };

    // A few sessions first, so the store's connections and the runtime's buffers exist before
    // the memory is read.
    say("warm");
    expect("warmed");
    std::thread::sleep(Duration::from_secs(1));
    let server_before = rss_kib("self");
    let clients_before = rss_kib(&child_pid);
    say("open");
    let opened: Value = serde_json::from_str(&expect("opened")).expect("json");
    std::thread::sleep(Duration::from_secs(2));
    let server_open = rss_kib("self");
    let clients_open = rss_kib(&child_pid);

    say("go");
    expect("window-start");
    let (cpu_s0, cpu_c0, t0) = (cpu_by_thread("self"), cpu_by_thread(&child_pid), Instant::now());
    expect("window-end");
    let (cpu_s1, cpu_c1, window) = (cpu_by_thread("self"), cpu_by_thread(&child_pid), t0.elapsed().as_secs_f64());
    let result: Value = serde_json::from_str(&expect("result")).expect("json");
    std::thread::sleep(Duration::from_secs(2));
    let server_after = rss_kib("self");
    say("close");
    expect("closed");
    let status = child.wait().expect("the clients exit");

    let _ = stop.send(true);
    rt.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(dir);

    report(&knobs, cores, &notes, &opened, &result, Memory { server_before, server_open, server_after, clients_before, clients_open });
    let cpu_s = cpu_delta(&cpu_s0, &cpu_s1);
    let cpu_c = cpu_delta(&cpu_c0, &cpu_c1);
    println!();
    println!("CPU used during the measured window ({window:.1} s; {cores} cores = {:.1} CPU-seconds available):", window * cores as f64);
    println!();
    println!("| process | thread | CPU seconds | cores busy |");
    println!("|---|---|---|---|");
    for (who, cpu) in [("server", &cpu_s), ("clients", &cpu_c)] {
        for (name, secs) in cpu.iter().filter(|(_, s)| **s > 0.0) {
            println!("| {who} | {name} | {secs:.2} | {:.2} |", secs / window);
        }
        let total: f64 = cpu.values().sum();
        println!("| {who} | **all** | {total:.2} | {:.2} |", total / window);
    }
    if !status.success() {
        eprintln!("the clients' process exited with {status}");
        std::process::exit(1);
    }
}

struct Memory {
    server_before: u64,
    server_open: u64,
    server_after: u64,
    clients_before: u64,
    clients_open: u64,
}

fn report(knobs: &Knobs, cores: usize, notes: &[String], opened: &Value, r: &Value, m: Memory) {
    let n = knobs.sessions as f64;
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let per = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / n;
    println!("# Web chat under load");
    println!();
    println!(
        "{} sessions, offered {:.0} messages/s (one every {:.2} s per session, think time uniform 0.75–1.25×), {:.0} s warm-up, {:.0} s measured; \
         {cores} cores (std::thread::available_parallelism); server: one tokio runtime with {cores} workers, SQLite in WAL mode; \
         clients: a child process with a one-worker tokio runtime, on the same cores",
        knobs.sessions,
        knobs.rate,
        knobs.interval().as_secs_f64(),
        knobs.warmup,
        knobs.seconds
    );
    for note in notes {
        println!("NOTE: {note}");
    }
    if notes.is_empty() {
        println!(
            "Limits at their defaults (engine customer_limit burst 10, 20/minute; web burst 20, 60/minute): a session sends about {:.0} messages in {:.0} s, within both",
            knobs.mean_per_session(),
            knobs.warmup + knobs.seconds,
        );
    }
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| sessions open | {} (connect + hello + welcome: {:.1} s for all) |", num(opened, "open"), num(opened, "seconds"));
    println!("| messages sent (whole run) | {} |", num(r, "sent"));
    println!("| sent in the measured window | {} ({:.1}/s offered) |", num(r, "window_sent"), num(r, "window_sent") / knobs.seconds);
    println!("| **bot replies/s** (replies received in the window / its length) | **{:.1}** |", num(r, "window_replies") / knobs.seconds);
    println!(
        "| **latency send → bot line, ms** (messages sent in the window) | p50 **{:.1}**, p90 {:.1}, p99 **{:.1}**, max {:.1} |",
        num(r, "p50_ms"),
        num(r, "p90_ms"),
        num(r, "p99_ms"),
        num(r, "max_ms")
    );
    println!("| latency send → ack, ms | p50 {:.1}, p99 {:.1} |", num(r, "ack_p50_ms"), num(r, "ack_p99_ms"));
    println!("| lost (no ack or no bot line within {} s) | {} |", ANSWER_WITHIN.as_secs(), num(r, "lost"));
    println!("| error frames | {} {} |", num(r, "errors"), r.get("error_codes").map(Value::to_string).unwrap_or_default());
    println!("| replies other than the engine's own answer to the same script | {} |", num(r, "wrong"));
    println!(
        "| **server memory per open idle session** ((RSS with {} open − before) / {}) | **{:.1} KiB** ({} → {} KiB) |",
        knobs.sessions,
        knobs.sessions,
        per(m.server_open, m.server_before),
        m.server_before,
        m.server_open
    );
    println!(
        "| server memory per open session after the load (each has a conversation; allocator high-water included) | {:.1} KiB ({} KiB) |",
        per(m.server_after, m.server_before),
        m.server_after
    );
    println!(
        "| client memory per session (tokio-tungstenite, the child process; not in the figure above) | {:.1} KiB ({} → {} KiB) |",
        per(m.clients_open, m.clients_before),
        m.clients_before,
        m.clients_open
    );
}

// ------------------------------------------------------------------------------------------------
// The clients' process: plays the browsers, on commands from the server process's stdin.

/// One message's fate.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When it was sent, from `go`.
    sent: Duration,
    /// Send → first bot line.
    reply: Option<Duration>,
    /// When the first bot line came, from `go`.
    replied: Option<Duration>,
    /// Send → ack.
    ack: Option<Duration>,
    /// An error frame came instead.
    error: Option<&'static str>,
    /// The bot's lines differ from the engine's answer to the same script.
    wrong: bool,
}

/// What the engine answers each script (by language group and rotation), message by message.
type Expected = Arc<BTreeMap<(&'static str, usize), Vec<Vec<String>>>>;

/// The phases the sessions are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Go(Instant),
    Close,
}

fn clients() {
    let knobs = Knobs::read();
    let url = std::env::var(URL_ENV).expect("the server's address");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
    let expected = rt.block_on(expected_answers());
    let (phase_tx, phase) = watch::channel(Phase::Idle);
    let (done_tx, mut done) = mpsc::unbounded_channel::<(usize, Vec<Sample>)>();
    let mut out = std::io::stdout();
    let mut reply = |line: String| {
        writeln!(out, "{line}").expect("the server listens");
        out.flush().expect("the server listens");
    };
    let mut handles = Vec::new();
    let stdin = std::io::stdin();
    for command in stdin.lock().lines() {
        let command = command.expect("readable");
        match command.trim() {
            "warm" => {
                rt.block_on(warm(&url));
                reply("warmed".into());
            }
            "open" => {
                let started = Instant::now();
                let gate = Arc::new(Semaphore::new(64));
                let (open_tx, mut open_rx) = mpsc::unbounded_channel::<bool>();
                for c in 0..knobs.sessions {
                    let (url, phase, done, gate, open_tx, expected) =
                        (url.clone(), phase.clone(), done_tx.clone(), gate.clone(), open_tx.clone(), expected.clone());
                    handles.push(rt.spawn(async move {
                        let permit = gate.acquire_owned().await.expect("open");
                        let ws = hello(&url, script(c).1).await;
                        drop(permit);
                        let _ = open_tx.send(ws.is_some());
                        drop(open_tx);
                        if let Some(ws) = ws {
                            session(c, ws, phase, done, knobs, expected).await;
                        }
                    }));
                }
                drop(open_tx);
                let open = rt.block_on(async {
                    let mut open = 0;
                    while let Some(ok) = open_rx.recv().await {
                        open += usize::from(ok);
                    }
                    open
                });
                reply(format!("opened {}", json!({"open": open, "seconds": started.elapsed().as_secs_f64()})));
            }
            "go" => {
                let go = Instant::now();
                let _ = phase_tx.send(Phase::Go(go));
                let window_start = go + Duration::from_secs_f64(knobs.warmup);
                let window_end = window_start + Duration::from_secs_f64(knobs.seconds);
                rt.block_on(async { tokio::time::sleep_until(window_start.into()).await });
                reply("window-start".into());
                rt.block_on(async { tokio::time::sleep_until(window_end.into()).await });
                reply("window-end".into());
                // Every session reports once its last message is answered (or given up on).
                let mut all = Vec::new();
                let mut reported = 0;
                rt.block_on(async {
                    while reported < knobs.sessions.min(handles.len()) {
                        match tokio::time::timeout(ANSWER_WITHIN * 2, done.recv()).await {
                            Ok(Some((_, samples))) => {
                                all.extend(samples);
                                reported += 1;
                            }
                            _ => break,
                        }
                    }
                });
                reply(format!("result {}", summarize(&knobs, &all, reported)));
            }
            "close" => {
                let _ = phase_tx.send(Phase::Close);
                rt.block_on(async {
                    for h in handles.drain(..) {
                        let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
                    }
                });
                reply("closed".into());
                break;
            }
            other => eprintln!("clients: unknown command {other:?}"),
        }
    }
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// `WEB_CLIENT_READ_BUFFER`: the clients' read buffer size, in bytes (tungstenite's default, 128
/// KiB, otherwise).
fn client_read_buffer() -> Option<usize> {
    std::env::var("WEB_CLIENT_READ_BUFFER").ok().and_then(|v| v.parse().ok()).filter(|v| *v > 0)
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a chat and says hello; the socket once welcomed.
async fn hello(url: &str, lang: &str) -> Option<Socket> {
    // Browsers set TCP_NODELAY on their sockets.
    let config = client_read_buffer().map(|size| WebSocketConfig::default().read_buffer_size(size));
    let (mut ws, _) = match tokio_tungstenite::connect_async_with_config(url, config, true).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("clients: cannot connect: {e}");
            return None;
        }
    };
    let hello = json!({"type": "hello", "token": null, "after": 0, "lang": lang}).to_string();
    ws.send(Message::text(hello)).await.ok()?;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.ok()??.ok()?;
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(t.as_str()).ok()?;
            if v["type"] == "welcome" {
                return Some(ws);
            }
            eprintln!("clients: before welcome: {v}");
            return None;
        }
    }
}

/// A few sessions asking once each, then closing: the server's first connections, store
/// connections and buffers exist before its memory is measured.
async fn warm(url: &str) {
    let mut tasks = Vec::new();
    for c in 0..16 {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let (questions, lang, _) = script(c);
            if let Some(mut ws) = hello(&url, lang).await {
                let _ = ask(&mut ws, "warm", questions[c % questions.len()], None).await;
                let _ = ws.close(None).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// What came back for one message.
struct Answer {
    bot_lines: Vec<(String, Instant)>,
    acked: Option<Instant>,
    error: Option<&'static str>,
}

/// Sends one question and reads until its ack (the page's lines, the bot's among them, come
/// before it) or an error for it.
async fn ask(ws: &mut Socket, id: &str, text: &str, deadline: Option<Instant>) -> Result<Answer, ()> {
    let frame = json!({"type": "send", "id": id, "text": text}).to_string();
    ws.send(Message::text(frame)).await.map_err(|_| ())?;
    let deadline = deadline.unwrap_or_else(|| Instant::now() + ANSWER_WITHIN);
    let mut answer = Answer { bot_lines: Vec::new(), acked: None, error: None };
    loop {
        let Ok(frame) = tokio::time::timeout_at(deadline.into(), ws.next()).await else { return Ok(answer) };
        let Some(Ok(frame)) = frame else { return Err(()) };
        let now = Instant::now();
        let Message::Text(t) = frame else { continue };
        let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
        match v["type"].as_str() {
            Some("line") if v["from"] == "bot" => answer.bot_lines.push((v["text"].as_str().unwrap_or_default().to_string(), now)),
            Some("ack") if v["id"] == id => {
                answer.acked = Some(now);
                return Ok(answer);
            }
            Some("error") => {
                let code = match v["code"].as_str() {
                    Some("rate_limited") => "rate_limited",
                    Some("unavailable") => "unavailable",
                    Some("refused") => "refused",
                    Some("too_long") => "too_long",
                    Some("bad_frame") => "bad_frame",
                    _ => "other",
                };
                answer.error = Some(code);
                if v["id"] == id || v["id"].is_null() {
                    return Ok(answer);
                }
            }
            _ => {}
        }
    }
}

/// One session: idle until `go`, asks at its pace until the window ends, reports, idles until
/// `close`.
async fn session(
    c: usize,
    mut ws: Socket,
    mut phase: watch::Receiver<Phase>,
    done: mpsc::UnboundedSender<(usize, Vec<Sample>)>,
    knobs: Knobs,
    expected: Expected,
) {
    let Ok(Phase::Go(go)) = phase.wait_for(|p| *p != Phase::Idle).await.map(|p| *p) else {
        let _ = ws.close(None).await;
        return;
    };
    let (questions, lang, _) = script(c);
    let rotation = c % questions.len();
    let want = expected.get(&(lang, rotation));
    let mut rng = SplitMix(c as u64 * 7919 + 17);
    let interval = knobs.interval().as_secs_f64();
    let stop_asking = go + Duration::from_secs_f64(knobs.warmup + knobs.seconds);
    let mut next = go + Duration::from_secs_f64(rng.next() * interval);
    let mut samples = Vec::new();
    let mut alive = true;
    let mut k = 0;
    while next < stop_asking {
        tokio::time::sleep_until(next.into()).await;
        let sent = Instant::now();
        let text = questions[(rotation + k) % questions.len()];
        let Ok(answer) = ask(&mut ws, &format!("s{c}m{k}"), text, None).await else {
            samples.push(Sample { sent: sent - go, reply: None, replied: None, ack: None, error: Some("socket closed"), wrong: false });
            alive = false;
            break;
        };
        let texts: Vec<&String> = answer.bot_lines.iter().map(|(t, _)| t).collect();
        let wrong = want.and_then(|w| w.get(k)).is_some_and(|w| w.iter().collect::<Vec<_>>() != texts) && answer.error.is_none();
        if wrong && c < 3 {
            eprintln!("clients: session {c} message {k}: got {texts:?}, expected {:?}", want.and_then(|w| w.get(k)));
        }
        let first = answer.bot_lines.first().map(|(_, at)| *at);
        samples.push(Sample {
            sent: sent - go,
            reply: first.map(|at| at - sent),
            replied: first.map(|at| at - go),
            ack: answer.acked.map(|at| at - sent),
            error: answer.error,
            wrong,
        });
        k += 1;
        next = (sent + Duration::from_secs_f64(interval * (0.75 + 0.5 * rng.next()))).max(Instant::now());
    }
    let _ = done.send((c, samples));
    if alive {
        let _ = phase.wait_for(|p| *p == Phase::Close).await;
        let _ = ws.close(None).await;
        // Read until the server's close answer, so both sides end cleanly.
        let _ = tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = ws.next().await {} }).await;
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn summarize(knobs: &Knobs, all: &[Sample], reported: usize) -> Value {
    let start = Duration::from_secs_f64(knobs.warmup);
    let end = start + Duration::from_secs_f64(knobs.seconds);
    let in_window = |d: Duration| d >= start && d < end;
    let mut latencies: Vec<Duration> = all.iter().filter(|s| in_window(s.sent)).filter_map(|s| s.reply).collect();
    latencies.sort();
    let mut acks: Vec<Duration> = all.iter().filter(|s| in_window(s.sent)).filter_map(|s| s.ack).collect();
    acks.sort();
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for s in all {
        if let Some(e) = s.error {
            *codes.entry(e).or_default() += 1;
        }
    }
    json!({
        "sessions_reported": reported,
        "sent": all.len(),
        "window_sent": all.iter().filter(|s| in_window(s.sent)).count(),
        "window_replies": all.iter().filter(|s| s.replied.is_some_and(in_window)).count(),
        "replies": all.iter().filter(|s| s.reply.is_some()).count(),
        "lost": all.iter().filter(|s| s.reply.is_none() || s.ack.is_none()).count(),
        "errors": all.iter().filter(|s| s.error.is_some()).count(),
        "error_codes": codes,
        "wrong": all.iter().filter(|s| s.wrong).count(),
        "p50_ms": pct(&latencies, 0.50),
        "p90_ms": pct(&latencies, 0.90),
        "p99_ms": pct(&latencies, 0.99),
        "max_ms": latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        "ack_p50_ms": pct(&acks, 0.50),
        "ack_p99_ms": pct(&acks, 0.99),
    })
}

/// What the engine answers each session's script on its own (a memory store, no flood limit):
/// the bot lines of every message. Also checks that no question hands off to a person.
async fn expected_answers() -> Expected {
    let pack = Pack::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents/okpay")).expect("the OKPay pack loads");
    let config = EngineConfig { customer_limit: CustomerLimit { burst: 0, per_minute: 0 }, ..EngineConfig::default() };
    let engine = Engine::new(Arc::new(MemoryStore::new()), pack, config);
    let mut out = BTreeMap::new();
    for (questions, lang) in [(QUESTIONS_EN, "en"), (QUESTIONS_ZH, "zh-CN")] {
        for rotation in 0..questions.len() {
            let chat = format!("probe-{lang}-{rotation}");
            let mut answers = Vec::new();
            for k in 0..PROBE_MESSAGES {
                let text = questions[(rotation + k) % questions.len()];
                let handled = engine
                    .handle(Inbound {
                        channel: "probe".into(),
                        conversation: chat.clone(),
                        customer_id: chat.clone(),
                        customer_name: "Probe".into(),
                        content: Content::Text(text.into()),
                        message_id: format!("{chat}:{k}"),
                        at: now_ms(),
                        lang_hint: Some(lang.into()),
                        deleted: None,
                    })
                    .await
                    .expect("handled");
                assert!(handled.ticket_id.is_none(), "{text:?} hands off to a person: choose another question");
                assert!(handled.replies.len() == 1, "{text:?} is answered with {} lines, not one", handled.replies.len());
                answers.push(handled.replies.into_iter().map(|r| r.text).collect());
            }
            out.insert((lang, rotation), answers);
        }
    }
    Arc::new(out)
}
