//! The store test suite, written once and run against every backend (memory, SQLite, PostgreSQL)
//! from `tests/store.rs`. Each check panics with a message on failure, like an assertion.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use super::{Commit, NewConversation, Store};
use crate::types::{
    Author, ConversationKey, DeskNotice, HandoffReason, Outgoing, Owner, Priority, Reply, Ticket, TicketEventKind, TicketStatus,
};
use crate::{Lang, StoreError};

fn key(chat: &str) -> ConversationKey {
    ConversationKey { channel: "test".into(), chat: chat.into() }
}

fn new_conv(chat: &str) -> NewConversation {
    NewConversation {
        key: key(chat),
        customer_id: format!("cust-{chat}"),
        customer_name: format!("Customer {chat}"),
        lang: Lang::En,
        at: 1,
    }
}

fn ticket(priority: Priority, at: i64) -> Ticket {
    Ticket {
        id: 0,
        conversation_id: 0,
        key: key("x"),
        customer_id: "c".into(),
        customer_name: "C".into(),
        lang: Lang::Zh,
        reason: HandoffReason::Intent("account_stolen".into()),
        priority,
        fields: vec![crate::types::Field { name: "amount".into(), value: "200".into() }],
        status: TicketStatus::Queued,
        agent: None,
        created_at: at,
        updated_at: at,
    }
}

/// A new, empty PostgreSQL database on the local test server (`SWITCHBOARD_TEST_PG` overrides the
/// URL of an existing database there); returns its URL.
pub async fn fresh_postgres() -> String {
    let base = std::env::var("SWITCHBOARD_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("switchboard_test_{}_{nanos}", std::process::id());
    super::SqlStore::create_database(&base, &name).await.expect("PostgreSQL must be running for the tests (see .ci/run)")
}

/// Runs every check against `store`, which must be empty.
pub async fn run_all(store: &dyn Store) {
    conversations_are_created_once(store).await;
    stale_versions_conflict(store).await;
    duplicates_are_refused_and_roll_back(store).await;
    tickets_events_transcript_and_outbox(store).await;
    queue_order_is_urgent_first_then_oldest(store).await;
    outbox_lease_retry_and_failure(store).await;
    outbox_heads_are_each_destinations_oldest_pending(store).await;
    processed_ids_are_marked_and_pruned(store).await;
    values_round_trip(store).await;
    failed_outbox_items_are_pruned_after_their_retention(store).await;
}

async fn failed_outbox_items_are_pruned_after_their_retention(store: &dyn Store) {
    // Earlier steps of the suite left failed items, all due long before 40 s.
    store.prune_failed_outbox(40_000).await.unwrap();
    let c = store.open_conversation(new_conv("pruned")).await.unwrap();
    let mut commit = Commit::new(c.clone(), 1_000);
    for text in ["kept waiting", "given up"] {
        commit.outbox.push(Outgoing::Customer { key: c.key.clone(), reply: Reply::text(text), ticket_id: None });
    }
    store.commit(commit).await.unwrap();
    let targets = vec!["test".to_string()];
    let claimed = store.claim_outbox(&targets, 50_000, 10, 5_000).await.unwrap();
    let mine: Vec<_> = claimed.iter().filter(|i| matches!(&i.item, Outgoing::Customer { key, .. } if *key == c.key)).collect();
    assert_eq!(mine.len(), 2);
    store.outbox_retry(mine[0].id, 1, 1_000).await.unwrap();
    store.outbox_fail(mine[1].id, "blocked", 52_000).await.unwrap();
    assert_eq!(store.prune_failed_outbox(52_000).await.unwrap(), 0, "it failed at 52 s: kept until then");
    assert_eq!(store.prune_failed_outbox(52_001).await.unwrap(), 1);
    assert_eq!(store.prune_failed_outbox(i64::MAX).await.unwrap(), 0, "pending items are never pruned, however old");
    assert!(store.outbox_pending().await.unwrap().iter().any(|i| i.id == mine[0].id));
    for other in claimed.iter().filter(|i| !mine.iter().any(|m| m.id == i.id)) {
        store.outbox_done(other.id).await.unwrap();
    }
    store.outbox_done(mine[0].id).await.unwrap();
}

async fn conversations_are_created_once(store: &dyn Store) {
    let a = store.open_conversation(new_conv("a")).await.unwrap();
    let again = store.open_conversation(NewConversation { customer_name: "changed".into(), ..new_conv("a") }).await.unwrap();
    assert_eq!(a.id, again.id, "same key, same conversation");
    assert_eq!(again.customer_name, "Customer a");
    assert_eq!(a.owner, Owner::Bot);
    assert_eq!(a.version, 0);
    let b = store.open_conversation(new_conv("b")).await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(store.conversation(a.id).await.unwrap().unwrap(), a);
    assert!(store.conversation(999_999).await.unwrap().is_none());
}

async fn stale_versions_conflict(store: &dyn Store) {
    let c = store.open_conversation(new_conv("v")).await.unwrap();
    let mut first = c.clone();
    first.lang = Lang::Zh;
    let done = store.commit(Commit::new(first, 10)).await.unwrap();
    assert_eq!(done.conversation.version, 1);
    let err = store.commit(Commit::new(c.clone(), 11)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(id) if id == c.id), "{err:?}");
    let stored = store.conversation(c.id).await.unwrap().unwrap();
    assert_eq!(stored.lang, Lang::Zh);
    assert_eq!(stored.version, 1);
}

