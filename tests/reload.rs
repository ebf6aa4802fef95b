//! Hot reload: editing an intent file changes the running bot's answers without a restart, and an
//! invalid edit is refused while the running pack keeps answering.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Harness, copy_pack};
use switchboard_core::Lang;
use switchboard_core::pack::Pack;
use switchboard_core::reload::PackWatcher;
use switchboard_core::store::MemoryStore;

async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn edits_are_picked_up_and_invalid_edits_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_pack(dir.path());
    let h = Harness::with_pack(Arc::new(MemoryStore::new()), Pack::load(dir.path()).unwrap());
    let watcher = PackWatcher::new(h.engine.clone(), dir.path().to_path_buf(), Default::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(watcher.clone().run(Duration::from_millis(50), async move {
        let _ = stop_rx.await;
    }));

    // Change the English answer of `thanks`.
    let file = dir.path().join("thanks.toml");
    let src = std::fs::read_to_string(&file).unwrap();
    let old = h.engine.brain().pack.intent("thanks").unwrap().text[&Lang::En].answer.clone();
    let edited = src.replacen(&old, "Glad to help, from the reloaded pack!", 1);
    assert_ne!(edited, src, "the answer is in the file as written");
    // Written at once: the watcher compares contents, not modification times.
    std::fs::write(&file, edited).unwrap();
    let engine = h.engine.clone();
    assert!(eventually(|| engine.brain().pack.intent("thanks").unwrap().text[&Lang::En].answer.contains("reloaded pack")).await);
    assert!(h.say("c", "thank you so much").await.replies[0].text.contains("reloaded pack"));

    // An invalid edit is refused; the running pack keeps answering.
    std::fs::write(dir.path().join("broken.toml"), "id = \"broken\"\nnonsense = 1\n").unwrap();
    assert!(watcher.reload_now().await.is_err());
    // The watcher itself sees the change too, and refuses it: wait for that, then check.
    assert!(eventually(|| watcher.loads().1 >= 2).await, "the watcher tried the broken pack: {:?}", watcher.loads());
    assert!(h.engine.brain().pack.intent("broken").is_none());
    assert!(h.say("c", "thank you so much").await.replies[0].text.contains("reloaded pack"));
    let _ = stop_tx.send(());
    task.await.unwrap();
}
