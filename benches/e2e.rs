//! End-to-end delivery benchmark: the real engine, outbox and adapters (teloxide, serenity)
//! against the in-repository fake Telegram and fake Discord, which answer after a simulated round
//! trip and enforce the platforms' rate limits with real 429 answers. N customers × M messages are
//! queued at once; the benchmark reports replies per second, the time from a customer's message to
//! its reply (p50/p99), and lost, duplicated and out-of-order replies, on SQLite and PostgreSQL.
//! Two more scenarios measure fairness: one customer flooding 500 messages in 10 s while others
//! ask questions, and one chat whose sends fail with 5xx, each next to the same run without it.
//!
//! Run: `cargo bench --bench e2e` (everything, about 10 minutes), or choose with environment
//! variables: `E2E_SCENARIOS=telegram,discord,flood,fault`, `E2E_STORES=sqlite,postgres`,
//! `E2E_RTT_MS=50,150`, `E2E_CUSTOMERS=1000`, `E2E_MESSAGES=2`. PostgreSQL is the local test server
//! (`SWITCHBOARD_TEST_PG` overrides it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::engine::{Brain, Engine, EngineConfig};
use switchboard_core::pack::Pack;
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{Content, Inbound};
use switchboard_discord::{Discord, DiscordConfig};
use switchboard_telegram::{Telegram, TelegramConfig};
use switchboard_testkit::discord::{FakeDiscord, FakeUser as DiscordUser, RateLimits};
use switchboard_testkit::telegram::{FakeLimits, FakeTelegram, FakeUser as TelegramUser, Fault};
use tokio::sync::watch;

const TG_TOKEN: &str = "123456789:AAHbench-Token_for_the_fake";

/// FAQ questions customers ask, each answered with one message (none leads to a person: a
/// handoff's reply carries the customer's place in the queue, which depends on the others).
const QUESTIONS: &[(&str, &str)] = &[
    ("my account is locked", "en"),
    ("how do I close my account", "en"),
    ("我的账号被锁了", "zh-hans"),
    ("转账失败了怎么办", "zh-hans"),
    ("my transfer is pending for hours", "en"),
    ("how do I keep my account safe", "en"),
];

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn brain() -> Arc<Brain> {
    let pack = Pack::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents/okpay")).expect("the OKPay pack loads");
    Arc::new(Brain::new(pack))
}

/// What the bot answers, in order, to a customer who asks `questions` (worked out on a memory
/// store, so the benchmark knows what each chat must receive and in which order).
async fn expected(brain: &Arc<Brain>, questions: &[(&str, &str)]) -> Vec<String> {
    let engine = Engine::with_brain(Arc::new(MemoryStore::new()), brain.clone(), EngineConfig::default());
    let mut out = Vec::new();
    for (i, (q, lang)) in questions.iter().enumerate() {
        let handled = engine
            .handle(Inbound {
                channel: "probe".into(),
                conversation: "probe".into(),
                customer_id: "probe".into(),
                customer_name: "Probe".into(),
                content: Content::Text((*q).into()),
                message_id: i.to_string(),
                at: 0,
                lang_hint: Some((*lang).into()),
                deleted: None,
            })
            .await
            .expect("handled");
        out.extend(handled.replies.into_iter().map(|r| r.text));
    }
    out
}

/// The questions customer `c` asks.
fn script(c: usize, messages: usize) -> Vec<(&'static str, &'static str)> {
    (0..messages).map(|k| QUESTIONS[(c + k) % QUESTIONS.len()]).collect()
}

async fn open_store(kind: &str) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match kind {
        "postgres" => {
            let url = switchboard_testkit::store_suite::fresh_postgres().await;
            (Arc::new(SqlStore::connect(&url).await.expect("PostgreSQL")), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("a temporary folder");
            (Arc::new(SqlStore::open_sqlite(dir.path()).await.expect("SQLite")), Some(dir))
        }
    }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        text_limits: [("telegram".to_string(), switchboard_telegram::TEXT_LIMIT), ("discord".to_string(), switchboard_discord::TEXT_LIMIT)]
            .into_iter()
            .collect(),
        ..EngineConfig::default()
    }
}

/// One chat's expected replies and when each question was sent.
struct Chat {
    expected: Vec<String>,
    asked: Vec<Instant>,
}