async fn duplicates_are_refused_and_roll_back(store: &dyn Store) {
    let c = store.open_conversation(new_conv("d")).await.unwrap();
    let mut commit = Commit::new(c.clone(), 20);
    commit.dedup = Some(("test".into(), "m1".into()));
    commit.transcript.push((Author::Customer, "hello".into()));
    let done = store.commit(commit.clone()).await.unwrap();
    let mut again = commit.clone();
    again.conversation = done.conversation.clone();
    let err = store.commit(again).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate), "{err:?}");
    assert_eq!(store.transcript(c.id, 10).await.unwrap().len(), 1, "the duplicate wrote nothing");
    assert_eq!(store.conversation(c.id).await.unwrap().unwrap().version, 1);
    // The same message id on another channel is another message.
    let mut other = Commit::new(done.conversation, 21);
    other.dedup = Some(("other".into(), "m1".into()));
    store.commit(other).await.unwrap();
}

async fn tickets_events_transcript_and_outbox(store: &dyn Store) {
    let c = store.open_conversation(new_conv("t")).await.unwrap();
    let mut conv = c.clone();
    conv.owner = Owner::Queue;
    let mut commit = Commit::new(conv, 30);
    commit.open_ticket = Some(ticket(Priority::Urgent, 30));
    commit.events.push(TicketEventKind::Opened);
    commit.transcript.push((Author::Customer, "被盗了".into()));
    commit.transcript.push((Author::Bot, "请立即修改密码".into()));
    commit.outbox.push(Outgoing::Customer { key: c.key.clone(), reply: Reply::text("queued"), ticket_id: None });
    commit.outbox.push(Outgoing::Desk { desk: "staff".into(), ticket_id: None, notice: DeskNotice::Opened, by: None });
    let done = store.commit(commit).await.unwrap();
    let tid = done.ticket_id.expect("a ticket id");
    assert_eq!(done.conversation.ticket_id, Some(tid));
    let stored = store.conversation(c.id).await.unwrap().unwrap();
    assert_eq!(stored.ticket_id, Some(tid));
    assert_eq!(stored.owner, Owner::Queue);

    let t = store.ticket(tid).await.unwrap().unwrap();
    assert_eq!(t.conversation_id, c.id);
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.reason, HandoffReason::Intent("account_stolen".into()));
    assert_eq!(t.fields.len(), 1);
    assert_eq!(store.ticket_events(tid).await.unwrap().iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), vec![TicketEventKind::Opened]);

    let lines = store.transcript(c.id, 10).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].author, Author::Customer);
    assert_eq!(lines[0].text, "被盗了");
    assert_eq!(lines[1].ticket_id, Some(tid));
    assert_eq!(store.transcript(c.id, 1).await.unwrap()[0].text, "请立即修改密码", "the limit keeps the newest");

    let pending = store.outbox_pending().await.unwrap();
    let desk = pending.iter().find_map(|i| match &i.item {
        Outgoing::Desk { ticket_id, notice: DeskNotice::Opened, .. } => Some(*ticket_id),
        _ => None,
    });
    assert_eq!(desk, Some(Some(tid)), "desk items get the new ticket id");

    // Claim, then close: the ticket update and the conversation change land together.
    let mut t2 = t.clone();
    t2.status = TicketStatus::Closed;
    t2.agent = Some("desk:alice".into());
    t2.updated_at = 40;
    let mut conv = done.conversation.clone();
    conv.owner = Owner::Bot;
    conv.ticket_id = None;
    let mut close = Commit::new(conv, 40);
    close.update_ticket = Some(t2);
    close.events.push(TicketEventKind::Closed { agent: "desk:alice".into() });
    close.transcript.push((Author::Agent("desk:alice".into()), "done".into()));
    store.commit(close).await.unwrap();
    let t3 = store.ticket(tid).await.unwrap().unwrap();
    assert_eq!(t3.status, TicketStatus::Closed);
    assert_eq!(t3.agent.as_deref(), Some("desk:alice"));
    assert_eq!(store.ticket_events(tid).await.unwrap().len(), 2);
    assert_eq!(store.transcript(c.id, 10).await.unwrap()[2].ticket_id, Some(tid), "the closing line belongs to the ticket");
    assert!(store.conversation(c.id).await.unwrap().unwrap().ticket_id.is_none());

    store.append_events(tid, vec![TicketEventKind::DeliveryFailed { reason: "blocked".into() }], vec![], 50).await.unwrap();
    assert_eq!(store.ticket_events(tid).await.unwrap().len(), 3);
    // Clean the outbox for the next checks.
    for i in store.outbox_pending().await.unwrap() {
        store.outbox_done(i.id).await.unwrap();
    }
}

