//! Floods and blocks, as customers and agents meet them: a customer writing faster than their
//! limit is told once and then kept but not answered, without slowing anyone else; an agent's
//! block silences a customer on every path (answers and desk relays), is on the ticket's history,
//! holds in another engine on the same database, ends when it should, and is lifted by `unblock`.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Harness, alice, config};
use switchboard_core::agents::AgentCommand;
use switchboard_core::dialogue::Action;
use switchboard_core::engine::Brain;
use switchboard_core::guard::{BLOCKS, Block, CustomerLimit};
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{Actor, Content, DeskNotice, TicketEventKind, now_ms};
use switchboard_core::{EngineError, Lang};

/// A harness whose customers may send `burst` messages, refilled at `per_minute`.
fn limited(store: Arc<dyn Store>, burst: u32, per_minute: u32) -> Harness {
    let mut cfg = config();
    cfg.customer_limit = CustomerLimit { burst, per_minute };
    Harness::with_config(store, Arc::new(Brain::new(support::okpay())), cfg)
}

/// The customer in `chat` writes `text` now (a live message, as the platform hands it over).
async fn live(h: &Harness, chat: &str, text: &str) -> switchboard_core::engine::Handled {
    let mut inbound = h.inbound(chat, Content::Text(text.into()));
    inbound.at = now_ms();
    let handled = h.engine.handle(inbound).await.unwrap();
    h.engine.flush().await.unwrap();
    handled
}

#[tokio::test]
async fn a_flood_is_kept_told_once_and_slows_nobody_else() {
    let h = limited(Arc::new(MemoryStore::new()), 5, 1);
    let mut actions = Vec::new();
    for k in 0..40 {
        actions.push(live(&h, "flood", &format!("my account is locked {k}")).await.action);
    }
    assert!(actions[..5].iter().all(|a| *a == Action::Answer), "the burst is answered: {actions:?}");
    assert!(actions[5..].iter().all(|a| *a == Action::Limited), "past it, nothing is answered: {actions:?}");
    let told = h.rec.sent_to("flood");
    let slow: Vec<_> = told.iter().filter(|r| r.text.contains("very fast")).collect();
    assert_eq!(slow.len(), 1, "told once to slow down: {told:?}");
    assert_eq!(told.len(), 6, "five answers and one notice: {told:?}");
    // Every message is kept.
    let conv = h.conversation("flood").await;
    let lines = h.engine.store().transcript(conv.id, 1000).await.unwrap();
    for k in 0..40 {
        assert!(lines.iter().any(|l| l.text == format!("my account is locked {k}")), "message {k} is in the transcript");
    }
    // Someone else, meanwhile, is answered at once.
    assert_eq!(live(&h, "calm", "my account is locked").await.action, Action::Answer);
    // A backlog the platform hands over after an outage is no flood.
    let mut old = h.inbound("flood", Content::Text("still locked".into()));
    old.at = now_ms() - 10 * 60_000;
    assert_eq!(h.engine.handle(old).await.unwrap().action, Action::Answer);
}

/// The customer in `chat` writes `text` at `at` (Unix ms).
async fn at(h: &Harness, chat: &str, text: &str, at: i64) -> Action {
    let mut inbound = h.inbound(chat, Content::Text(text.into()));
    inbound.at = at;
    let handled = h.engine.handle(inbound).await.unwrap();
    h.engine.flush().await.unwrap();
    handled.action
}

#[tokio::test]
async fn the_trickle_of_a_refilling_bucket_is_answered_without_repeating_the_notice() {
    // 600 a minute: one token every 100 ms.
    let h = limited(Arc::new(MemoryStore::new()), 2, 600);
    // Messages dated four minutes ago: still live (not a backlog), and a minute can pass in them.
    let t0 = now_ms() - 4 * 60_000;
    let first = [at(&h, "c", "hi", t0).await, at(&h, "c", "hi", t0).await, at(&h, "c", "hi", t0).await];
    assert_eq!(first, [Action::Answer, Action::Answer, Action::Limited]);
    // The bucket's own refill time (this is the scenario's duration, not a wait for a condition).
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(at(&h, "c", "my account is locked", t0 + 350).await, Action::Answer, "the trickle is answered");
    let mut again = Vec::new();
    for _ in 0..6 {
        again.push(at(&h, "c", "hello", t0 + 400).await);
    }
    assert!(again.contains(&Action::Limited), "{again:?}");
    let slow = |h: &Harness| h.rec.sent_to("c").into_iter().filter(|r| r.text.contains("very fast")).count();
    assert_eq!(slow(&h), 1, "the same flood is told once");
    // A minute after the notice, a message within the limit arms it again for the next flood.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(at(&h, "c", "my account is locked", t0 + 61_000).await, Action::Answer);
    assert_eq!(h.conversation("c").await.state.slowed_at, None, "armed again");
    let mut third = Vec::new();
    for _ in 0..6 {
        third.push(at(&h, "c", "hello", t0 + 61_100).await);
    }
    assert!(third.contains(&Action::Limited), "{third:?}");
    assert_eq!(slow(&h), 2, "a new flood is told again: {third:?}");
}

#[tokio::test]
async fn a_zero_limit_turns_flood_control_off() {
    let h = limited(Arc::new(MemoryStore::new()), 0, 0);
    for _ in 0..30 {
        assert_eq!(live(&h, "c", "my account is locked").await.action, Action::Answer);
    }
}

