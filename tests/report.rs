//! `switchboard report` as a support lead reads it: containment, handoffs by reason and channel,
//! time to first agent reply and to close, intents by outcome and the messages the bot missed,
//! on the memory store and SQLite; and the command line with its bad input.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::{Harness, alice};
use switchboard_core::agents::AgentCommand;
use switchboard_core::report;
use switchboard_core::store::{MemoryStore, SqlStore, Store};

async fn a_week_of_support(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    // Three conversations the bot settles alone, one of them after not understanding twice.
    h.say("a", "my account is locked").await;
    h.say("b", "how do I close my account").await;
    h.say("b", "thanks").await;
    h.say("c", "qwzx blorf").await;
    h.say("c", "qwzx blorf").await;
    h.say("c", "my transfer failed").await;
    // Two that reach a person: one asks, one is not understood repeatedly.
    h.say("d", "human please").await;
    h.say("e", "zzkk vvtt").await;
    h.say("e", "zzkk vvtt").await;
    h.say("e", "zzkk vvtt").await;
    // Offered a person after not being understood, they take it.
    h.press("e", switchboard_core::dialogue::PAYLOAD_HUMAN_FALLBACK).await;
    let tickets = h.all_tickets().await;
    let d = tickets.iter().find(|t| t.key.chat == "d").unwrap().id;
    h.engine.agent(&alice(), AgentCommand::Reply(d, "Hello, I am on it".into())).await.unwrap();
    h.engine.agent(&alice(), AgentCommand::Close(d)).await.unwrap();

    let r = report::build(&*store, 0, i64::MAX).await.unwrap();
    assert_eq!(r.conversations, 5, "{r:#?}");
    assert_eq!(r.settled_by_bot, 3, "{r:#?}");
    assert!((r.containment - 0.6).abs() < 1e-9);
    assert_eq!(r.tickets, tickets.len() as u64);
    assert_eq!(r.tickets, 2);
    assert_eq!(r.handoffs_by_reason.get("asked for a person"), Some(&1), "{:?}", r.handoffs_by_reason);
    assert_eq!(r.handoffs_by_reason.get("not understood"), Some(&1), "{:?}", r.handoffs_by_reason);
    assert_eq!(r.handoffs_by_channel.get(support::CHANNEL), Some(&(tickets.len() as u64)));
    assert_eq!((r.first_reply.count, r.close.count), (1, 1));
    assert!(r.first_reply.median.unwrap() >= 0.0);
    assert_eq!(r.intents["account_locked"]["answer"], 1, "{:#?}", r.intents);
    assert!(r.intents.values().flat_map(|o| o.get("fallback")).sum::<u64>() >= 3, "{:#?}", r.intents);
    assert_eq!(r.top_unanswered.first().map(|(t, _)| t.as_str()), Some("zzkk vvtt"), "{:?}", r.top_unanswered);
    let text = r.to_string();
    assert!(text.contains("60.0 % containment") && text.contains("zzkk vvtt"), "{text}");
    // A period before anything happened is empty, not an error.
    let empty = report::build(&*store, 0, 1).await.unwrap();
    assert_eq!((empty.conversations, empty.tickets, empty.containment), (0, 0, 0.0));
}

#[tokio::test]
async fn the_report_counts_a_week_in_memory() {
    a_week_of_support(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn the_report_counts_a_week_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_week_of_support(Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap())).await;
}
