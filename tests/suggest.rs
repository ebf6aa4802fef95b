//! `switchboard intents suggest` as a maintainer runs it: customers' unanswered questions are fed
//! through `switchboard chat` into a temporary SQLite store, then grouped (English and Chinese),
//! each group judged (new phrasings of an intent, or a new intent), printed as text and JSON
//! without any customer identifier, and drafted with `--write` into files `intents check` accepts.
//! Bad input is refused, naming the flag; an empty store says so.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::cli::{stderr, stdout, switchboard};

/// Customers' conversations (chat id, messages): questions the OKPay pack does not answer
/// (paying in bitcoin, in English and in Chinese; exchange rates, answered as `other_question`),
/// phrasings of `account_locked` it only asks "did you mean" about, one stray question, and an
/// answered one.
const CONVERSATIONS: &[(&str, &str)] = &[
    ("customer-4711", "can I pay with bitcoin\ndo you accept bitcoin payments\nbitcoin payment possible?\n"),
    ("customer-4712", "can I pay with bitcoin\n比特币可以付款吗\n支持比特币支付吗\n能用比特币付吗\n"),
    ("customer-4713", "account frozen?\nfrozen account\ncant get into my account anymore\n"),
    (
        "customer-4714",
        "account frozen?\nwhat's the exchange rate to euros\neuro exchange rate\nexchange rate for dollars today\nwhat is the weather in paris\n",
    ),
    ("customer-4715", "my account is locked\n"),
];

fn feed(data: &Path) {
    for (chat, messages) in CONVERSATIONS {
        let out = switchboard(data, &["chat", "--chat", chat, "--name", "Zebulon Quartermaine"], messages);
        assert!(out.status.success(), "{out:?}");
    }
}

/// The group (text block) whose phrasings include `text`.
fn group_of<'a>(report: &'a str, text: &str) -> &'a str {
    report.split("\n\n").find(|g| g.contains(&format!("\"{text}\""))).unwrap_or_else(|| panic!("no group shows {text:?}:\n{report}"))
}

