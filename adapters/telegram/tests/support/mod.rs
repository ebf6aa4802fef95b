//! The end-to-end harness: the real engine (SQLite in a temporary directory, the shipped OKPay
//! pack) and the real adapter, long-polling a fake Bot API server on 127.0.0.1, with the outbox
//! running as in `switchboard run`. A restart builds a new engine and adapter over the same
//! database file and the same fake server.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::Lang;
use switchboard_core::engine::{DeliveryConfig, Engine, EngineConfig, RetryPolicy};
use switchboard_core::pack::Pack;
use switchboard_core::store::{SqlStore, Store};
use switchboard_core::types::{Ticket, TicketEvent, TicketStatus};
use switchboard_telegram::{Telegram, TelegramConfig};
use switchboard_testkit::telegram::{FakeTelegram, FakeUser, Sent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "123456789:AAHfake-Token_for_tests";
pub const STAFF: i64 = -1_001_234_567_890;
pub const AGENT_ID: i64 = 9001;
pub const NON_AGENT_ID: i64 = 9002;

pub fn agent() -> FakeUser {
    FakeUser::new(AGENT_ID, "Alice")
}

pub fn non_agent() -> FakeUser {
    FakeUser::new(NON_AGENT_ID, "Mallory")
}

pub fn zh_customer(id: i64) -> FakeUser {
    FakeUser::new(id, "小明").lang("zh-hans")
}

pub fn en_customer(id: i64) -> FakeUser {
    FakeUser::new(id, "Sam").lang("en")
}

pub fn pack_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../intents/okpay")
}

pub fn okpay() -> Pack {
    Pack::load(&pack_dir()).expect("the shipped pack is valid")
}

/// The rendered answer of `intent` in `lang`.
pub fn answer(intent: &str, lang: Lang) -> String {
    let pack = okpay();
    let it = pack.intent(intent).expect("the intent exists");
    pack.render(&it.text[&lang].answer)
}

pub fn engine_config() -> EngineConfig {
    EngineConfig {
        agents: vec![format!("telegram:{AGENT_ID}"), "desk:alice".into()],
        desks: vec![switchboard_telegram::DESK.into()],
        retry: RetryPolicy { base: Duration::from_millis(20), max: Duration::from_millis(200), max_attempts: 40 },
        delivery: DeliveryConfig { lease: Duration::from_secs(10), ..DeliveryConfig::default() },
        // As `switchboard run` wires them: the engine splits long texts within Telegram's limits.
        text_limits: [
            (switchboard_telegram::CHANNEL.to_string(), switchboard_telegram::TEXT_LIMIT),
            (format!("desk:{}", switchboard_telegram::DESK), switchboard_telegram::DESK_TEXT_LIMIT),
        ]
        .into_iter()
        .collect(),
        ..EngineConfig::default()
    }
}

