//! Secrets in customers' messages (issue 18): the labelled set of `tests/data/redaction.tsv`
//! masked with full recall and its look-alikes kept; a masked message keeps its intent; a message
//! of secrets alone is stored masked and answered with the notice; the pack's own `[redact]`
//! patterns apply, change on reload, and a bad one is refused by `intents check`, naming it.
//!
//! The figures for BENCHMARKS.md: `cargo test --test redaction -- --nocapture`, or
//! `cargo run --release -- redact --eval tests/data/redaction.tsv`.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use support::{Harness, copy_pack, okpay};
use switchboard_core::Lang;
use switchboard_core::dialogue::{Action, Phrase};
use switchboard_core::pack::Pack;
use switchboard_core::redact::set::{self, Case};
use switchboard_core::reload::PackWatcher;
use switchboard_core::store::MemoryStore;

fn set_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/redaction.tsv")
}

fn labelled_set() -> Vec<Case> {
    set::parse(&std::fs::read_to_string(set_path()).unwrap(), &[]).unwrap()
}

#[test]
fn the_labelled_set_is_masked_with_every_secret_hidden_and_look_alikes_kept() {
    let cases = labelled_set();
    let secrets = cases.iter().filter(|c| c.has_secrets()).count();
    assert!(cases.len() >= 200, "{} messages", cases.len());
    assert!((cases.len() * 2 / 5..=cases.len() * 3 / 5).contains(&secrets), "about half hold secrets: {secrets} of {}", cases.len());
    let f = set::score(&okpay().redactor, &cases);
    println!("{}: {} messages\n{}", set_path().display(), cases.len(), f.report());
    assert_eq!(f.hidden, f.secrets, "every secret is hidden:\n{}", f.report());
    assert!(f.kept_share() >= 0.98, "look-alikes kept: {:.3}\n{}", f.kept_share(), f.report());
}