async fn queue_order_is_urgent_first_then_oldest(store: &dyn Store) {
    let mut ids = Vec::new();
    for (i, (p, at)) in
        [(Priority::Normal, 100), (Priority::Normal, 90), (Priority::Urgent, 200), (Priority::Low, 50)].into_iter().enumerate()
    {
        let c = store.open_conversation(new_conv(&format!("q{i}"))).await.unwrap();
        let mut commit = Commit::new(c, at);
        commit.open_ticket = Some(ticket(p, at));
        ids.push(store.commit(commit).await.unwrap().ticket_id.unwrap());
    }
    let queue: Vec<i64> = store.tickets(&[TicketStatus::Queued]).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(queue, vec![ids[2], ids[1], ids[0], ids[3]]);
    assert!(store.tickets(&[TicketStatus::Assigned]).await.unwrap().is_empty());
}

async fn outbox_lease_retry_and_failure(store: &dyn Store) {
    let c = store.open_conversation(new_conv("o")).await.unwrap();
    let mut commit = Commit::new(c.clone(), 1_000);
    for n in 0..3 {
        commit.outbox.push(Outgoing::Customer { key: c.key.clone(), reply: Reply::text(format!("m{n}")), ticket_id: None });
    }
    commit.outbox.push(Outgoing::Desk { desk: "elsewhere".into(), ticket_id: Some(1), notice: DeskNotice::Opened, by: None });
    store.commit(commit).await.unwrap();
    let targets = vec!["test".to_string()];
    assert!(store.claim_outbox(&targets, 999, 10, 5_000).await.unwrap().is_empty(), "nothing is due before its time");
    let claimed = store.claim_outbox(&targets, 1_000, 2, 5_000).await.unwrap();
    assert_eq!(claimed.len(), 2, "the limit holds");
    assert!(claimed[0].id < claimed[1].id, "oldest first");
    let rest = store.claim_outbox(&targets, 1_000, 10, 5_000).await.unwrap();
    assert_eq!(rest.len(), 1, "leased items are hidden from other claimers");
    store.outbox_done(claimed[0].id).await.unwrap();
    store.outbox_retry(claimed[1].id, 1, 2_000).await.unwrap();
    store.outbox_fail(rest[0].id, "blocked", 1_000).await.unwrap();
    let pending: Vec<_> = store.outbox_pending().await.unwrap().into_iter().filter(|i| i.item.target() == "test").collect();
    assert_eq!(pending.len(), 1, "done and failed items are no longer pending");
    assert_eq!(pending[0].attempts, 1);
    assert!(store.claim_outbox(&targets, 1_999, 10, 5_000).await.unwrap().is_empty());
    let again = store.claim_outbox(&targets, 2_000, 10, 5_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].item, pending[0].item);
    assert!(store.claim_outbox(&targets, 6_999, 10, 5_000).await.unwrap().is_empty(), "still leased");
    assert_eq!(
        store.claim_outbox(&targets, 7_000, 10, 5_000).await.unwrap().len(),
        1,
        "an expired lease is claimed again (the sender died)"
    );
    store.outbox_done(again[0].id).await.unwrap();
    let other = store.claim_outbox(&["desk:elsewhere".to_string()], 10_000, 10, 5_000).await.unwrap();
    assert_eq!(other.len(), 1, "each target is claimed by whoever serves it");
    store.outbox_done(other[0].id).await.unwrap();
}

