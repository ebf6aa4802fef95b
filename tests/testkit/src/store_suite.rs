//! The store test suite, written once and run against every backend (memory, SQLite,
//! PostgreSQL, and [`Faulty`](crate::faulty::Faulty) around one) from
//! `core/tests/store_suite.rs`, and the fresh PostgreSQL databases the workspace's tests use. Each
//! check panics with a message on failure, like an assertion.
//!
//! PostgreSQL tests need a server: [`POSTGRES_ENV`] (`SWITCHBOARD_TEST_PG`) is the URL of an
//! existing database there, by default [`DEFAULT_POSTGRES`], the local server's `test` database.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use switchboard_core::store::{Commit, Erased, Lease, NewConversation, SqlStore, Store};
use switchboard_core::types::{
    Author, Choice, Conversation, ConversationKey, DeskNotice, Field, HandoffReason, Line, OutboxItem, Outgoing, Owner, Priority, Reply,
    Ticket, TicketEventKind, TicketStatus,
};
use switchboard_core::{Lang, StoreError};

/// The environment variable with the URL of an existing PostgreSQL database on the test server.
pub const POSTGRES_ENV: &str = "SWITCHBOARD_TEST_PG";
/// The test server's database when [`POSTGRES_ENV`] is not set.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The URL of an existing database on the PostgreSQL test server: [`POSTGRES_ENV`], else
/// [`DEFAULT_POSTGRES`].
pub fn postgres_base_url() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES.into())
}

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
        fields: vec![Field { name: "amount".into(), value: "200".into() }],
        status: TicketStatus::Queued,
        agent: None,
        created_at: at,
        updated_at: at,
    }
}

/// A new, empty PostgreSQL database on the test server (see [`postgres_base_url`]); returns its
/// URL. Panics when the server does not answer.
pub async fn fresh_postgres() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("switchboard_test_{}_{nanos}", std::process::id());
    SqlStore::create_database(&postgres_base_url(), &name)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be running for the tests (see .ci/run, or set {POSTGRES_ENV}): {e}"))
}

/// Runs every check against `store`, which must be empty.
pub async fn run_all(store: &dyn Store) {
    conversations_are_created_once(store).await;
    stale_versions_conflict(store).await;
    duplicates_are_refused_and_roll_back(store).await;
    tickets_events_transcript_and_outbox(store).await;
    queue_order_is_urgent_first_then_oldest(store).await;
    outbox_leases_keep_each_destination_in_order(store).await;
    two_senders_share_a_backlog_without_sending_twice(store).await;
    processed_ids_are_marked_and_pruned(store).await;
    values_round_trip(store).await;
    a_namespace_is_deleted_alone(store).await;
    failed_outbox_items_are_pruned_after_their_retention(store).await;
    values_are_written_with_their_commit_or_not_at_all(store).await;
    old_transcript_lines_are_deleted_in_batches(store).await;
    closed_tickets_lose_their_texts_once(store).await;
    a_customer_is_erased_and_nobody_else(store).await;
    outcomes_are_kept_on_customer_lines_and_streamed(store).await;
    events_for_another_ticket_land_with_their_commit(store).await;
    a_transcript_is_read_after_a_line_with_its_buttons(store).await;
}