/// Waits up to 20 s for `f` to return something.
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The running system.
pub struct Harness {
    pub fake: FakeTelegram,
    pub dir: tempfile::TempDir,
    pub engine: Arc<Engine>,
    pub tg: Arc<Telegram>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Harness {
    /// A fresh database and fake server, with the staff group.
    pub async fn start() -> Harness {
        let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
        fake.add_forum(STAFF, "OKPay support staff");
        let dir = tempfile::tempdir().expect("a temporary directory");
        Harness::boot(fake, dir, engine_config()).await
    }

    async fn boot(fake: FakeTelegram, dir: tempfile::TempDir, config: EngineConfig) -> Harness {
        let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.expect("the database opens"));
        let engine = Engine::new(store, okpay(), config);
        let tg_config =
            TelegramConfig { staff_chat_id: Some(STAFF), api_url: Some(fake.api_url()), poll_timeout_secs: 5, webhook_url: None };
        let tg = Telegram::connect(engine.clone(), TOKEN, tg_config).await.expect("the adapter connects");
        let (stop, rx) = watch::channel(false);
        let shutdown = move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let tasks = vec![
            tokio::spawn(Arc::clone(&tg).run_polling(shutdown())),
            tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(25), shutdown())),
        ];
        Harness { fake, dir, engine, tg, stop, tasks }
    }

    /// Stops the adapter and the outbox, then starts new ones over the same database and fake.
    pub async fn restart(self) -> Harness {
        let Harness { fake, dir, engine, tg, stop, tasks } = self;
        let _ = stop.send(true);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t).await.expect("stops in time").expect("no panic");
        }
        drop(tg);
        drop(engine);
        Harness::boot(fake, dir, engine_config()).await
    }

    /// Messages the bot sent to a customer's private chat.
    pub fn to_customer(&self, user: &FakeUser) -> Vec<Sent> {
        self.fake.sent_to(user.id)
    }

    /// Texts the bot sent to a customer.
    pub fn texts_to(&self, user: &FakeUser) -> Vec<String> {
        self.to_customer(user).into_iter().map(|s| s.text).collect()
    }

    /// Waits until the customer has received at least `n` messages; returns them all.
    pub async fn customer_got(&self, user: &FakeUser, n: usize) -> Vec<Sent> {
        eventually(&format!("{n} messages to {}", user.id), || Some(self.to_customer(user)).filter(|s| s.len() >= n)).await
    }

    /// Waits until the staff group has a topic whose name contains `needle`; returns its thread id.
    pub async fn topic(&self, needle: &str) -> i64 {
        eventually(&format!("a topic named like {needle:?}"), || {
            self.fake.topics(STAFF).into_iter().find(|t| t.name.contains(needle)).map(|t| t.thread_id)
        })
        .await
    }

    /// Texts the bot posted into a topic.
    pub fn topic_texts(&self, thread: i64) -> Vec<String> {
        self.fake.sent_in_topic(STAFF, thread).into_iter().map(|s| s.text).collect()
    }

    /// Waits until a message in the topic contains `needle`.
    pub async fn topic_says(&self, thread: i64, needle: &str) -> String {
        eventually(&format!("{needle:?} in topic {thread}"), || self.topic_texts(thread).into_iter().find(|t| t.contains(needle))).await
    }

    /// The only open ticket.
    pub async fn open_ticket(&self) -> Ticket {
        let tickets = self.engine.store().tickets(&[TicketStatus::Queued, TicketStatus::Assigned]).await.expect("tickets");
        assert_eq!(tickets.len(), 1, "{tickets:#?}");
        tickets.into_iter().next().expect("one ticket")
    }

    pub async fn ticket(&self, id: i64) -> Ticket {
        self.engine.store().ticket(id).await.expect("store").expect("the ticket exists")
    }

    pub async fn events(&self, id: i64) -> Vec<TicketEvent> {
        self.engine.store().ticket_events(id).await.expect("events")
    }

    /// Waits until every update was handled and the outbox has nothing left to deliver.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Updates first: the offset passes an update only once it was handled (its replies
            // queued), and the last one is confirmed only by the next poll.
            let updates = self.fake.pending_updates();
            let pending = self.engine.store().outbox_pending().await.expect("outbox").len();
            if pending == 0 && updates == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "timed out settling: {pending} outbox items, {updates} updates");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `/queue` as the agent in the General topic and waits for the answer, then settles:
    /// every update pushed before it has then been handled (chats are handled concurrently, so
    /// the answer alone does not say so), and everything queued sent.
    pub async fn barrier(&self) -> String {
        let before = self.fake.sent_to(STAFF).into_iter().filter(|s| s.thread_id.is_none()).count();
        self.fake.push_group_text(STAFF, None, &agent(), "/queue");
        let answers = eventually("the /queue answer", || {
            let general: Vec<Sent> = self.fake.sent_to(STAFF).into_iter().filter(|s| s.thread_id.is_none()).collect();
            (general.len() > before).then_some(general)
        })
        .await;
        self.settle().await;
        answers.last().map(|s| s.text.clone()).unwrap_or_default()
    }

    /// The customer escalates in Chinese; returns the ticket and its topic.
    pub async fn escalate(&self, customer: &FakeUser) -> (Ticket, i64) {
        self.fake.push_text(customer, "转人工");
        let thread = self.topic(&customer.first_name).await;
        self.settle().await;
        (self.open_ticket().await, thread)
    }
}