async fn outbox_heads_are_each_destinations_oldest_pending(store: &dyn Store) {
    let a = store.open_conversation(new_conv("ha")).await.unwrap();
    let b = store.open_conversation(new_conv("hb")).await.unwrap();
    let say = |key: &ConversationKey, text: &str| Outgoing::Customer { key: key.clone(), reply: Reply::text(text), ticket_id: None };
    let mut commit = Commit::new(a.clone(), 5_000);
    commit.outbox.push(say(&a.key, "a1"));
    commit.outbox.push(say(&a.key, "a2"));
    commit.outbox.push(Outgoing::Desk { desk: "staff".into(), ticket_id: Some(7), notice: DeskNotice::Opened, by: None });
    store.commit(commit).await.unwrap();
    let mut commit = Commit::new(b.clone(), 5_001);
    commit.outbox.push(say(&b.key, "b1"));
    store.commit(commit).await.unwrap();
    let ids: Vec<(i64, String)> = store.outbox_pending().await.unwrap().into_iter().map(|i| (i.id, i.item.destination())).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    let (a1, a2, desk, b1) = (ids[0].0, ids[1].0, ids[2].0, ids[3].0);
    assert_eq!(ids[0].1, "test/ha");
    assert_eq!(ids[2].1, "desk:staff/7");

    let dests: Vec<String> = ["test/ha", "test/hb", "test/nobody"].map(String::from).to_vec();
    let heads = store.outbox_heads(&dests, &[]).await.unwrap();
    assert_eq!(heads.get("test/ha"), Some(&(a1, 5_000)), "the oldest item of a chat");
    assert_eq!(heads.get("test/hb"), Some(&(b1, 5_001)));
    assert_eq!(heads.len(), 2, "destinations without items and ones not asked about are absent: {heads:?}");
    let heads = store.outbox_heads(&dests, &[a1, b1]).await.unwrap();
    assert_eq!(heads.get("test/ha"), Some(&(a2, 5_000)), "excluded ids are skipped");
    assert!(!heads.contains_key("test/hb"));
    store.outbox_retry(a1, 1, 9_000).await.unwrap();
    assert_eq!(store.outbox_heads(&dests, &[a2]).await.unwrap().get("test/ha"), Some(&(a1, 9_000)), "with its new due time");
    store.outbox_fail(a1, "blocked", 1_000).await.unwrap();
    assert_eq!(store.outbox_heads(&dests, &[]).await.unwrap().get("test/ha"), Some(&(a2, 5_000)), "failed items do not hold the line");
    assert_eq!(store.outbox_heads(&["desk:staff/7".to_string()], &[]).await.unwrap().get("desk:staff/7"), Some(&(desk, 5_000)));
    assert!(store.outbox_heads(&[], &[a2]).await.unwrap().is_empty());
    for id in [a2, desk, b1] {
        store.outbox_done(id).await.unwrap();
    }
    assert!(store.outbox_heads(&dests, &[]).await.unwrap().is_empty());
}

async fn processed_ids_are_marked_and_pruned(store: &dyn Store) {
    // Earlier checks recorded ids at small times: forget them first.
    store.prune_processed(60).await.unwrap();
    assert!(!store.is_processed("test", "m-old").await.unwrap());
    store.mark_processed("staff", "g:1", 100).await.unwrap();
    store.mark_processed("staff", "g:1", 900).await.unwrap();
    store.mark_processed("staff", "g:2", 300).await.unwrap();
    assert!(store.is_processed("staff", "g:1").await.unwrap());
    assert!(!store.is_processed("other", "g:1").await.unwrap(), "ids are per channel");
    let c = store.open_conversation(new_conv("p")).await.unwrap();
    let mut commit = Commit::new(c.clone(), 200);
    commit.dedup = Some(("test".into(), "m-200".into()));
    store.commit(commit).await.unwrap();
    assert!(store.is_processed("test", "m-200").await.unwrap(), "a commit's dedup id counts as processed");
    let mut again = Commit::new(store.conversation(c.id).await.unwrap().unwrap(), 201);
    again.dedup = Some(("staff".into(), "g:2".into()));
    assert!(matches!(store.commit(again).await, Err(StoreError::Duplicate)), "and a marked id refuses a commit");

    assert_eq!(store.prune_processed(250).await.unwrap(), 2, "g:1 (kept its first time, 100) and m-200 are older");
    assert!(!store.is_processed("staff", "g:1").await.unwrap());
    assert!(!store.is_processed("test", "m-200").await.unwrap());
    assert!(store.is_processed("staff", "g:2").await.unwrap(), "newer ids stay");
    assert_eq!(store.prune_processed(250).await.unwrap(), 0);
}

async fn values_round_trip(store: &dyn Store) {
    assert_eq!(store.get_value("telegram", "offset").await.unwrap(), None);
    store.set_value("telegram", "offset", "41").await.unwrap();
    store.set_value("telegram", "offset", "42").await.unwrap();
    store.set_value("discord", "offset", "x").await.unwrap();
    assert_eq!(store.get_value("telegram", "offset").await.unwrap().as_deref(), Some("42"));
    assert_eq!(store.get_value("discord", "offset").await.unwrap().as_deref(), Some("x"));
    store.set_value("telegram", "b", "2").await.unwrap();
    store.set_value("telegram", "a", "1").await.unwrap();
    let all = store.values("telegram").await.unwrap();
    assert_eq!(all, [("a".into(), "1".into()), ("b".into(), "2".into()), ("offset".into(), "42".into())], "one namespace, by key");
    assert!(store.values("nothing here").await.unwrap().is_empty());
}