/// The message with its secrets taken out: what the customer asked, without the number.
fn without_secrets(case: &Case) -> String {
    let mut text = case.message.clone();
    for s in &case.secrets {
        text = text.replacen(s.as_str(), " ", 1);
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_masked_message_gets_the_intent_it_gets_without_its_secrets() {
    let h = Harness::new(Arc::new(MemoryStore::new()));
    let cases: Vec<Case> = labelled_set().into_iter().filter(|c| c.intent.is_some()).collect();
    assert!(cases.len() >= 40, "{} messages with an obvious intent", cases.len());
    let (mut same, mut as_labelled, mut differ) = (0, 0, Vec::new());
    for (i, case) in cases.iter().enumerate() {
        let masked = h.say(&format!("masked-{i}"), &case.message).await;
        let plain_text = without_secrets(case);
        let plain = h.say(&format!("plain-{i}"), &plain_text).await;
        let notice = Phrase::SecretHidden.text(masked.lang);
        let told = &masked.replies[0].text;
        assert!(told == notice || *told == switchboard_core::hant::to_traditional(notice), "line {}: told first: {told}", case.line);
        assert_ne!(masked.action, Action::Hidden, "line {}: more than secrets", case.line);
        if masked.intent == plain.intent {
            same += 1;
        } else {
            differ.push(format!(
                "line {}: {:?} → {:?}, without its secrets {:?} → {:?}",
                case.line, case.message, masked.intent, plain_text, plain.intent
            ));
        }
        if masked.intent == case.intent {
            as_labelled += 1;
        } else {
            println!("line {}: labelled {:?}, answered {:?} ({:?})", case.line, case.intent, masked.intent, masked.action);
        }
    }
    println!(
        "{} secret messages with an obvious intent: {same} get the intent they get without their secrets, {as_labelled} the labelled intent",
        cases.len()
    );
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // The matcher's own accuracy on these long, anxious messages, with or without their secrets
    // (the rest are mostly "did you mean"): a floor, so that masking never feeds it noise.
    assert!(as_labelled * 10 >= cases.len() * 7, "{as_labelled} of {} answered as labelled", cases.len());
}

#[tokio::test]
async fn a_message_of_secrets_alone_is_stored_masked_and_answered_with_the_notice() {
    let h = Harness::new(Arc::new(MemoryStore::new()));
    // A card number alone, a code alone in Chinese, a password alone in traditional characters.
    for (chat, text, lang, stored) in [
        ("card", "4242 4242 4242 4242", Lang::En, "[card •••• 4242]"),
        ("code", "验证码：384920", Lang::Zh, "验证码：[code]"),
        ("pw", "密碼：woaini520", Lang::Zh, "密碼：[password]"),
    ] {
        let got = h.say(chat, text).await;
        assert_eq!(got.action, Action::Hidden, "{text}");
        assert_eq!(got.intent, None);
        let told: Vec<String> = h.replies(chat).into_iter().map(|r| r.text).collect();
        let notice = Phrase::SecretHidden.text(lang);
        let notice = if chat == "pw" { switchboard_core::hant::to_traditional(notice) } else { notice.to_string() };
        assert_eq!(told, std::slice::from_ref(&notice), "{text}: only the notice, in the customer's script");
        let conv = h.conversation(chat).await;
        let lines: Vec<String> = h.engine.store().transcript(conv.id, 10).await.unwrap().into_iter().map(|l| l.text).collect();
        assert_eq!(lines, [stored.to_string(), notice], "{text}: stored as masked, and the notice");
    }

    // While details are collected, the secret neither answers the question nor counts as a
    // miss: the next message carries on where the conversation was.
    let pack = okpay();
    let first = h.say("c", "I sent money but it never arrived").await;
    assert_eq!(first.action, Action::Collect);
    let state = h.conversation("c").await.state;
    let hidden = h.say("c", "my password is hunter22").await;
    assert_eq!(hidden.action, Action::Hidden);
    assert_eq!(h.conversation("c").await.state.pending, state.pending, "still waiting for the same detail");
    assert_eq!(h.say("c", "yesterday 3pm").await.action, Action::Collect);
    assert!(pack.intent("transfer_not_received").is_some());

    // Twice in a row is still no misunderstanding: no "did you mean", no offer of a person.
    for _ in 0..3 {
        let got = h.say("again", "cvv 123").await;
        assert_eq!(got.action, Action::Hidden);
        assert_eq!(got.replies.len(), 1);
    }
}

#[tokio::test]
async fn the_packs_own_patterns_apply_and_change_when_the_pack_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    copy_pack(dir.path());
    let h = Harness::with_pack(Arc::new(MemoryStore::new()), Pack::load(dir.path()).unwrap());
    let watcher = PackWatcher::new(h.engine.clone(), dir.path().to_path_buf(), Default::default());
    let message = "my transfer failed, my member key is MK-7f3a9c2e41";
    assert_eq!(h.say("a", message).await.intent.as_deref(), Some("transfer_failed"));
    let stored = |h: &Harness, chat: &'static str| {
        let engine = h.engine.clone();
        async move {
            let key = switchboard_core::types::ConversationKey { channel: support::CHANNEL.into(), chat: chat.into() };
            let new = switchboard_core::store::NewConversation {
                key,
                customer_id: String::new(),
                customer_name: String::new(),
                lang: Lang::En,
                at: 0,
            };
            let conv = engine.store().open_conversation(new).await.unwrap();
            engine.store().transcript(conv.id, 10).await.unwrap().into_iter().map(|l| l.text).next().unwrap()
        }
    };
    assert_eq!(stored(&h, "a").await, message, "no pattern yet");

    let pack_toml = dir.path().join("pack.toml");
    let src = std::fs::read_to_string(&pack_toml).unwrap();
    std::fs::write(&pack_toml, format!("{src}\n[redact]\npatterns = [{{ pattern = 'MK-[0-9a-f]{{10}}', label = \"member key\" }}]\n"))
        .unwrap();
    watcher.reload_now().await.unwrap();
    let got = h.say("b", message).await;
    assert_eq!(got.intent.as_deref(), Some("transfer_failed"));
    assert_eq!(got.replies[0].text, Phrase::SecretHidden.text(Lang::En));
    assert_eq!(stored(&h, "b").await, "my transfer failed, my member key is [member key]");

    // A pattern that would hide what customers ask is refused; the running patterns stay.
    std::fs::write(&pack_toml, format!("{src}\n[redact]\npatterns = ['(?i)hacked']\n")).unwrap();
    let err = watcher.reload_now().await.unwrap_err().to_string();
    assert!(err.contains("pack.toml") && err.contains("'(?i)hacked'") && err.contains("matches the example"), "{err}");
    h.say("c", message).await;
    assert_eq!(stored(&h, "c").await, "my transfer failed, my member key is [member key]");
}