/// What arrived in one chat: texts and when.
type Arrived = Vec<(String, Instant)>;

#[derive(Debug, Default)]
struct Report {
    replies: usize,
    seconds: f64,
    latencies: Vec<Duration>,
    lost: usize,
    duplicated: usize,
    out_of_order: usize,
}

impl Report {
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.latencies.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i.min(v.len() - 1)]
    }

    fn line(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
            self.replies,
            self.seconds,
            self.replies as f64 / self.seconds.max(1e-9),
            self.pct(0.5).as_millis(),
            self.pct(0.99).as_millis(),
            self.lost,
            self.duplicated,
            self.out_of_order,
        )
    }
}

/// Compares what each chat got with what it should have got: the k-th expected reply's latency is
/// measured from the question that caused it (replies map to questions in order, one each).
fn score(
    chats: &HashMap<String, Chat>,
    arrived: &HashMap<String, Arrived>,
    started: Instant,
    only: Option<&dyn Fn(&str) -> bool>,
) -> Report {
    let mut r = Report::default();
    let mut last = started;
    for (id, chat) in chats {
        if only.is_some_and(|f| !f(id)) {
            continue;
        }
        let got = arrived.get(id).cloned().unwrap_or_default();
        let texts: Vec<&String> = got.iter().map(|(t, _)| t).collect();
        // Duplicates: a text received more often than expected.
        let mut want_count: HashMap<&String, usize> = HashMap::new();
        for t in &chat.expected {
            *want_count.entry(t).or_default() += 1;
        }
        let mut got_count: HashMap<&String, usize> = HashMap::new();
        for t in &texts {
            *got_count.entry(t).or_default() += 1;
        }
        for (t, n) in &got_count {
            r.duplicated += n.saturating_sub(want_count.get(t).copied().unwrap_or(0));
        }
        for (t, n) in &want_count {
            r.lost += n.saturating_sub(got_count.get(t).copied().unwrap_or(0));
        }
        // Order: the received sequence, duplicates removed, must follow the expected one.
        let mut seen: HashMap<&String, usize> = HashMap::new();
        let mut unique = Vec::new();
        for (t, at) in &got {
            let n = seen.entry(t).or_default();
            *n += 1;
            if *n <= want_count.get(t).copied().unwrap_or(0) {
                unique.push((t, *at));
            }
        }
        // The i-th reply should be the i-th expected one, caused by the i-th question.
        for (i, (t, at)) in unique.iter().enumerate() {
            if chat.expected.get(i) != Some(*t) {
                r.out_of_order += 1;
            }
            r.replies += 1;
            r.latencies.push(at.saturating_duration_since(chat.asked[i.min(chat.asked.len().saturating_sub(1))]));
            last = last.max(*at);
        }
    }
    r.seconds = last.saturating_duration_since(started).as_secs_f64();
    r
}

async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !done() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Telegram run: `customers` × `messages`, an optional flooder, an optional failing chat.
struct TgRun {
    store: String,
    rtt: Duration,
    customers: usize,
    messages: usize,
    /// Others ask over this long (0: all at once).
    spread: Duration,
    flood: usize,
    failing_chat: bool,
}