/// A page that shows a conversation (the web chat) catches up from the last line it has: lines
/// come after an id, in order, with the buttons a reply offered; other conversations' lines never;
/// which conversations changed since a line is known without reading them.
async fn a_transcript_is_read_after_a_line_with_its_buttons(store: &dyn Store) {
    let key = ConversationKey { channel: "web".into(), chat: "after-1".into() };
    assert!(store.find_conversation(&key).await.unwrap().is_none(), "finding creates nothing");
    let head = store.transcript_head().await.unwrap();
    let a = store.open_conversation(NewConversation { key: key.clone(), ..new_conv("after-1") }).await.unwrap();
    let b = store.open_conversation(new_conv("after-2")).await.unwrap();
    assert_eq!(store.find_conversation(&key).await.unwrap().map(|c| c.id), Some(a.id));
    let mut first = Commit::new(a.clone(), 50);
    first.transcript.push(Line::from((Author::Customer, "hi".into())));
    let choices = vec![Choice { payload: "intent:transfer_failed".into(), label: "Transfer failed <b>".into() }];
    first.transcript.push(Line { author: Author::Bot, text: "Hello! Pick one:".into(), choices: choices.clone() });
    let first = store.commit(first).await.unwrap();
    let mut other = Commit::new(b.clone(), 51);
    other.transcript.push(Line::from((Author::Customer, "someone else".into())));
    store.commit(other).await.unwrap();
    let mut second = Commit::new(first.conversation, 52);
    second.transcript.push(Line::from((Author::Agent("web:alice".into()), "I'm here".into())));
    store.commit(second).await.unwrap();

    let all = store.transcript_after(a.id, head, 100).await.unwrap();
    let texts: Vec<&str> = all.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["hi", "Hello! Pick one:", "I'm here"]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ids increase: {all:?}");
    assert!(all.iter().all(|e| e.id > head && e.conversation_id == a.id));
    assert_eq!(all[1].choices, choices, "a reply keeps its buttons");
    assert!(all[0].choices.is_empty() && all[2].choices.is_empty());
    // After the first line: the rest; after the last: nothing; a limit keeps the oldest.
    let rest = store.transcript_after(a.id, all[0].id, 100).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), [all[1].id, all[2].id]);
    assert!(store.transcript_after(a.id, all[2].id, 100).await.unwrap().is_empty());
    assert_eq!(store.transcript_after(a.id, head, 1).await.unwrap()[0].id, all[0].id);
    // The full transcript read carries ids and buttons too.
    assert_eq!(store.transcript(a.id, 10).await.unwrap(), all);

    let touched = store.transcript_touched(head, 100).await.unwrap();
    let newest_a = touched.iter().find(|(c, _)| *c == a.id).map(|(_, id)| *id);
    assert_eq!(newest_a, Some(all[2].id));
    assert!(touched.iter().any(|(c, _)| *c == b.id));
    assert!(store.transcript_touched(all[2].id, 100).await.unwrap().is_empty());
    assert_eq!(store.transcript_head().await.unwrap(), all[2].id);
}

