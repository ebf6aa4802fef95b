//! Satisfaction ratings end to end, on the memory store and SQLite: an agent closes a ticket, the
//! customer is asked to rate the help with five buttons, and the rating (pressed, typed, or typed
//! with a comment) goes on the closed ticket once; anything else drops the question; turned off,
//! nothing is asked; the question survives a restart.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::{Harness, alice, answer, okpay};
use switchboard_core::dialogue::{Action, Pending, Phrase, rating_payload};
use switchboard_core::engine::{AgentCommand, EngineConfig};
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{DeskNotice, Reply, TicketEventKind};
use switchboard_core::{Lang, hant};

/// The customer in `chat` asks for a person; Alice claims the ticket and closes it. Returns the
/// ticket and what the customer was sent when it closed.
async fn served_and_closed(h: &Harness, chat: &str, ask: &str) -> (i64, Vec<Reply>) {
    let tid = h.say(chat, ask).await.ticket_id.expect("a ticket");
    h.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    h.engine.agent(&alice(), AgentCommand::Reply(tid, "Done, it works again.".into())).await.unwrap();
    h.engine.flush().await.unwrap();
    h.replies(chat);
    h.engine.agent(&alice(), AgentCommand::Close(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    (tid, h.replies(chat))
}

async fn ratings(h: &Harness, tid: i64) -> Vec<(u8, Option<String>)> {
    h.engine
        .store()
        .ticket_events(tid)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            TicketEventKind::Rated { score, comment } => Some((score, comment)),
            _ => None,
        })
        .collect()
}

fn desk_ratings(h: &Harness, tid: i64) -> Vec<(u8, Option<String>)> {
    h.desk
        .notices()
        .into_iter()
        .filter_map(|(t, n)| match n {
            DeskNotice::Rated { score, comment } if t == tid => Some((score, comment)),
            _ => None,
        })
        .collect()
}

/// Pressed, typed, typed with a comment: each taken once, on the closed ticket, and thanked.
async fn rated_once_on_the_closed_ticket(h: &Harness) {
    // Pressed.
    let (tid, closing) = served_and_closed(h, "press", "human").await;
    assert_eq!(closing.len(), 2, "{closing:?}");
    assert_eq!(closing[0].text, Phrase::BackToBot.text(Lang::En));
    assert_eq!(closing[1].text, Phrase::RatingAsk.text(Lang::En));
    let scores: Vec<Option<u8>> = closing[1].choices.iter().map(|c| rating_payload(&c.payload)).collect();
    assert_eq!(scores, [Some(1), Some(2), Some(3), Some(4), Some(5)], "five buttons, 1 to 5");
    assert!(matches!(h.conversation("press").await.state.pending, Pending::Rating { ticket, .. } if ticket == tid));

    let rated = h.press("press", &closing[1].choices[3].payload).await;
    assert_eq!((rated.action, rated.ticket_id), (Action::Rated, Some(tid)));
    assert_eq!(h.replies("press").iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), [Phrase::RatingThanks.text(Lang::En)]);
    assert_eq!(ratings(h, tid).await, [(4, None)]);
    assert_eq!(desk_ratings(h, tid), [(4, None)], "the desks are told");
    assert_eq!(h.conversation("press").await.state.pending, Pending::Nothing);
    // A second press (the buttons are still on screen) is refused, politely.
    let again = h.press("press", &closing[1].choices[4].payload).await;
    assert_eq!(again.action, Action::Answer);
    assert_eq!(h.replies("press")[0].text, Phrase::RatingClosed.text(Lang::En));
    assert_eq!(ratings(h, tid).await, [(4, None)], "a rating is taken once");
    let lines = h.engine.store().transcript(h.conversation("press").await.id, 100).await.unwrap();
    assert!(lines.iter().any(|l| l.text == "[4 ★★★★]"), "the press is kept as its label");

    // Typed, in Chinese: the question was asked in Chinese.
    let (tid, closing) = served_and_closed(h, "typed", "转人工").await;
    assert_eq!(closing[1].text, Phrase::RatingAsk.text(Lang::Zh));
    let rated = h.say("typed", "5").await;
    assert_eq!((rated.action, rated.ticket_id), (Action::Rated, Some(tid)));
    assert_eq!(h.replies("typed")[0].text, Phrase::RatingThanks.text(Lang::Zh));
    let twice = h.say("typed", "5").await;
    assert_ne!(twice.action, Action::Rated, "typed again: an ordinary message");
    assert_eq!(ratings(h, tid).await, [(5, None)]);

    // With a comment after the number.
    let (tid, _) = served_and_closed(h, "comment", "human").await;
    assert_eq!(h.say("comment", "4 thanks, fast").await.action, Action::Rated);
    assert_eq!(ratings(h, tid).await, [(4, Some("thanks, fast".into()))]);
    assert_eq!(desk_ratings(h, tid), [(4, Some("thanks, fast".into()))]);
    let (tid, _) = served_and_closed(h, "zh-comment", "转人工").await;
    assert_eq!(h.say("zh-comment", "5 很快就解决了").await.action, Action::Rated);
    assert_eq!(ratings(h, tid).await, [(5, Some("很快就解决了".into()))]);

    // A secret in the comment is masked, as in every customer message.
    let (tid, _) = served_and_closed(h, "secret", "human").await;
    assert_eq!(h.say("secret", "3 my card 4242 4242 4242 4242 works again").await.action, Action::Rated);
    let comment = ratings(h, tid).await[0].1.clone().unwrap();
    assert!(comment.contains("[card •••• 4242]") && !comment.contains("4242 4242"), "{comment}");

    // Traditional characters for a customer who writes them.
    let (_, closing) = served_and_closed(h, "hant", "轉人工").await;
    assert_eq!(closing[1].text, hant::to_traditional(Phrase::RatingAsk.text(Lang::Zh)));
    assert_ne!(closing[1].text, Phrase::RatingAsk.text(Lang::Zh));
}