async fn telegram(brain: &Arc<Brain>, run: &TgRun) -> (Report, Report) {
    let fake = FakeTelegram::start(TG_TOKEN).await.expect("the fake Telegram starts");
    fake.set_latency(run.rtt);
    fake.set_limits(Some(FakeLimits::telegram()));
    let (store, _dir) = open_store(&run.store).await;
    let engine = Engine::with_brain(store, brain.clone(), engine_config());
    let config = TelegramConfig { staff_chat_id: None, api_url: Some(fake.api_url()), poll_timeout_secs: 5, webhook_url: None };
    let tg = Telegram::connect(engine.clone(), TG_TOKEN, config).await.expect("the adapter connects");
    let (stop, rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let tasks = [
        tokio::spawn(Arc::clone(&tg).run_polling(stopped())),
        tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(200), stopped())),
    ];

    let mut chats: HashMap<String, Chat> = HashMap::new();
    let mut plan = Vec::new();
    for c in 0..run.customers {
        let s = script(c, run.messages);
        let id = 10_000 + c as i64;
        chats.insert(id.to_string(), Chat { expected: expected(brain, &s).await, asked: Vec::new() });
        plan.push((id, s));
    }
    let flooder = 9_999i64;
    if run.flood > 0 {
        let s: Vec<_> = (0..run.flood).map(|k| QUESTIONS[k % QUESTIONS.len()]).collect();
        chats.insert(flooder.to_string(), Chat { expected: expected(brain, &s).await, asked: Vec::new() });
    }
    if run.failing_chat {
        // The first customer's sends fail with 500 twice (teloxide also waits 10 s on each).
        fake.state().fail("sendMessage", Some(10_000), Fault::ServerError, 2);
    }
    let started = Instant::now();
    let state = fake.state().clone();
    let flood = run.flood;
    let flood_task = tokio::spawn({
        let state = state.clone();
        async move {
            let mut asked = Vec::new();
            let user = TelegramUser::new(flooder, "Flood").lang("en");
            for k in 0..flood {
                let (q, _) = QUESTIONS[k % QUESTIONS.len()];
                state.push_text(&user, q);
                asked.push(Instant::now());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            asked
        }
    });
    let step = if run.customers > 0 { run.spread / run.customers as u32 } else { Duration::ZERO };
    for (id, s) in &plan {
        for (q, lang) in s {
            let user = TelegramUser::new(*id, "Customer").lang(lang);
            state.push_text(&user, q);
            chats.get_mut(&id.to_string()).expect("planned").asked.push(Instant::now());
        }
        if !step.is_zero() {
            tokio::time::sleep(step).await;
        }
    }
    if let Some(c) = chats.get_mut(&flooder.to_string()) {
        c.asked = flood_task.await.expect("the flood ran");
    }
    let others: usize = plan.iter().map(|(id, _)| chats[&id.to_string()].expected.len()).sum();
    let timeout = Duration::from_secs(60 + (others as u64) / 10);
    let fake2 = fake.clone();
    let plan_ids: Vec<i64> = plan.iter().map(|(id, _)| *id).collect();
    let want: HashMap<i64, usize> = plan.iter().map(|(id, _)| (*id, chats[&id.to_string()].expected.len())).collect();
    wait_until(timeout, || plan_ids.iter().all(|id| fake2.sent_to(*id).len() >= want[id])).await;
    // A moment for duplicates to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut arrived: HashMap<String, Arrived> = HashMap::new();
    for s in fake.sent() {
        arrived.entry(s.chat_id.to_string()).or_default().push((s.text.clone(), s.at));
    }
    let _ = stop.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let flooder_id = flooder.to_string();
    if run.flood > 0 {
        // The flooder is held to their limit: a burst answered, told once to slow down, the rest kept.
        let got = arrived.get(&flooder_id).map_or(0, Vec::len);
        println!("<!-- flooder ({}): {} messages sent, {got} replies received -->", run.store, run.flood);
    }
    let failing = "10000".to_string();
    let not_special = move |id: &str| id != flooder_id && id != failing;
    let all = score(&chats, &arrived, started, Some(&|id: &str| id != flooder.to_string()));
    let others = score(&chats, &arrived, started, Some(&not_special));
    (all, others)
}

struct DcRun {
    store: String,
    rtt: Duration,
    customers: usize,
    messages: usize,
}

