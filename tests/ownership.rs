//! One owner per ticket, checked by the store, whatever the number of processes: two engines
//! (two instances, or `run` and `desk`) on one SQLite file or one PostgreSQL database race to claim,
//! close, release and reply; exactly one claim wins, the loser is told who has the ticket, the
//! customer hears of one agent, the ticket and the conversation agree on the owner, and the bot
//! stays silent while an agent owns the conversation. A held read forces the interleaving that
//! used to let a stale claim through, so the re-plan on conflict runs every time.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::{Harness, alice, bob};
use switchboard_core::EngineError;
use switchboard_core::dialogue::Action;
use switchboard_core::engine::{AgentCommand, AgentOutcome};
use switchboard_core::store::{SqlStore, Store};
use switchboard_core::types::{Author, Owner, Ticket, TicketStatus};
use switchboard_testkit::faulty::Faulty;

async fn sqlite_pair() -> (Harness, Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let a = Harness::new(Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap()));
    let b = Harness::new(Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap()));
    (a, b, dir)
}

async fn postgres_pair() -> (Harness, Harness) {
    let url = switchboard_testkit::store_suite::fresh_postgres().await;
    let a = Harness::new(Arc::new(SqlStore::connect(&url).await.unwrap()));
    let b = Harness::new(Arc::new(SqlStore::connect(&url).await.unwrap()));
    (a, b)
}

/// The owner as the ticket and the conversation each record it; they must agree.
async fn owners(store: &dyn Store, ticket: i64) -> (Ticket, Owner) {
    let t = store.ticket(ticket).await.unwrap().unwrap();
    let conv = store.conversation(t.conversation_id).await.unwrap().unwrap();
    let expected = match (&t.status, &t.agent) {
        (TicketStatus::Assigned, Some(a)) => Owner::Agent(a.clone()),
        (TicketStatus::Queued, _) => Owner::Queue,
        (TicketStatus::Closed, _) => Owner::Bot,
        other => panic!("an assigned ticket without an agent: {other:?}"),
    };
    assert_eq!(conv.owner, expected, "the ticket ({:?}, {:?}) and the conversation disagree", t.status, t.agent);
    (t, conv.owner)
}

async fn joined_lines(store: &dyn Store, ticket: &Ticket) -> usize {
    store
        .transcript(ticket.conversation_id, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.author == Author::Bot && (l.text.contains("has joined") || l.text.contains("已接入")))
        .count()
}

/// Two agents on two engines claim the same tickets at the same moment, many times.
async fn claims_race(a: &Harness, b: &Harness, rounds: usize) {
    let store = a.engine.store().clone();
    let (al, bo) = (alice(), bob());
    for round in 0..rounds {
        let chat = format!("race{round}");
        let tid = a.say(&chat, "转人工").await.ticket_id.unwrap();
        let (ra, rb) = tokio::join!(a.engine.agent(&al, AgentCommand::Claim(tid)), b.engine.agent(&bo, AgentCommand::Claim(tid)));
        let (winner, loser_err) = match (ra, rb) {
            (Ok(_), Err(e)) => ("desk:alice", e),
            (Err(e), Ok(_)) => ("desk:bob", e),
            (ra, rb) => panic!("round {round}: exactly one claim wins, got {ra:?} and {rb:?}"),
        };
        assert!(
            matches!(&loser_err, EngineError::InvalidTicketState { why, .. } if why.contains("already with")),
            "the loser is told who has it: {loser_err}"
        );
        let (t, owner) = owners(&*store, tid).await;
        assert_eq!(t.agent.as_deref(), Some(winner));
        assert_eq!(owner, Owner::Agent(winner.into()));
        assert_eq!(joined_lines(&*store, &t).await, 1, "the customer hears of one agent");
        let events = store.ticket_events(tid).await.unwrap();
        let claims = events.iter().filter(|e| matches!(e.kind, switchboard_core::types::TicketEventKind::Claimed { .. })).count();
        assert_eq!(claims, 1, "one claim on the record");
        // The bot stays silent while the agent owns the conversation, on either engine.
        assert_eq!(b.say(&chat, "my account is locked").await.action, Action::Silent);
    }
}