/// A customer's rating goes on the ticket that just closed, no longer the conversation's, in the
/// commit that takes it: with it or not at all.
async fn events_for_another_ticket_land_with_their_commit(store: &dyn Store) {
    let c = store.open_conversation(new_conv("rated")).await.unwrap();
    let mut conv = c.clone();
    conv.owner = Owner::Queue;
    let mut open = Commit::new(conv, 60);
    open.open_ticket = Some(ticket(Priority::Normal, 60));
    open.events.push(TicketEventKind::Opened);
    let opened = store.commit(open).await.unwrap();
    let tid = opened.ticket_id.unwrap();
    let mut t = store.ticket(tid).await.unwrap().unwrap();
    t.status = TicketStatus::Closed;
    t.agent = Some("desk:alice".into());
    let mut conv = opened.conversation.clone();
    conv.owner = Owner::Bot;
    conv.ticket_id = None;
    let mut close = Commit::new(conv, 61);
    close.update_ticket = Some(t);
    close.events.push(TicketEventKind::Closed { agent: "desk:alice".into() });
    let closed = store.commit(close).await.unwrap();
    let kinds = |events: Vec<switchboard_core::types::TicketEvent>| events.into_iter().map(|e| (e.at, e.kind)).collect::<Vec<_>>();
    let before = kinds(store.ticket_events(tid).await.unwrap());
    assert_eq!(before.len(), 2);

    let rated = TicketEventKind::Rated { score: 4, comment: Some("thanks, fast".into()) };
    // Planned from a stale conversation: refused, the rating with it.
    let mut stale = Commit::new(opened.conversation.clone(), 62);
    stale.ticket_events.push((tid, rated.clone()));
    assert!(matches!(store.commit(stale).await, Err(StoreError::Conflict(_))));
    // For a ticket that does not exist: refused whole, the conversation and its lines unchanged.
    let mut missing = Commit::new(closed.conversation.clone(), 62);
    missing.dedup = Some(("test".into(), "rated-1".into()));
    missing.ticket_events.push((tid + 1_000_000, rated.clone()));
    missing.transcript.push(Line::from((Author::Customer, "4 thanks, fast".into())));
    assert!(store.commit(missing).await.is_err(), "an event for no ticket fails the commit");
    assert_eq!(kinds(store.ticket_events(tid).await.unwrap()), before);
    assert!(store.transcript(c.id, 10).await.unwrap().is_empty(), "nothing of the refused commit was written");
    assert_eq!(store.conversation(c.id).await.unwrap().unwrap().version, closed.conversation.version);
    assert!(!store.is_processed("test", "rated-1").await.unwrap());

    let mut rate = Commit::new(closed.conversation.clone(), 63);
    rate.dedup = Some(("test".into(), "rated-1".into()));
    rate.ticket_events.push((tid, rated.clone()));
    rate.transcript.push(Line::from((Author::Customer, "4 thanks, fast".into())));
    let done = store.commit(rate).await.unwrap();
    assert_eq!((done.ticket_id, done.conversation.ticket_id), (None, None), "the conversation has no ticket any more");
    let after = kinds(store.ticket_events(tid).await.unwrap());
    assert_eq!(after.len(), 3);
    assert_eq!(after[2], (63, rated));
    let lines = store.transcript(c.id, 10).await.unwrap();
    assert_eq!((lines.len(), lines[0].ticket_id), (1, None));
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
    let claimed = store.claim_destinations(&targets, "a", 50_000, 10, 5_000).await.unwrap();
    let (lease, first) = claimed.into_iter().find(|(l, _)| l.dest == "test/pruned").expect("the chat is due");
    store.outbox_fail(&lease, first.id, "blocked", 52_000, None).await.unwrap();
    let second = store.outbox_next(&lease, 50_000, 5_000).await.unwrap().expect("two items");
    assert_ne!(first.id, second.id);
    store.outbox_retry(&lease, second.id, 1, 1_000).await.unwrap();
    // The metrics' backlog counts what waits, as reading it finds: the item retried, not the one
    // given up on.
    let pending = store.outbox_pending().await.unwrap();
    assert!(pending.iter().any(|i| i.id == second.id) && !pending.iter().any(|i| i.id == first.id));
    let backlog = store.backlog().await.unwrap().outbox_pending;
    assert_eq!(backlog.values().sum::<u64>(), pending.len() as u64);
    assert_eq!(backlog.get("test"), Some(&(pending.iter().filter(|i| i.item.target() == "test").count() as u64)), "{backlog:?}");
    assert_eq!(store.prune_failed_outbox(52_000).await.unwrap(), 0, "it failed at 52 s: kept until then");
    assert_eq!(store.prune_failed_outbox(52_001).await.unwrap(), 1);
    assert_eq!(store.prune_failed_outbox(i64::MAX).await.unwrap(), 0, "pending items are never pruned, however old");
    assert!(store.outbox_pending().await.unwrap().iter().any(|i| i.id == second.id));
    clear_outbox(store).await;
    assert!(store.backlog().await.unwrap().outbox_pending.is_empty());
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
    commit.transcript.push(Line::from((Author::Customer, "hello".into())));
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
    commit.transcript.push(Line::from((Author::Customer, "被盗了".into())));
    commit.transcript.push(Line::from((Author::Bot, "请立即修改密码".into())));
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
    // A change planned from a ticket that has moved since (another agent took it) is refused,
    // and changes nothing, even with the conversation's current version.
    let mut stale = Commit::new(conv.clone(), 40);
    stale.update_ticket = Some(t2.clone());
    stale.ticket_was = Some((TicketStatus::Assigned, Some("desk:bob".into())));
    stale.transcript.push(Line::from((Author::Bot, "never".into())));
    assert!(matches!(store.commit(stale).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.ticket(tid).await.unwrap().unwrap().status, TicketStatus::Queued);
    assert_eq!(store.transcript(c.id, 10).await.unwrap().len(), 2, "the refused commit wrote nothing");
    let mut close = Commit::new(conv, 40);
    close.update_ticket = Some(t2);
    close.ticket_was = Some((TicketStatus::Queued, None));
    close.events.push(TicketEventKind::Closed { agent: "desk:alice".into() });
    close.transcript.push(Line::from((Author::Agent("desk:alice".into()), "done".into())));
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
    clear_outbox(store).await;
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
    // Counted without reading the queue: by priority, and each ticket's place in it.
    let counts = store.queue_counts().await.unwrap();
    assert_eq!(counts[Priority::Normal as usize], 2);
    assert_eq!((counts[Priority::Urgent as usize], counts[Priority::Low as usize], counts[Priority::High as usize]), (1, 1, 0));
    for (place, id) in queue.iter().enumerate() {
        assert_eq!(store.queue_position(*id).await.unwrap(), Some(place + 1), "ticket {id}");
    }
    assert_eq!(store.queue_position(999_999).await.unwrap(), None);
    // The metrics' backlog, counted: the oldest waiting ticket (opened at 50, unless an earlier
    // step left an older one), as reading the queue finds it.
    let backlog = store.backlog().await.unwrap();
    let oldest = store.tickets(&[TicketStatus::Queued]).await.unwrap().iter().map(|t| t.created_at).min();
    assert_eq!(backlog.oldest_queued_at, oldest);
    assert!(backlog.oldest_queued_at.is_some_and(|at| at <= 50));
    assert!(store.tickets(&[TicketStatus::Assigned]).await.unwrap().is_empty());
}

/// Delivers (removes) every pending item, as a sender that owns all targets would.
async fn clear_outbox(store: &dyn Store) {
    loop {
        let mut targets: Vec<String> = store.outbox_pending().await.unwrap().iter().map(|i| i.item.target()).collect();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return;
        }
        let now = i64::MAX / 4;
        for (lease, first) in store.claim_destinations(&targets, "cleaner", now, 1_000, 1_000).await.unwrap() {
            let mut item = Some(first);
            while let Some(i) = item {
                store.outbox_done(&lease, i.id).await.unwrap();
                item = store.outbox_next(&lease, now, 1_000).await.unwrap();
            }
        }
    }
}