#[tokio::test]
async fn a_closed_ticket_is_rated_once_on_the_memory_store() {
    rated_once_on_the_closed_ticket(&Harness::new(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn a_closed_ticket_is_rated_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    rated_once_on_the_closed_ticket(&Harness::new(store)).await;
}

#[tokio::test]
async fn a_question_instead_of_a_rating_is_answered_and_drops_the_rating() {
    let h = Harness::new(Arc::new(MemoryStore::new()));
    let (tid, _) = served_and_closed(&h, "c", "human").await;
    let asked = h.say("c", "my account is locked").await;
    assert_eq!((asked.action, asked.intent.as_deref()), (Action::Answer, Some("account_locked")));
    assert_eq!(h.replies("c")[0].text, answer(&okpay(), "account_locked", Lang::En));
    // The answer's follow-up buttons are numbered now: "1" picks the first of them, no rating.
    let one = h.say("c", "1").await;
    assert_ne!(one.action, Action::Rated);
    assert!(ratings(&h, tid).await.is_empty());
    assert!(desk_ratings(&h, tid).is_empty());

    // Asking for a person instead hands off as usual.
    let (tid, _) = served_and_closed(&h, "d", "human").await;
    let again = h.say("d", "human").await;
    assert_eq!(again.action, Action::Handoff);
    assert_ne!(again.ticket_id, Some(tid));
    assert!(ratings(&h, tid).await.is_empty());
}

#[tokio::test]
async fn turned_off_nobody_is_asked() {
    let brain = Arc::new(switchboard_core::engine::Brain::new(okpay()));
    let config = EngineConfig { satisfaction: false, ..support::config() };
    let h = Harness::with_config(Arc::new(MemoryStore::new()), brain, config);
    let (tid, closing) = served_and_closed(&h, "c", "human").await;
    assert_eq!(closing.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), [Phrase::BackToBot.text(Lang::En)]);
    assert!(closing.iter().all(|r| r.choices.is_empty()));
    assert_eq!(h.conversation("c").await.state.pending, Pending::Nothing);
    assert_ne!(h.say("c", "5").await.action, Action::Rated);
    assert!(ratings(&h, tid).await.is_empty());
}

#[tokio::test]
async fn the_question_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tid;
    {
        let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
        let h = Harness::new(store.clone());
        tid = served_and_closed(&h, "r", "human").await.0;
        store.close().await;
    }
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let h = Harness::new(store);
    let rated = h.press("r", "rate:2").await;
    assert_eq!((rated.action, rated.ticket_id), (Action::Rated, Some(tid)));
    assert_eq!(ratings(&h, tid).await, [(2, None)]);
}