#[test]
fn unanswered_questions_are_grouped_judged_and_drafted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    feed(&data);

    let out = switchboard(&data, &["intents", "suggest"], "");
    assert!(out.status.success(), "{out:?}");
    let report = stdout(&out);
    // 15 messages went unanswered: "my account is locked" was answered, and "can I pay with
    // bitcoin" counts twice (two customers).
    assert!(report.starts_with("15 unanswered messages since "), "{report}");
    assert!(report.contains("4 groups of 3 or more (14 messages); 1 message in smaller groups left out"), "{report}");
    let bitcoin = group_of(&report, "can I pay with bitcoin");
    assert!(bitcoin.contains("4 messages: a new intent"), "{bitcoin}");
    assert!(bitcoin.contains("\"can I pay with bitcoin\"  (×2)") && bitcoin.contains("\"bitcoin payment possible?\""), "{bitcoin}");
    assert!(!bitcoin.contains("比特币") && !bitcoin.contains("exchange"), "one topic and language per group: {bitcoin}");
    let zh = group_of(&report, "支持比特币支付吗");
    assert!(zh.contains("3 messages: a new intent") && zh.contains("\"能用比特币付吗\"") && zh.contains("\"比特币可以付款吗\""), "{zh}");
    let rates = group_of(&report, "euro exchange rate");
    assert!(rates.contains("3 messages: a new intent") && rates.contains("nearest intent: other_question"), "{rates}");
    let locked = group_of(&report, "frozen account");
    assert!(locked.contains("4 messages: new phrasings of account_locked: add them as examples"), "{locked}");
    assert!(locked.contains("nearest intent: account_locked (confidence "), "{locked}");
    assert!(!report.contains("weather"), "a group below --min-size is left out: {report}");
    assert!(!report.contains("my account is locked"), "answered messages are not listed: {report}");
    // Only message texts: no conversation, customer or channel.
    for id in ["customer-47", "Zebulon", "Quartermaine", "cli:"] {
        assert!(!report.contains(id), "{id} in {report}");
    }

    // A smaller --min-size shows the stray question too.
    let all = stdout(&switchboard(&data, &["intents", "suggest", "--min-size", "1"], ""));
    assert!(all.contains("5 groups of 1 or more") && all.contains("\"what is the weather in paris\""), "{all}");

    // JSON for tools.
    let out = switchboard(&data, &["intents", "suggest", "--json", "--since", "2w"], "");
    assert!(out.status.success(), "{out:?}");
    let json = stdout(&out);
    for id in ["customer-47", "Zebulon", "cli:"] {
        assert!(!json.contains(id), "{id} in {json}");
    }
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["unanswered"], 15);
    assert_eq!(v["read"], 16);
    assert_eq!(v["min_size"], 3);
    assert_eq!(v["left_out"], 1);
    assert_eq!(v["by_reason"]["clarified"], 11);
    assert_eq!(v["by_reason"]["catch_all"], 4);
    assert!(v["since"].as_i64().unwrap() < v["until"].as_i64().unwrap());
    let groups = v["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 4, "{json}");
    for g in groups {
        for key in ["size", "phrasings", "distinct_phrasings", "language", "nearest", "verdict", "advice"] {
            assert!(g.get(key).is_some(), "{key} missing in {g}");
        }
        assert!(g["phrasings"].as_array().is_some_and(|p| !p.is_empty() && p.len() <= 5), "{g}");
        assert!(g["nearest"]["confidence"].is_number() && g["nearest"]["example_similarity"].is_number(), "{g}");
    }
    let locked = groups.iter().find(|g| g["verdict"] == "new_phrasings").expect("a new-phrasings group");
    assert_eq!(locked["intent"], "account_locked");
    assert_eq!(locked["advice"], "new phrasings of account_locked: add them as examples");
    assert_eq!(locked["language"], "en");
    let zh = groups.iter().find(|g| g["language"] == "zh").expect("a Chinese group");
    assert_eq!((zh["verdict"].as_str(), zh["size"].as_u64()), (Some("new_intent"), Some(3)));
    assert!(zh.get("intent").is_none(), "{zh}");

    // --write: a draft per new intent, in a folder `intents check` reads as a pack.
    let drafts = dir.path().join("drafts");
    let d = drafts.to_str().unwrap();
    let out = switchboard(&data, &["intents", "suggest", "--write", d], "");
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains(&format!("wrote 3 draft intents to {d}")), "{}", stdout(&out));
    let mut files: Vec<String> =
        std::fs::read_dir(&drafts).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["pack.toml", "suggested_1_bitcoin_pay.toml", "suggested_3.toml", "suggested_4_exchange_rate.toml"]);
    let bitcoin = std::fs::read_to_string(drafts.join("suggested_1_bitcoin_pay.toml")).unwrap();
    assert!(bitcoin.starts_with("# DRAFT (switchboard intents suggest)"), "{bitcoin}");
    assert!(
        bitcoin.contains("id = \"suggested_1_bitcoin_pay\"") && bitcoin.contains("  \"do you accept bitcoin payments\",\n"),
        "{bitcoin}"
    );
    let check = switchboard(&data, &["intents", "check", d], "");
    assert!(check.status.success(), "{check:?}");
    let text = stdout(&check);
    assert!(text.contains("3 intents"), "{text}");
    assert!(text.contains("intent suggested_3 is a draft: its [zh] answer is still the placeholder to replace"), "{text}");
    assert!(text.lines().last().is_some_and(|l| l.starts_with("ok, with ")), "{text}");
    // Again into the same folder: the drafts there already list every phrasing, so nothing is
    // written twice (a pack refuses a phrasing under two intents) and the folder still checks.
    let again = switchboard(&data, &["intents", "suggest", "--write", d], "");
    assert!(again.status.success(), "{again:?}");
    assert!(
        stdout(&again).contains("group 1: every phrasing is an example already (of the pack, or of a draft in the folder); no draft"),
        "{}",
        stdout(&again)
    );
    assert_eq!(std::fs::read_dir(&drafts).unwrap().count(), 4);
    assert!(switchboard(&data, &["intents", "check", d], "").status.success());

    // Drafts written into a copy of the pack load with the pack's own intents.
    let copy = dir.path().join("okpay");
    std::fs::create_dir(&copy).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents/okpay");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let c = copy.to_str().unwrap();
    assert!(switchboard(&data, &["intents", "suggest", "--write", c], "").status.success());
    let check = switchboard(&data, &["intents", "check", c], "");
    assert!(check.status.success(), "{check:?}");
    assert!(stdout(&check).contains("18 intents"), "{}", stdout(&check));
}

#[test]
fn bad_input_is_refused_and_an_empty_store_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let empty = switchboard(&data, &["intents", "suggest"], "");
    assert!(empty.status.success(), "{empty:?}");
    assert!(stdout(&empty).starts_with("no unanswered messages since "), "{}", stdout(&empty));

    for (args, flag, why) in [
        (&["--since", "soon"][..], "--since", "not a duration"),
        (&["--since", "30 parsecs"], "--since", "write it as 30d, 12h or 2w"),
        (&["--since", "0d"], "--since", "empty period"),
        (&["--min-size", "0"], "--min-size", "at least 1"),
        (&["--min-size", "three"], "--min-size", "not a whole number"),
    ] {
        let out = switchboard(&data, &[&["intents", "suggest"][..], args].concat(), "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(err.contains(flag) && err.contains(why), "{args:?}: {err}");
    }
    let out = switchboard(&data, &["intents", "suggest", "--since", "100000 years"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("--since") && stderr(&out).contains("before 1970"), "{}", stderr(&out));
    // Drafts never go into the pack the bot runs.
    let out = switchboard(&data, &["intents", "suggest", "--write", "intents/okpay"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("--write intents/okpay is the pack itself"), "{}", stderr(&out));
}