async fn outbox_leases_keep_each_destination_in_order(store: &dyn Store) {
    let o = store.open_conversation(new_conv("o")).await.unwrap();
    let p = store.open_conversation(new_conv("p")).await.unwrap();
    let say = |key: &ConversationKey, text: &str| Outgoing::Customer { key: key.clone(), reply: Reply::text(text), ticket_id: None };
    let mut commit = Commit::new(o.clone(), 1_000);
    for n in 0..3 {
        commit.outbox.push(say(&o.key, &format!("m{n}")));
    }
    commit.outbox.push(Outgoing::Desk { desk: "elsewhere".into(), ticket_id: Some(1), notice: DeskNotice::Opened, by: None });
    store.commit(commit).await.unwrap();
    let mut commit = Commit::new(p.clone(), 1_001);
    commit.outbox.push(say(&p.key, "p0"));
    store.commit(commit).await.unwrap();
    let text = |i: &OutboxItem| match &i.item {
        Outgoing::Customer { reply, .. } => reply.text.clone(),
        Outgoing::Desk { .. } => "desk".into(),
    };
    let targets = vec!["test".to_string()];

    assert!(store.claim_destinations(&targets, "a", 999, 10, 5_000).await.unwrap().is_empty(), "nothing is due before its time");
    let claimed = store.claim_destinations(&targets, "a", 1_001, 10, 5_000).await.unwrap();
    let got: Vec<(String, String)> = claimed.iter().map(|(l, i)| (l.dest.clone(), text(i))).collect();
    assert_eq!(got, [("test/o".into(), "m0".into()), ("test/p".into(), "p0".into())], "each destination's head, longest waiting first");
    assert_ne!(claimed[0].0.token, claimed[1].0.token);
    let (lease_o, m0) = claimed[0].clone();
    let (lease_p, _) = claimed[1].clone();
    assert!(store.claim_destinations(&targets, "b", 1_001, 10, 5_000).await.unwrap().is_empty(), "leased destinations are hidden");
    assert_eq!(store.claim_destinations(&targets, "a", 1_001, 1, 5_000).await.unwrap().len(), 0, "even from their own sender");

    store.outbox_done(&lease_o, m0.id).await.unwrap();
    let m1 = store.outbox_next(&lease_o, 1_000, 5_000).await.unwrap().expect("m1 is due");
    assert_eq!(text(&m1), "m1");
    let forged = Lease { dest: lease_o.dest.clone(), token: "forged".into() };
    assert!(matches!(store.outbox_done(&forged, m1.id).await, Err(StoreError::LeaseLost(_))), "only the lease holder acts");
    assert!(matches!(store.outbox_retry(&forged, m1.id, 9, 0).await, Err(StoreError::LeaseLost(_))));
    assert!(matches!(store.outbox_fail(&forged, m1.id, "no", 0, None).await, Err(StoreError::LeaseLost(_))));

    // A retry delays the destination, not only its item, and releases it.
    store.outbox_retry(&lease_o, m1.id, 1, 2_000).await.unwrap();
    assert!(store.claim_destinations(&targets, "b", 1_999, 10, 5_000).await.unwrap().is_empty(), "m2 waits behind m1's retry");
    let again = store.claim_destinations(&targets, "b", 2_000, 10, 5_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((text(&again[0].1), again[0].1.attempts), ("m1".to_string(), 1), "the retried item comes first, counted");
    let lease_o2 = again[0].0.clone();
    assert!(matches!(store.outbox_next(&lease_o, 2_000, 5_000).await, Err(StoreError::LeaseLost(_))), "the old lease is gone");

    // A lease that is not renewed expires: its destination goes to another sender.
    let taken = store.claim_destinations(&targets, "b", 6_001, 10, 5_000).await.unwrap();
    assert_eq!(taken.iter().map(|(l, _)| l.dest.as_str()).collect::<Vec<_>>(), ["test/p"], "a's lease on p ran out at 6.001 s");
    assert!(matches!(store.outbox_done(&lease_p, taken[0].1.id).await, Err(StoreError::LeaseLost(_))), "a's late answer changes nothing");
    store.outbox_done(&taken[0].0, taken[0].1.id).await.unwrap();
    assert_eq!(store.outbox_next(&taken[0].0, 6_000, 5_000).await.unwrap(), None, "p is done; its lease is released");

    // Renewal keeps a living sender's leases; releasing them hands them over at once.
    let held: Vec<Lease> = vec![lease_o2.clone()];
    assert_eq!(store.renew_leases(&held, 20_000).await.unwrap(), 1);
    assert_eq!(store.renew_leases(std::slice::from_ref(&lease_o), 20_000).await.unwrap(), 0, "a lost lease is not renewed");
    assert!(store.claim_destinations(&targets, "c", 10_000, 10, 5_000).await.unwrap().is_empty(), "renewed until 20 s");
    assert!(store.release_leases("b").await.unwrap() >= 1);
    let c = store.claim_destinations(&targets, "c", 10_000, 10, 5_000).await.unwrap();
    assert_eq!(c.len(), 1);
    let (lease_c, m1) = c[0].clone();
    assert_eq!(text(&m1), "m1");
    store.outbox_fail(&lease_c, m1.id, "blocked", 10_000, None).await.unwrap();
    let m2 = store.outbox_next(&lease_c, 10_000, 5_000).await.unwrap().expect("failed items do not hold the line");
    assert_eq!(text(&m2), "m2");
    store.outbox_done(&lease_c, m2.id).await.unwrap();
    assert_eq!(store.outbox_next(&lease_c, 10_000, 5_000).await.unwrap(), None);
    assert!(matches!(store.outbox_next(&lease_c, 10_000, 5_000).await, Err(StoreError::LeaseLost(_))), "released when done");
    let pending: Vec<_> = store.outbox_pending().await.unwrap().into_iter().filter(|i| i.item.target() == "test").collect();
    assert!(pending.is_empty(), "{pending:?}");

    let desk = store.claim_destinations(&["desk:elsewhere".to_string()], "d", 10_000, 10, 5_000).await.unwrap();
    assert_eq!(desk.len(), 1, "each target is claimed by whoever serves it");
    store.outbox_done(&desk[0].0, desk[0].1.id).await.unwrap();
}

async fn two_senders_share_a_backlog_without_sending_twice(store: &dyn Store) {
    let mut expected = Vec::new();
    for chat in 0..6 {
        let c = store.open_conversation(new_conv(&format!("share{chat}"))).await.unwrap();
        let mut commit = Commit::new(c.clone(), 30_000);
        for n in 0..4 {
            let text = format!("{chat}-{n}");
            expected.push((c.key.chat.clone(), text.clone()));
            commit.outbox.push(Outgoing::Customer { key: c.key.clone(), reply: Reply::text(text), ticket_id: None });
        }
        store.commit(commit).await.unwrap();
    }
    let targets = vec!["test".to_string()];
    let sent = std::sync::Mutex::new(Vec::new());
    let sender = |owner: &'static str| {
        let targets = &targets;
        let sent = &sent;
        async move {
            loop {
                let claimed = store.claim_destinations(targets, owner, 40_000, 2, 60_000).await.unwrap();
                if claimed.is_empty() {
                    return;
                }
                for (lease, first) in claimed {
                    let mut item = Some(first);
                    while let Some(i) = item {
                        if let Outgoing::Customer { key, reply, .. } = &i.item {
                            sent.lock().unwrap().push((key.chat.clone(), reply.text.clone()));
                        }
                        store.outbox_done(&lease, i.id).await.unwrap();
                        tokio::task::yield_now().await;
                        item = store.outbox_next(&lease, 40_000, 60_000).await.unwrap();
                    }
                }
            }
        }
    };
    tokio::join!(sender("one"), sender("two"));
    let sent = sent.into_inner().unwrap();
    let mut sorted = sent.clone();
    sorted.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(sorted, want, "every item once");
    for chat in 0..6 {
        let order: Vec<&String> = sent.iter().filter(|(c, _)| *c == format!("share{chat}")).map(|(_, t)| t).collect();
        let want: Vec<String> = (0..4).map(|n| format!("{chat}-{n}")).collect();
        assert_eq!(order, want.iter().collect::<Vec<_>>(), "in order within a chat");
    }
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
    store.set_values(&[("links.a", "7", "900"), ("links.b", "900", "7"), ("telegram", "offset", "43")]).await.unwrap();
    assert_eq!(store.get_value("links.a", "7").await.unwrap().as_deref(), Some("900"));
    assert_eq!(store.get_value("links.b", "900").await.unwrap().as_deref(), Some("7"));
    assert_eq!(store.get_value("telegram", "offset").await.unwrap().as_deref(), Some("43"), "set_values overwrites too");
}

