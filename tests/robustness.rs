//! No input panics: arbitrary Unicode (control, zero-width, bidi, surrogates-free scalars of every
//! plane) through normalisation, matching, the dialogue and the store.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use support::{Harness, okpay};
use switchboard_core::dialogue::Action;
use switchboard_core::matcher::Matcher;
use switchboard_core::matcher::normalize::{clean, normalize};
use switchboard_core::store::MemoryStore;
use switchboard_core::types::{Content, MAX_MESSAGE_CHARS};

fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('\u{200b}'),
                Just('\u{202e}'),
                Just('\u{2066}'),
                Just('\u{feff}'),
                Just('\u{0}'),
                Just('\n'),
                Just('账'),
                Just('Ａ'),
                Just('ß'),
                Just('İ'),
                Just('😀'),
                any::<char>()
            ],
            0..64
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn normalising_and_ranking_never_panic(text in nasty()) {
        let n = normalize(&text);
        prop_assert!(!n.contains('\u{200b}') && !n.contains('\u{202e}'), "invisible characters are removed");
        prop_assert_eq!(normalize(&n), n.clone(), "idempotent");
        let c = clean(&text);
        prop_assert!(!c.contains('\u{202e}'), "bidi overrides are removed");
        let m = matcher();
        for s in m.rank(&text, 3) {
            prop_assert!((0.0..=1.0).contains(&s.score));
        }
    }

    #[test]
    fn the_engine_takes_any_text(texts in proptest::collection::vec(nasty(), 1..4)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let h = Harness::new(Arc::new(MemoryStore::new()));
            for chat in ["p", "q"] {
                if chat == "q" {
                    // The same while the bot collects a ticket's details (side questions, calling off).
                    let opened = h.engine.handle(h.inbound("q", Content::Text("I sent money but it never arrived".into()))).await.unwrap();
                    assert_eq!(opened.action.as_str(), "collect");
                }
                for t in &texts {
                    let before = stored_lines(&h, chat).await;
                    let got = h.engine.handle(h.inbound(chat, Content::Text(t.clone()))).await.unwrap();
                    let after = stored_lines(&h, chat).await;
                    if clean(t).trim().is_empty() {
                        // Nothing to read: ignored, not stored, not answered.
                        assert_eq!(got.action, Action::Ignored, "{t:?}");
                        assert!(got.replies.is_empty());
                        assert_eq!(after, before);
                    } else {
                        // Stored (cut to the limit), and answered with text the platforms can send.
                        assert_eq!(after.len(), before.len() + 1 + got.replies.len(), "{t:?}: the message and every reply are in the transcript");
                        let line = &after[before.len()];
                        assert!(line.chars().count() <= MAX_MESSAGE_CHARS && !line.contains('\u{202e}'), "{line:?}");
                        // Only a conversation a person owns gets no word from the bot.
                        assert!(!got.replies.is_empty() || got.action == Action::Silent, "{t:?} got no answer ({:?})", got.action);
                        for r in &got.replies {
                            assert!(!r.text.trim().is_empty(), "an empty reply to {t:?}");
                            assert!(r.choices.iter().all(|c| !c.label.trim().is_empty() && !c.payload.is_empty()));
                        }
                    }
                }
            }
            h.engine.flush().await.unwrap();
            assert!(h.engine.store().outbox_pending().await.unwrap().is_empty(), "every reply was delivered");
        });
    }
}

/// The transcript lines of `chat` (none before its first stored message).
async fn stored_lines(h: &Harness, chat: &str) -> Vec<String> {
    let key = switchboard_core::types::ConversationKey { channel: support::CHANNEL.into(), chat: chat.into() };
    let new = switchboard_core::store::NewConversation {
        key,
        customer_id: "x".into(),
        customer_name: "x".into(),
        lang: switchboard_core::Lang::En,
        at: 0,
    };
    let conv = h.engine.store().open_conversation(new).await.unwrap();
    h.engine.store().transcript(conv.id, 10_000).await.unwrap().into_iter().map(|l| l.text).collect()
}

fn matcher() -> &'static Matcher {
    static M: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
    M.get_or_init(|| Matcher::train(&okpay().examples()))
}