/// The owner closes while the other agent claims; then the owner releases while the other replies.
async fn close_and_release_race(a: &Harness, b: &Harness, rounds: usize) {
    let store = a.engine.store().clone();
    let (al, bo) = (alice(), bob());
    for round in 0..rounds {
        let chat = format!("close{round}");
        let tid = a.say(&chat, "转人工").await.ticket_id.unwrap();
        a.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
        let (close, claim) = tokio::join!(a.engine.agent(&al, AgentCommand::Close(tid)), b.engine.agent(&bo, AgentCommand::Claim(tid)));
        assert!(close.is_ok(), "the owner's close goes through: {close:?}");
        assert!(claim.is_err(), "a claim racing the owner's close never takes the ticket: {claim:?}");
        let (t, owner) = owners(&*store, tid).await;
        assert_eq!((t.status, owner), (TicketStatus::Closed, Owner::Bot));
        assert_eq!(b.say(&chat, "my account is locked").await.action, Action::Answer, "back with the bot");

        let chat = format!("release{round}");
        let tid = a.say(&chat, "转人工").await.ticket_id.unwrap();
        a.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
        let (release, reply) =
            tokio::join!(a.engine.agent(&al, AgentCommand::Release(tid)), b.engine.agent(&bo, AgentCommand::Reply(tid, "bob here".into())));
        assert!(release.is_ok(), "{release:?}");
        let (t, owner) = owners(&*store, tid).await;
        match reply {
            // Bob's reply came after the release: it claimed the ticket and went out.
            Ok(AgentOutcome::Done(_)) => {
                assert_eq!(t.agent.as_deref(), Some("desk:bob"));
                assert_eq!(owner, Owner::Agent("desk:bob".into()));
            }
            // Or before it: refused, and the ticket is back in the queue.
            Err(EngineError::InvalidTicketState { .. }) => assert_eq!((t.status, owner), (TicketStatus::Queued, Owner::Queue)),
            other => panic!("{other:?}"),
        }
        let said: Vec<String> = store.transcript(t.conversation_id, 100).await.unwrap().into_iter().map(|l| l.text).collect();
        assert_eq!(said.iter().filter(|l| *l == "bob here").count(), usize::from(t.agent.as_deref() == Some("desk:bob")));
        assert_ne!(b.say(&chat, "my account is locked").await.action, Action::Answer, "queued or owned: the bot does not answer");
    }
}

#[tokio::test]
async fn two_engines_on_one_sqlite_file_keep_one_owner() {
    let (a, b, _dir) = sqlite_pair().await;
    claims_race(&a, &b, 15).await;
    close_and_release_race(&a, &b, 8).await;
}

#[tokio::test]
async fn two_engines_on_one_postgres_database_keep_one_owner() {
    let (a, b) = postgres_pair().await;
    claims_race(&a, &b, 15).await;
    close_and_release_race(&a, &b, 8).await;
}

/// The interleaving that used to hand the ticket over silently: B reads the ticket (queued), A's
/// claim commits, then B reads the conversation (already A's) and commits its own claim. The store
/// refuses B's stale ticket; B plans again from what is stored and is told Alice has it.
async fn a_stale_claim_is_refused_and_planned_again(url_or_dir: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let (store_a, store_b): (Arc<dyn Store>, SqlStore) = match url_or_dir {
        Some(url) => (Arc::new(SqlStore::connect(url).await.unwrap()), SqlStore::connect(url).await.unwrap()),
        None => (Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap()), SqlStore::open_sqlite(dir.path()).await.unwrap()),
    };
    let gated = Arc::new(Faulty::new(store_b));
    let a = Harness::new(store_a);
    let b = Harness::new(gated.clone());
    let tid = a.say("stale", "转人工").await.ticket_id.unwrap();

    let (reached, release) = gated.hold_next_conversation_read();
    let b_engine = b.engine.clone();
    let bob_claims = tokio::spawn(async move { b_engine.agent(&bob(), AgentCommand::Claim(tid)).await });
    reached.await.unwrap();
    // B has read the ticket and waits before reading the conversation: A claims now.
    a.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    release.send(()).unwrap();
    let err = bob_claims.await.unwrap().unwrap_err();
    assert!(matches!(&err, EngineError::InvalidTicketState { why, .. } if why.contains("desk:alice")), "{err}");
    assert!(b.engine.conflicts() >= 1, "B's first plan was refused by the store and planned again");
    let (t, _) = owners(&*a.engine.store().clone(), tid).await;
    assert_eq!(t.agent.as_deref(), Some("desk:alice"));
    assert_eq!(joined_lines(&**a.engine.store(), &t).await, 1);
}

#[tokio::test]
async fn a_stale_claim_is_refused_on_sqlite() {
    a_stale_claim_is_refused_and_planned_again(None).await;
}

#[tokio::test]
async fn a_stale_claim_is_refused_on_postgres() {
    let url = switchboard_testkit::store_suite::fresh_postgres().await;
    a_stale_claim_is_refused_and_planned_again(Some(&url)).await;
}