async fn a_namespace_is_deleted_alone(store: &dyn Store) {
    store.set_values(&[("old.marks", "b", "2"), ("old.marks", "a", "1"), ("old.marksx", "a", "kept"), ("old", "a", "kept")]).await.unwrap();
    store.mark_processed("old.marks", "a", 1_000).await.unwrap();
    assert_eq!(store.delete_values("old.marks").await.unwrap(), 2);
    assert!(store.values("old.marks").await.unwrap().is_empty());
    assert_eq!(store.get_value("old.marks", "a").await.unwrap(), None);
    assert_eq!(store.get_value("old.marksx", "a").await.unwrap().as_deref(), Some("kept"), "only that namespace");
    assert_eq!(store.get_value("old", "a").await.unwrap().as_deref(), Some("kept"));
    assert_eq!(store.values("telegram").await.unwrap().len(), 3, "the other namespaces are untouched");
    assert!(store.is_processed("old.marks", "a").await.unwrap(), "processed ids are not values");
    assert_eq!(store.delete_values("old.marks").await.unwrap(), 0, "nothing left");
    assert_eq!(store.delete_values("nothing here").await.unwrap(), 0);
    store.set_value("old.marks", "a", "again").await.unwrap();
    assert_eq!(store.values("old.marks").await.unwrap(), [("a".into(), "again".into())], "the namespace can be written again");
}