fn switchboard(args: &[&str], input: &str) -> Output {
    switchboard_with_pack(args, input, None)
}

/// The binary, with `pack` as the configured pack (`SWITCHBOARD_PACK`) when given.
fn switchboard_with_pack(args: &[&str], input: &str, pack: Option<&str>) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut command = support::cli::command(data.path());
    if let Some(p) = pack {
        command.env("SWITCHBOARD_PACK", p);
    }
    support::cli::run(command.args(args), input)
}

fn pack_with_redact(to: &Path, patterns: &str) -> String {
    copy_pack(to);
    let pack_toml = to.join("pack.toml");
    let src = std::fs::read_to_string(&pack_toml).unwrap();
    std::fs::write(&pack_toml, format!("{src}\n[redact]\npatterns = [\n{patterns}\n]\n")).unwrap();
    to.display().to_string()
}

#[test]
fn the_command_line_uses_the_packs_patterns_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pack = pack_with_redact(dir.path(), "  { pattern = 'MK-[0-9a-f]{10}', label = \"member key\" },");
    let out = switchboard(&["redact", "--explain", "--pack", &pack], "key MK-7f3a9c2e41, card 4242 4242 4242 4242\nMK-123\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "key [member key], card [card •••• 4242]\t# Card, Custom\nMK-123\n");
    let check = switchboard(&["intents", "check", &pack], "");
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("[redact]: 1 pattern(s)"), "{check:?}");

    // A bad pattern: `intents check` (and every command that loads the pack) names it.
    let bad = tempfile::tempdir().unwrap();
    let pack = pack_with_redact(bad.path(), "  'MK-[0-9]+',\n  '.*',\n  '(?i)hacked',\n  'MK-(',");
    // `intents check`, and `chat` (as `run`) on the configured pack.
    for (args, configured) in [(vec!["intents", "check", pack.as_str()], None), (vec!["chat"], Some(pack.as_str()))] {
        let out = switchboard_with_pack(&args, "hello\n", configured);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pack.toml:") && err.contains("'.*' can match the empty string"), "{err}");
        assert!(err.contains("'(?i)hacked' matches the example"), "{err}");
        assert!(err.contains("'MK-(' does not compile"), "{err}");
        assert!(!err.contains("'MK-[0-9]+'"), "a good pattern is not reported: {err}");
    }

    // `intents explain` reads a message as the bot does: masked, and a message of secrets alone
    // is only told so.
    let out = switchboard(&["intents", "explain", "my card 4242 4242 4242 4242 was declined", "验证码 384920"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"my card [card •••• 4242] was declined\"") && !text.contains("4242 4242"), "{text}");
    assert!(text.contains("\"验证码 [code]\"\n→ only tells the customer their secret was hidden"), "{text}");

    // The figures, as BENCHMARKS.md quotes them.
    let out = switchboard(&["redact", "--eval", "tests/data/redaction.tsv"], "");
    assert!(out.status.success(), "{out:?}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("secrets hidden (recall): ") && report.contains("= 100.0 %"), "{report}");
}