async fn discord(brain: &Arc<Brain>, run: &DcRun) -> Report {
    let (stop, rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let fake = FakeDiscord::bind(stopped()).await.expect("the fake Discord starts");
    fake.set_latency(run.rtt);
    fake.set_rate_limits(Some(RateLimits::DISCORD));
    let (store, _dir) = open_store(&run.store).await;
    let engine = Engine::with_brain(store, brain.clone(), engine_config());
    let config = DiscordConfig {
        staff_channel_id: None,
        staff_role_id: None,
        support_channel_ids: Vec::new(),
        staff_guild_id: None,
        api_url: Some(fake.url()),
    };
    let discord = Discord::connect(engine.clone(), switchboard_testkit::discord::TOKEN, config).await.expect("the adapter connects");
    let mut tasks = discord.spawn(stopped()).expect("the adapter starts");
    tasks.push(tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(200), stopped())));
    let f = fake.clone();
    wait_until(Duration::from_secs(30), || f.gateway_stats().live).await;

    let mut chats: HashMap<String, Chat> = HashMap::new();
    let mut plan = Vec::new();
    for c in 0..run.customers {
        let user = DiscordUser::new(500_000_000_000_000_000 + c as u64, "Customer");
        let dm = fake.dm_channel(&user);
        let s = script(c, run.messages);
        chats.insert(dm.to_string(), Chat { expected: expected(brain, &s).await, asked: Vec::new() });
        plan.push((user, dm, s));
    }
    let started = Instant::now();
    for (user, dm, s) in &plan {
        for (q, _) in s {
            fake.dm(user, q);
            chats.get_mut(&dm.to_string()).expect("planned").asked.push(Instant::now());
        }
    }
    let total: usize = chats.values().map(|c| c.expected.len()).sum();
    let f = fake.clone();
    let dms: Vec<u64> = plan.iter().map(|(_, dm, _)| *dm).collect();
    wait_until(Duration::from_secs(60 + total as u64 / 10), || dms.iter().map(|dm| f.posts(*dm).len()).sum::<usize>() >= total).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut arrived: HashMap<String, Arrived> = HashMap::new();
    for dm in &dms {
        for p in fake.posts(*dm) {
            arrived.entry(dm.to_string()).or_default().push((p.text(), p.at));
        }
    }
    let _ = stop.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    score(&chats, &arrived, started, None)
}

const HEADER: &str =
    "| run | replies | seconds | replies/s | p50 ms | p99 ms | lost | duplicated | out of order |\n|---|---|---|---|---|---|---|---|---|";

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let scenarios = env_list("E2E_SCENARIOS", "telegram,discord,flood,fault");
    let stores = env_list("E2E_STORES", "sqlite,postgres");
    let rtts: Vec<Duration> = env_list("E2E_RTT_MS", "150").iter().filter_map(|s| s.parse().ok()).map(Duration::from_millis).collect();
    let customers = env_num("E2E_CUSTOMERS", 1000);
    let messages = env_num("E2E_MESSAGES", 2);
    rt.block_on(async {
        let brain = brain();
        println!("{HEADER}");
        for store in &stores {
            for rtt in &rtts {
                let ms = rtt.as_millis();
                if scenarios.iter().any(|s| s == "telegram") {
                    let run = TgRun {
                        store: store.clone(),
                        rtt: *rtt,
                        customers,
                        messages,
                        spread: Duration::ZERO,
                        flood: 0,
                        failing_chat: false,
                    };
                    let (all, _) = telegram(&brain, &run).await;
                    println!("{}", all.line(&format!("telegram {customers}×{messages}, {ms} ms, {store}")));
                }
                if scenarios.iter().any(|s| s == "discord") {
                    let run = DcRun { store: store.clone(), rtt: *rtt, customers, messages };
                    let r = discord(&brain, &run).await;
                    println!("{}", r.line(&format!("discord {customers}×{messages}, {ms} ms, {store}")));
                }
                if scenarios.iter().any(|s| s == "flood") {
                    for flood in [0, 500] {
                        let run = TgRun {
                            store: store.clone(),
                            rtt: *rtt,
                            customers: 50,
                            messages: 2,
                            spread: Duration::from_secs(10),
                            flood,
                            failing_chat: false,
                        };
                        let (_, others) = telegram(&brain, &run).await;
                        let what = if flood > 0 { "with one customer's 500-message flood" } else { "without a flood" };
                        println!("{}", others.line(&format!("telegram 50 others × 2 over 10 s {what}, {ms} ms, {store}")));
                    }
                }
                if scenarios.iter().any(|s| s == "fault") {
                    for failing_chat in [false, true] {
                        let run = TgRun {
                            store: store.clone(),
                            rtt: *rtt,
                            customers: 100,
                            messages: 2,
                            spread: Duration::from_secs(5),
                            flood: 0,
                            failing_chat,
                        };
                        let (_, others) = telegram(&brain, &run).await;
                        let what = if failing_chat { "one chat answered 500 twice" } else { "no failing chat" };
                        println!("{}", others.line(&format!("telegram 99 others × 2 over 5 s, {what}, {ms} ms, {store}")));
                    }
                }
            }
        }
    });
}