async fn values_are_written_with_their_commit_or_not_at_all(store: &dyn Store) {
    let c = store.open_conversation(new_conv("values")).await.unwrap();
    let mut stale = Commit::new(Conversation { version: c.version + 7, ..c.clone() }, 5);
    stale.values.push(("customer.blocks".into(), "suite:v".into(), "{}".into()));
    assert!(matches!(store.commit(stale).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.get_value("customer.blocks", "suite:v").await.unwrap(), None, "a refused commit writes no value");
    let mut ok = Commit::new(c, 5);
    ok.values.push(("customer.blocks".into(), "suite:v".into(), "{\"by\":1}".into()));
    store.commit(ok).await.unwrap();
    assert_eq!(store.get_value("customer.blocks", "suite:v").await.unwrap().as_deref(), Some("{\"by\":1}"));
}

/// A conversation of `customer` in `chat` with a closed ticket (closed at `at`) holding texts.
async fn closed_ticket_with_texts(store: &dyn Store, chat: &str, customer: &str, at: i64) -> (i64, i64) {
    let c = store.open_conversation(NewConversation { customer_id: customer.into(), ..new_conv(chat) }).await.unwrap();
    let mut open = Commit::new(Conversation { owner: Owner::Queue, ..c.clone() }, at);
    open.open_ticket = Some(Ticket {
        key: c.key.clone(),
        customer_id: customer.into(),
        customer_name: format!("Name of {customer}"),
        status: TicketStatus::Closed,
        created_at: at,
        updated_at: at,
        ..ticket(Priority::Normal, at)
    });
    open.events.push(TicketEventKind::CustomerMessage { text: "my card was charged twice".into() });
    open.events.push(TicketEventKind::Note { agent: "desk:alice".into(), text: "called the bank".into() });
    open.events.push(TicketEventKind::Closed { agent: "desk:alice".into() });
    open.transcript.push(Line::from((Author::Customer, "my card was charged twice".into())));
    open.outbox.push(Outgoing::Customer { key: c.key.clone(), reply: Reply::text("pending to them"), ticket_id: None });
    let done = store.commit(open).await.unwrap();
    // A line outside the ticket, later.
    let mut later = Commit::new(Conversation { owner: Owner::Bot, ticket_id: None, ..done.conversation.clone() }, at + 1);
    later.transcript.push(Line::from((Author::Customer, "thanks".into())));
    store.commit(later).await.unwrap();
    (c.id, done.ticket_id.unwrap())
}

async fn old_transcript_lines_are_deleted_in_batches(store: &dyn Store) {
    let c = store.open_conversation(new_conv("retention")).await.unwrap();
    let mut commit = Commit::new(c.clone(), 1_000);
    for k in 0..5 {
        commit.transcript.push(Line::from((Author::Customer, format!("old {k}"))));
    }
    let done = store.commit(commit).await.unwrap();
    let mut newer = Commit::new(done.conversation, 9_000);
    newer.transcript.push(Line::from((Author::Customer, "new".into())));
    store.commit(newer).await.unwrap();
    // Other checks left lines before 5,000 too: delete in batches until none is left.
    assert_eq!(store.prune_transcript(5_000, 2).await.unwrap(), 2, "one batch at most");
    while store.prune_transcript(5_000, 2).await.unwrap() > 0 {}
    let left: Vec<String> = store.transcript(c.id, 100).await.unwrap().into_iter().map(|l| l.text).collect();
    assert_eq!(left, vec!["new".to_string()]);
    assert_eq!(store.prune_transcript(5_000, 100).await.unwrap(), 0);
}

async fn closed_tickets_lose_their_texts_once(store: &dyn Store) {
    let (conv, tid) = closed_ticket_with_texts(store, "closed-old", "cust-closed", 20_000).await;
    let (_, recent) = closed_ticket_with_texts(store, "closed-new", "cust-closed-new", 90_000).await;
    assert!(store.erase_closed_tickets(50_000, 1_000, "retention").await.unwrap() >= 1);
    assert_eq!(store.erase_closed_tickets(50_000, 1_000, "retention").await.unwrap(), 0, "each ticket once");
    let events = store.ticket_events(tid).await.unwrap();
    assert!(events.iter().any(|e| e.kind == TicketEventKind::CustomerMessage { text: "[erased]".into() }), "{events:?}");
    assert!(events.iter().any(|e| e.kind == TicketEventKind::Note { agent: "desk:alice".into(), text: "[erased]".into() }));
    assert!(events.iter().any(|e| matches!(&e.kind, TicketEventKind::Erased { by } if by == "retention")));
    assert!(events.iter().any(|e| e.kind == TicketEventKind::Closed { agent: "desk:alice".into() }), "who did what stays");
    let t = store.ticket(tid).await.unwrap().unwrap();
    assert!(t.fields.iter().all(|f| f.value == "[erased]"), "{:?}", t.fields);
    assert_eq!(t.status, TicketStatus::Closed);
    let lines: Vec<String> = store.transcript(conv, 100).await.unwrap().into_iter().map(|l| l.text).collect();
    assert_eq!(lines, vec!["thanks".to_string()], "the ticket's lines go, the rest stays");
    let kept = store.ticket_events(recent).await.unwrap();
    assert!(kept.iter().any(|e| e.kind == TicketEventKind::Note { agent: "desk:alice".into(), text: "called the bank".into() }));
    clear_outbox(store).await;
}

async fn a_customer_is_erased_and_nobody_else(store: &dyn Store) {
    let (conv, tid) = closed_ticket_with_texts(store, "forget-1", "cust-forget", 30_000).await;
    let (conv2, _) = closed_ticket_with_texts(store, "forget-2", "cust-forget", 31_000).await;
    let (other, other_ticket) = closed_ticket_with_texts(store, "keep", "cust-keep", 32_000).await;
    assert_eq!(store.erase_customer("suite", "nobody", "operator:x", 40_000).await.unwrap(), Erased::default());
    let erased = store.erase_customer(&key("forget-1").channel, "cust-forget", "operator:x", 40_000).await.unwrap();
    assert_eq!((erased.conversations, erased.tickets, erased.transcript_lines), (2, 2, 4), "{erased:?}");
    assert!(erased.outbox_items >= 2, "the undelivered replies to them go: {erased:?}");
    for id in [conv, conv2] {
        assert!(store.transcript(id, 100).await.unwrap().is_empty());
        let c = store.conversation(id).await.unwrap().unwrap();
        assert_eq!((c.customer_id.as_str(), c.customer_name.as_str(), c.ticket_id), ("[erased]", "[erased]", None));
        assert_ne!(c.key, key("forget-1"));
    }
    let t = store.ticket(tid).await.unwrap().unwrap();
    assert_eq!((t.customer_id.as_str(), t.customer_name.as_str(), t.status), ("[erased]", "[erased]", TicketStatus::Closed));
    assert!(store.ticket_events(tid).await.unwrap().iter().all(|e| !format!("{:?}", e.kind).contains("charged")));
    // Their chat is a new conversation if they write again.
    let again = store.open_conversation(NewConversation { customer_id: "cust-forget".into(), ..new_conv("forget-1") }).await.unwrap();
    assert!(again.id != conv && again.id != conv2);
    // Nobody else is touched.
    assert_eq!(store.transcript(other, 100).await.unwrap().len(), 2);
    assert_eq!(store.ticket(other_ticket).await.unwrap().unwrap().customer_id, "cust-keep");
    assert!(store.outbox_pending().await.unwrap().iter().any(|i| i.item.destination().ends_with("/keep")));
    clear_outbox(store).await;
}

async fn outcomes_are_kept_on_customer_lines_and_streamed(store: &dyn Store) {
    use futures_util::StreamExt;
    let c = store.open_conversation(new_conv("outcomes")).await.unwrap();
    let mut conv = c.clone();
    for (k, at) in [(0, 700_000), (1, 700_100), (2, 800_000)] {
        let mut commit = Commit::new(conv.clone(), at);
        commit.transcript.push(Line::from((Author::Customer, format!("question {k}"))));
        commit.transcript.push(Line::from((Author::Bot, format!("answer {k}"))));
        commit.outcome = Some(switchboard_core::types::Outcome {
            intent: (k != 1).then(|| "account_locked".to_string()),
            action: if k == 1 { "fallback".into() } else { "answer".into() },
        });
        conv = store.commit(commit).await.unwrap().conversation;
    }
    let lines: Vec<_> = store.outcome_lines(700_000, 800_000).collect::<Vec<_>>().await.into_iter().map(Result::unwrap).collect();
    let got: Vec<(String, Option<String>, String)> = lines
        .into_iter()
        .map(|l| {
            let o = l.outcome.unwrap();
            (l.text, o.intent, o.action)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("question 0".to_string(), Some("account_locked".to_string()), "answer".to_string()),
            ("question 1".to_string(), None, "fallback".to_string()),
        ],
        "customer lines only, in [since, until), oldest first"
    );
    let all = store.transcript(c.id, 10).await.unwrap();
    assert!(all.iter().filter(|l| l.author == Author::Bot).all(|l| l.outcome.is_none()));
}
