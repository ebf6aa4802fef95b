//! Several bot instances on one PostgreSQL database: every message is answered exactly once, the
//! outbox is shared without double sends, and concurrent writers to one conversation lose nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::Harness;
use switchboard_core::store::SqlStore;
use switchboard_core::types::{Author, Content};

#[tokio::test]
async fn two_instances_share_one_postgres_database() {
    let url = switchboard_testkit::store_suite::fresh_postgres().await;
    let a = Harness::new(Arc::new(SqlStore::connect(&url).await.unwrap()));
    let b = Harness::new(Arc::new(SqlStore::connect(&url).await.unwrap()));

    // The same platform message reaching both instances (a webhook retried to another node).
    let msg = a.inbound("c", Content::Text("my account is locked".into()));
    let (ra, rb) = tokio::join!(a.engine.handle(msg.clone()), b.engine.handle(msg));
    let answered = [ra.unwrap().action, rb.unwrap().action].iter().filter(|x| **x == switchboard_core::dialogue::Action::Answer).count();
    assert_eq!(answered, 1, "answered once across instances");

    // Interleaved messages on one conversation from both instances.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (ha, hb) = (a.engine.clone(), b.engine.clone());
        let (ma, mb) = (a.inbound("d", Content::Text(format!("hello {i}"))), b.inbound("d", Content::Text(format!("hi {i}"))));
        tasks.push(tokio::spawn(async move { ha.handle(ma).await }));
        tasks.push(tokio::spawn(async move { hb.handle(mb).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Both instances deliver concurrently; each reply goes out once. A chat is leased to one
    // instance at a time, so its replies keep their order; deliver until nothing is pending (as
    // the outbox loop does).
    let store = a.engine.store();
    for _ in 0..100 {
        let (fa, fb) = tokio::join!(a.engine.flush(), b.engine.flush());
        fa.unwrap();
        fb.unwrap();
        if store.outbox_pending().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(store.outbox_pending().await.unwrap().is_empty(), "everything delivered");
    assert!(a.all_tickets().await.is_empty(), "no ticket was opened");
    let d = a.conversation("d").await;
    let lines = store.transcript(d.id, 1000).await.unwrap();
    let customer_lines = lines.iter().filter(|l| l.author == Author::Customer).count();
    assert_eq!(customer_lines, 20, "every message is in the transcript");
    // Every reply went out exactly once, and in the order the transcript has them: the chat is
    // leased to one instance at a time, so the two instances' sends never interleave out of order.
    let bot: Vec<String> = lines.iter().filter(|l| l.author == Author::Bot).map(|l| l.text.clone()).collect();
    let mut sent: Vec<(String, usize)> = Vec::new();
    for (rec, tag) in [(&a.rec, 0), (&b.rec, 1)] {
        for r in rec.sent_to("d") {
            sent.push((r.text, tag));
        }
    }
    assert_eq!(sent.len(), bot.len(), "every reply sent exactly once");
    let mut all: Vec<String> = sent.iter().map(|(t, _)| t.clone()).collect();
    all.sort();
    let mut want = bot.clone();
    want.sort();
    assert_eq!(all, want);
    for tag in [0, 1] {
        // What each instance sent is in transcript order (greedy subsequence match).
        let mine = sent.iter().filter(|(_, t)| *t == tag).map(|(text, _)| text);
        let mut rest = bot.iter();
        for text in mine {
            assert!(rest.any(|b| b == text), "instance {tag} sent {text:?} out of order");
        }
    }
    assert_eq!(a.rec.sent_to("c").len() + b.rec.sent_to("c").len(), 1);
}
