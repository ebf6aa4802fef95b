//! No input panics: arbitrary Unicode (control, zero-width, bidi, surrogates-free scalars of every
//! plane) through normalisation, matching, the dialogue and the store.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use support::{Harness, okpay};
use switchboard_core::matcher::Matcher;
use switchboard_core::matcher::normalize::{clean, normalize};
use switchboard_core::store::MemoryStore;
use switchboard_core::types::Content;

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
            for t in &texts {
                let got = h.engine.handle(h.inbound("p", Content::Text(t.clone()))).await;
                assert!(got.is_ok(), "{got:?}");
            }
            // The same while the bot collects a ticket's details (side questions, calling off).
            let opened = h.engine.handle(h.inbound("q", Content::Text("I sent money but it never arrived".into()))).await.unwrap();
            assert_eq!(opened.action.as_str(), "collect");
            for t in &texts {
                let got = h.engine.handle(h.inbound("q", Content::Text(t.clone()))).await;
                assert!(got.is_ok(), "{got:?}");
            }
            h.engine.flush().await.unwrap();
        });
    }
}

fn matcher() -> &'static Matcher {
    static M: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
    M.get_or_init(|| Matcher::train(&okpay().examples()))
}