async fn blocks_silence_a_customer(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    h.say("c", "转人工").await;
    let tid = h.all_tickets().await.into_iter().find(|t| t.key.chat == "c").unwrap().id;
    h.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    h.rec.take();
    h.desk.take();

    // Only agents block.
    let customer = Actor::new("fake:user-c", "Customer c");
    let refused = h.engine.agent(&customer, AgentCommand::Block { ticket: tid, duration: None, reason: "x".into() }).await;
    assert!(matches!(refused, Err(EngineError::NotAnAgent)), "{refused:?}");

    h.engine.agent(&alice(), AgentCommand::Block { ticket: tid, duration: None, reason: "abusive to staff".into() }).await.unwrap();
    h.engine.flush().await.unwrap();
    let notices = h.desk.notices();
    assert!(
        notices
            .iter()
            .any(|(t, n)| *t == tid && matches!(n, DeskNotice::Blocked { until: None, reason, .. } if reason == "abusive to staff")),
        "the desks are told: {notices:?}"
    );
    h.desk.take();

    // Blocked: stored, not relayed to the agent, not answered.
    let got = h.say("c", "you cannot block me").await;
    assert_eq!(got.action, Action::Blocked);
    assert!(h.rec.sent_to("c").is_empty());
    assert!(h.desk.notices().is_empty(), "nothing relayed: {:?}", h.desk.notices());
    let conv = h.conversation("c").await;
    let lines = store.transcript(conv.id, 100).await.unwrap();
    assert!(lines.iter().any(|l| l.text == "you cannot block me"), "kept in the transcript");
    // Outside the ticket too, and a new conversation of the same customer is no way around it.
    let mut other_chat = h.inbound("c2", Content::Text("my account is locked".into()));
    other_chat.customer_id = "user-c".into();
    assert_eq!(h.engine.handle(other_chat).await.unwrap().action, Action::Blocked);

    // Another engine on the same database (another instance) sees the block at once.
    let second = Harness::new(store.clone());
    assert_eq!(second.say("c", "hello?").await.action, Action::Blocked);

    // Unblocking needs a block, and lifts it.
    h.engine.agent(&alice(), AgentCommand::Unblock(tid)).await.unwrap();
    let again = h.engine.agent(&alice(), AgentCommand::Unblock(tid)).await;
    assert!(matches!(&again, Err(EngineError::BadCommand(m)) if m.contains("not blocked")), "{again:?}");
    assert_eq!(h.say("c", "sorry").await.action, Action::Silent, "relayed to the agent again");

    // History, in order.
    let kinds: Vec<_> = store.ticket_events(tid).await.unwrap().into_iter().map(|e| e.kind).collect();
    let blocked = kinds.iter().position(|k| matches!(k, TicketEventKind::Blocked { agent, .. } if agent == "desk:alice")).unwrap();
    let unblocked = kinds.iter().position(|k| matches!(k, TicketEventKind::Unblocked { .. })).unwrap();
    assert!(blocked < unblocked, "{kinds:?}");

    // A block for a while holds for that while, as stored...
    h.engine
        .agent(&alice(), AgentCommand::Block { ticket: tid, duration: Some(Duration::from_secs(3600)), reason: String::new() })
        .await
        .unwrap();
    let stored = store.get_value(BLOCKS, "fake:user-c").await.unwrap().map(|v| Block::parse(&v).unwrap()).unwrap();
    let until = stored.until.unwrap();
    assert!((until - now_ms() - 3_600_000).abs() < 60_000, "an hour from now: {stored:?}");
    assert_eq!(h.say("c", "hello").await.action, Action::Blocked);
    // ...and once it has run out (as if the hour had passed), the customer is heard again.
    // (The harness dates its messages in 2023: a block that ran out before then.)
    let ran_out = Block { until: Some(1_600_000_000_000), ..stored };
    store.set_value(BLOCKS, "fake:user-c", &serde_json::to_string(&ran_out).unwrap()).await.unwrap();
    let fresh = Harness::new(store.clone());
    assert_eq!(fresh.say("c", "hello").await.action, Action::Silent);
}

#[tokio::test]
async fn blocks_silence_a_customer_in_memory() {
    blocks_silence_a_customer(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn blocks_silence_a_customer_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    blocks_silence_a_customer(Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap())).await;
}

#[tokio::test]
async fn a_blocked_customer_is_not_told_their_secret_was_hidden_and_nothing_leaks() {
    let h = Harness::new(Arc::new(MemoryStore::new()));
    h.say("c", "human please").await;
    let tid = h.all_tickets().await[0].id;
    h.engine.agent(&alice(), AgentCommand::Block { ticket: tid, duration: None, reason: String::new() }).await.unwrap();
    h.engine.flush().await.unwrap();
    h.rec.take();
    assert_eq!(h.say("c", "my card 4242 4242 4242 4242").await.action, Action::Blocked);
    assert!(h.rec.sent_to("c").is_empty());
    let conv = h.conversation("c").await;
    let lines = h.engine.store().transcript(conv.id, 100).await.unwrap();
    assert!(lines.iter().all(|l| !l.text.contains("4242 4242")), "masked even when blocked: {lines:?}");
    let _ = Lang::En;
}
