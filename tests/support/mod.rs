//! Shared test helpers: the shipped OKPay pack, an engine wired to a recording channel and desk,
//! and shorthands for customer messages and agents.

#![allow(dead_code, clippy::unwrap_used)]

pub mod browser;
pub mod cli;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_core::channel::Recorder;
use switchboard_core::engine::{Brain, Engine, EngineConfig, Handled, RetryPolicy};
use switchboard_core::pack::Pack;
use switchboard_core::store::Store;
use switchboard_core::types::{Actor, Content, Inbound, Reply};

pub const CHANNEL: &str = "fake";
pub const DESK: &str = "staff";

pub fn pack_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents/okpay")
}

/// Copies the shipped pack's intent files (not its tests) into `to`, for a test to edit.
pub fn copy_pack(to: &std::path::Path) {
    for e in std::fs::read_dir(pack_dir()).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

pub fn okpay() -> Pack {
    Pack::load(&pack_dir()).expect("the shipped pack is valid")
}

pub fn config() -> EngineConfig {
    EngineConfig {
        agents: vec!["desk:alice".into(), "desk:bob".into()],
        desks: vec![DESK.into()],
        retry: RetryPolicy { base: Duration::from_millis(1), max: Duration::from_millis(5), max_attempts: 5 },
        ..EngineConfig::default()
    }
}

pub fn alice() -> Actor {
    Actor::new("desk:alice", "Alice")
}

pub fn bob() -> Actor {
    Actor::new("desk:bob", "Bob")
}

/// An engine over `store` with one recording channel (`fake`) and desk (`staff`).
pub struct Harness {
    pub engine: Arc<Engine>,
    pub rec: Arc<Recorder>,
    pub desk: Arc<Recorder>,
    seq: AtomicU64,
}

impl Harness {
    /// A harness on the shipped pack (trained once per test binary).
    pub fn new(store: Arc<dyn Store>) -> Harness {
        static BRAIN: std::sync::OnceLock<Arc<Brain>> = std::sync::OnceLock::new();
        let brain = BRAIN.get_or_init(|| Arc::new(Brain::new(okpay()))).clone();
        Harness::with_brain(store, brain)
    }

    pub fn with_pack(store: Arc<dyn Store>, pack: Pack) -> Harness {
        Harness::with_brain(store, Arc::new(Brain::new(pack)))
    }

    pub fn with_brain(store: Arc<dyn Store>, brain: Arc<Brain>) -> Harness {
        Harness::with_config(store, brain, config())
    }

    /// A harness with its own engine settings.
    pub fn with_config(store: Arc<dyn Store>, brain: Arc<Brain>, config: EngineConfig) -> Harness {
        let engine = Engine::with_brain(store, brain, config);
        let rec = Arc::new(Recorder::new(CHANNEL));
        let desk = Arc::new(Recorder::new(DESK));
        engine.add_channel(rec.clone());
        engine.add_desk(desk.clone());
        Harness { engine, rec, desk, seq: AtomicU64::new(0) }
    }

    pub fn inbound(&self, chat: &str, content: Content) -> Inbound {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        Inbound {
            channel: CHANNEL.into(),
            conversation: chat.into(),
            customer_id: format!("user-{chat}"),
            customer_name: format!("Customer {chat}"),
            content,
            // Unique across harnesses over one database (a restart must not look like a redelivery).
            message_id: format!("{chat}-{n}-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()),
            at: 1_700_000_000_000 + i64::try_from(n).unwrap(),
            lang_hint: None,
            deleted: None,
        }
    }

    /// The stored conversation of `chat` (it must exist).
    pub async fn conversation(&self, chat: &str) -> switchboard_core::types::Conversation {
        let key = switchboard_core::types::ConversationKey { channel: CHANNEL.into(), chat: chat.into() };
        let new = switchboard_core::store::NewConversation {
            key,
            customer_id: String::new(),
            customer_name: String::new(),
            lang: switchboard_core::Lang::En,
            at: 0,
        };
        let conv = self.engine.store().open_conversation(new).await.unwrap();
        assert!(!conv.customer_id.is_empty(), "no conversation {chat} was stored");
        conv
    }

    /// Every ticket, whatever its state.
    pub async fn all_tickets(&self) -> Vec<switchboard_core::types::Ticket> {
        use switchboard_core::types::TicketStatus::{Assigned, Closed, Queued};
        self.engine.store().tickets(&[Queued, Assigned, Closed]).await.unwrap()
    }

    /// The customer in `chat` types `text`; the outbox is flushed.
    pub async fn say(&self, chat: &str, text: &str) -> Handled {
        let h = self.engine.handle(self.inbound(chat, Content::Text(text.into()))).await.unwrap();
        self.engine.flush().await.unwrap();
        h
    }

    /// The customer in `chat` types `text` `minutes` after the harness's clock started.
    pub async fn say_later(&self, chat: &str, text: &str, minutes: i64) -> Handled {
        let mut inbound = self.inbound(chat, Content::Text(text.into()));
        inbound.at += minutes * 60_000;
        let h = self.engine.handle(inbound).await.unwrap();
        self.engine.flush().await.unwrap();
        h
    }

    /// The customer in `chat` presses the button with `payload`.
    pub async fn press(&self, chat: &str, payload: &str) -> Handled {
        let h = self.engine.handle(self.inbound(chat, Content::Choice(payload.into()))).await.unwrap();
        self.engine.flush().await.unwrap();
        h
    }

    /// Everything sent to `chat` since the last call.
    pub fn replies(&self, chat: &str) -> Vec<Reply> {
        let all = self.rec.take();
        all.into_iter()
            .filter_map(|r| match r {
                switchboard_core::channel::Recorded::Sent { chat: c, reply } if c == chat => Some(reply),
                _ => None,
            })
            .collect()
    }
}

/// The rendered answer of `intent` in `lang`, from the pack itself.
pub fn answer(pack: &Pack, intent: &str, lang: switchboard_core::Lang) -> String {
    pack.render(&pack.intent(intent).unwrap().text[&lang].answer)
}
