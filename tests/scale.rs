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
    let url = switchboard_core::store::suite::fresh_postgres().await;
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
    let sent = a.rec.sent_to("d").len() + b.rec.sent_to("d").len();
    let conv = store.tickets(&[]).await.unwrap(); // no tickets were opened
    assert!(conv.is_empty());
    let lines = (1..=10).map(|id| id as i64);
    let mut bot_lines = 0;
    let mut customer_lines = 0;
    for id in lines {
        for l in store.transcript(id, 1000).await.unwrap() {
            if l.text.starts_with("hello ") || l.text.starts_with("hi ") {
                customer_lines += 1;
            }
            if l.author == Author::Bot && store.conversation(id).await.unwrap().unwrap().key.chat == "d" {
                bot_lines += 1;
            }
        }
    }
    assert_eq!(customer_lines, 20, "every message is in the transcript");
    assert_eq!(sent, bot_lines, "every reply sent exactly once");
    assert_eq!(a.rec.sent_to("c").len() + b.rec.sent_to("c").len(), 1);
}
