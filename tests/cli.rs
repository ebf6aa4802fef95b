//! The `switchboard` binary as a newcomer uses it: `chat` with piped input answers in the
//! customer's language, `desk` lists, claims and answers the ticket, and the customer sees it;
//! `intents check` and `intents test` pass on the shipped pack; `intents explain` shows the matching; an invalid pack is refused.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};

use support::cli::{stdout, switchboard};

#[test]
fn chat_and_desk_make_a_full_handoff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let zh = switchboard(d, &["chat"], "我的账号被锁了\n");
    assert!(zh.status.success(), "{zh:?}");
    assert!(stdout(&zh).contains("忘记密码") || stdout(&zh).contains("找回密码"), "{}", stdout(&zh));
    let en = switchboard(d, &["chat", "--chat", "en"], "my account is locked\n");
    assert!(stdout(&en).contains("Forgot password"), "{}", stdout(&en));

    let handoff = switchboard(d, &["chat"], "转人工\n");
    assert!(stdout(&handoff).contains("排在第 1 位"), "{}", stdout(&handoff));
    let queue = switchboard(d, &["desk", "queue"], "");
    assert!(stdout(&queue).contains("#1") && stdout(&queue).contains("queued"), "{}", stdout(&queue));
    assert!(switchboard(d, &["desk", "claim", "1"], "").status.success());
    assert!(switchboard(d, &["desk", "reply", "1", "您好,我是", "Alice"], "").status.success());
    assert!(switchboard(d, &["desk", "note", "1", "secret", "note"], "").status.success());
    // The customer's terminal prints the agent's reply; its message goes to the ticket.
    let customer = switchboard(d, &["chat"], "谢谢\n");
    let out = stdout(&customer);
    assert!(out.contains("您好,我是 Alice"), "{out}");
    assert!(!out.contains("secret note"), "{out}");
    let show = switchboard(d, &["desk", "show", "1"], "");
    assert!(stdout(&show).contains("customer: 谢谢"), "{}", stdout(&show));
    assert!(switchboard(d, &["desk", "close", "1"], "").status.success());
    let back = switchboard(d, &["chat"], "我的账号被锁了\n");
    let out = stdout(&back);
    assert!(out.contains("回到了智能助手") && (out.contains("忘记密码") || out.contains("找回密码")), "{out}");

    // An agent's reply waits for its own terminal: another terminal conversation on the same
    // database neither prints it nor takes it out of the outbox.
    let _ = switchboard(d, &["chat"], "转人工\n");
    assert!(switchboard(d, &["desk", "claim", "2"], "").status.success());
    assert!(switchboard(d, &["desk", "reply", "2", "稍等,我查一下"], "").status.success());
    let other = switchboard(d, &["chat", "--chat", "en"], "hello\n");
    assert!(other.status.success(), "{other:?}");
    assert!(!stdout(&other).contains("稍等,我查一下"), "{}", stdout(&other));
    let mine = switchboard(d, &["chat"], "好的\n");
    assert!(stdout(&mine).contains("稍等,我查一下"), "{}", stdout(&mine));
    assert!(switchboard(d, &["desk", "close", "2"], "").status.success());

    // The interactive desk reads commands line by line.
    let desk = switchboard(d, &["desk"], "queue\nclaim 99\nhelp\nquit\n");
    assert!(stdout(&desk).contains("The queue is empty.") && stdout(&desk).contains("no ticket #99"), "{}", stdout(&desk));
    assert!(
        stdout(&desk).contains("note N text") && stdout(&desk).contains("the customer never sees"),
        "help lists the commands: {}",
        stdout(&desk)
    );
}

#[test]
fn intents_check_and_test_pass_on_the_shipped_pack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = switchboard(dir.path(), &["intents", "check"], "");
    assert!(check.status.success(), "{check:?}");
    assert!(stdout(&check).contains("15 intents"), "{}", stdout(&check));
    assert!(!stdout(&check).contains("warning"), "no phrasing of the shipped pack is taken for another intent: {}", stdout(&check));
    let test = switchboard(dir.path(), &["intents", "test"], "");
    assert!(test.status.success(), "{}", stdout(&test));
    assert!(stdout(&test).contains(" 0 failed"), "{}", stdout(&test));
}

#[test]
fn intents_explain_shows_the_closest_intents_and_what_the_bot_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = switchboard(dir.path(), &["intents", "explain", "my account is locked", "please human"], "");
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("\"my account is locked\"\n  1. account_locked "), "{text}");
    assert!(text.contains("→ answers account_locked (top "), "{text}");
    assert!(text.contains("→ hands off: a request for a person"), "{text}");
    // Without arguments, one message per line from standard input; a Chinese message gets its
    // intents' Chinese labels.
    let piped = stdout(&switchboard(dir.path(), &["intents", "explain"], "asdfghjkl\n\n我的账号被锁了\n"));
    assert_eq!(piped.matches('→').count(), 2, "{piped}");
    assert!(piped.contains("→ falls back"), "{piped}");
    assert!(piped.contains("1. account_locked") && piped.contains("账号被锁"), "{piped}");
}

#[test]
fn intents_check_warns_about_a_phrasing_filed_under_the_wrong_intent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = dir.path().join("pack");
    std::fs::create_dir(&pack).expect("mkdir");
    std::fs::write(pack.join("pack.toml"), "name = \"x\"\nlanguages = [\"en\"]\n").expect("write");
    let card = [
        "my card is lost",
        "I lost my card",
        "where is my card",
        "card missing",
        "lost card help",
        "my card was stolen",
        "I can't find my card",
        "card gone",
    ];
    let transfer = [
        "my transfer failed",
        "transfer did not go through",
        "why did my transfer fail",
        "failed transfer",
        "transfer error",
        "the transfer was declined",
        "cannot send a transfer",
        "transfer keeps failing",
    ];
    let intent = |id: &str, examples: &[&str]| {
        let list = examples.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", ");
        format!("id = \"{id}\"\n[en]\nlabel = \"{id}\"\nexamples = [{list}]\nanswer = \"{id} answer\"\n")
    };
    // Two transfer phrasings filed under the card intent by mistake.
    let mut misfiled = card.to_vec();
    misfiled.extend(["my transfer failed again", "the transfer failed twice"]);
    std::fs::write(pack.join("card.toml"), intent("card", &misfiled)).expect("write");
    std::fs::write(pack.join("transfer.toml"), intent("transfer", &transfer)).expect("write");
    let pack_arg = pack.display().to_string();
    let check = switchboard(dir.path(), &["intents", "check", &pack_arg], "");
    assert!(check.status.success(), "warnings do not fail the check: {check:?}");
    let out = stdout(&check);
    assert!(out.contains("\"my transfer failed again\" (intent card) sits closer to transfer"), "{out}");
    assert!(!out.contains("\"my card is lost\""), "{out}");
}

#[test]
fn an_invalid_pack_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = dir.path().join("pack");
    std::fs::create_dir(&pack).expect("mkdir");
    std::fs::write(pack.join("pack.toml"), "name = \"x\"\nlanguages = [\"en\"]\n").expect("write");
    std::fs::write(pack.join("a.toml"), "id = \"a\"\n[en]\nexamples = [\"hi\"]\nanswer = \"x\"\nsurprise = 1\n").expect("write");
    let data = dir.path().join("data");
    let pack_arg = pack.display().to_string();
    let check = switchboard(&data, &["intents", "check", &pack_arg], "");
    assert!(!check.status.success());
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("a.toml:5") && err.contains("surprise"), "{err}");
    let mut chat = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    let out =
        chat.arg("chat").env("SWITCHBOARD_PACK", &pack).env("SWITCHBOARD_DATA_DIR", &data).stdin(Stdio::null()).output().expect("runs");
    assert!(!out.status.success(), "the bot refuses to start on an invalid pack");
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.toml:5"));
}

#[test]
fn eval_scores_a_test_csv_cross_validates_the_pack_and_refuses_bad_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let test = d.join("test.csv");
    std::fs::write(
        &test,
        "text,category\n我的账号被锁了,account_locked\nmy account is locked,account_locked\n\"转账失败了, 怎么办\",transfer_failed\nmy transfer failed,transfer_failed\n我要注销账户,close_account\n",
    )
    .expect("write");
    let test_arg = test.display().to_string();
    let out = switchboard(d, &["eval", "--train", "intents/okpay", "--test", &test_arg, "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["intents"], 15);
    assert_eq!(report["clean"]["n"], 5);
    let acc = report["clean"]["accuracy"].as_f64().expect("accuracy");
    // Five plain phrasings of the pack's own intents: each one is matched.
    assert!((acc - 1.0).abs() < 1e-9, "{acc}");
    let langs: Vec<&str> =
        report["clean"]["per_language"].as_array().expect("languages").iter().filter_map(|l| l["lang"].as_str()).collect();
    assert_eq!(langs, ["en", "zh"]);
    let d_ = &report["clean"]["decisions"];
    let split = ["answered", "clarified", "fallback"].iter().map(|k| d_[k].as_u64().expect("count")).sum::<u64>();
    assert_eq!(split, 5, "every message is answered, clarified or falls back");

    let cv = switchboard(d, &["eval", "--train", "intents/okpay", "--folds", "3", "--typos", "--holdout-intents", "3"], "");
    let text = stdout(&cv);
    assert!(cv.status.success(), "{cv:?}");
    for part in ["3-fold cross-validation", "accuracy", "macro-F1", "most frequent confusions", "typos", "out of scope: 3 intents held out"]
    {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }

    let bad = d.join("bad.csv");
    std::fs::write(&bad, "text,category\nhello,greeting\n\"unclosed,greeting\nbye,goodbye\n").expect("write");
    let bad_arg = bad.display().to_string();
    for (args, want) in [
        (vec!["eval", "--train", "intents/okpay", "--test", bad_arg.as_str()], "line 3: the row has no label"),
        (vec!["eval", "--train", "intents/okpay", "--folds", "1"], "--folds needs"),
        (vec!["eval", "--train", "intents/okpay", "--dev-split", "0.2", "--holdout-intents", "15"], "--holdout-intents needs 1 ≤ N ≤ 14"),
        (vec!["eval", "--train", "intents/okpay", "--dev-split", "0.2", "--holdout-intents", "2", "--oos-target", "97"], "--oos-target"),
        (vec!["eval", "--train", "intents/okpay"], "say what to score"),
    ] {
        let out = switchboard(d, &args, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn intents_check_refuses_a_huge_example_and_reports_a_broken_file_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = dir.path().join("pack");
    std::fs::create_dir(&pack).expect("mkdir");
    std::fs::write(pack.join("pack.toml"), "name = \"x\"\nlanguages = [\"en\"]\n").expect("write");
    let huge = "word ".repeat(200_000);
    std::fs::write(
        pack.join("a.toml"),
        format!("id = \"a\"\nfollow_ups = [\"b\"]\n[en]\nexamples = [\"hi\",\n  \"{huge}\"]\nanswer = \"x\"\n"),
    )
    .expect("write");
    // b.toml cannot be read: a number where the handoff policy goes.
    std::fs::write(pack.join("b.toml"), "id = \"b\"\nhandoff = 1\n[en]\nexamples = [\"bye\"]\nanswer = \"y\"\n").expect("write");
    let data = dir.path().join("data");
    let pack_arg = pack.display().to_string();
    let check = switchboard(&data, &["intents", "check", &pack_arg], "");
    assert!(!check.status.success());
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("a.toml:5: an example phrasing is 1000000 characters long; at most 500"), "{err:.3000}");
    assert!(err.contains("b.toml:2: handoff: "), "the broken file's error names its key: {err:.3000}");
    assert!(!err.contains("not an intent"), "no second error for the unreadable file: {err:.3000}");
    assert!(err.len() < 3000, "the huge example is not repeated: {err:.3000}");
}

#[test]
fn redact_masks_secrets_on_standard_input_and_keeps_look_alikes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = "my card 4242 4242 4242 4242 was charged twice\n验证码 384920 输进去没用\norder 4242424242424241 is late\n";
    let out = switchboard(dir.path(), &["redact", "--explain"], input);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["my card [card •••• 4242] was charged twice\t# Card", "验证码 [code] 输进去没用\t# OneTimeCode", "order 4242424242424241 is late"]
    );
}

#[test]
fn forget_erases_one_customer_and_says_what_it_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let _ = switchboard(d, &["chat", "--chat", "ann"], "my card 4242 4242 4242 4242 was charged twice\nhuman please\n");
    let _ = switchboard(d, &["chat", "--chat", "ben"], "my account is locked\n");
    assert!(switchboard(d, &["desk", "note", "1", "called", "the", "bank"], "").status.success());

    // The terminal's channel is `cli:<chat>`, its customer id the chat.
    let forgot = switchboard(d, &["forget", "--customer", "cli:ann:ann"], "");
    assert!(forgot.status.success(), "{forgot:?}");
    let out = stdout(&forgot);
    assert!(out.contains("Erased cli:ann:ann: 1 conversation(s)") && out.contains("1 ticket(s)"), "{out}");
    assert!(!out.contains("charged"), "says counts, never texts: {out}");
    let show = stdout(&switchboard(d, &["desk", "show", "1"], ""));
    assert!(!show.contains("charged twice") && !show.contains("called the bank"), "{show}");
    assert!(show.contains("customer's data erased by operator:alice") && show.contains("Status: closed"), "{show}");
    // Ben is untouched: his conversation goes on.
    let ben = stdout(&switchboard(d, &["chat", "--chat", "ben"], "thanks\n"));
    assert!(!ben.is_empty());

    // Bad input changes nothing and says why.
    for (args, why) in [
        (vec!["forget", "--customer", "cli:ann:nobody"], "no customer cli:ann:nobody"),
        (vec!["forget", "--customer", "ann"], "CHANNEL:ID"),
    ] {
        let o = switchboard(d, &args, "");
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(why), "{o:?}");
    }
}

#[test]
fn desk_blocks_and_unblocks_a_customer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let _ = switchboard(d, &["chat", "--chat", "spam"], "human please\n");
    let bad = switchboard(d, &["desk", "block", "1", "2x", "spam"], "");
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("30m, 2h, 7d"), "{bad:?}");
    assert!(switchboard(d, &["desk", "block", "1", "2h", "sends", "spam"], "").status.success());
    let blocked = stdout(&switchboard(d, &["chat", "--chat", "spam"], "my account is locked\n"));
    assert!(!blocked.contains("Forgot password"), "a blocked customer is not answered: {blocked}");
    let show = stdout(&switchboard(d, &["desk", "show", "1"], ""));
    assert!(show.contains("customer blocked by desk:alice until") && show.contains("sends spam"), "{show}");
    assert!(switchboard(d, &["desk", "unblock", "1"], "").status.success());
    assert!(switchboard(d, &["desk", "close", "1"], "").status.success());
    let back = stdout(&switchboard(d, &["chat", "--chat", "spam"], "my account is locked\n"));
    assert!(back.contains("Forgot password"), "{back}");
}

#[test]
fn report_prints_text_and_json_and_refuses_an_impossible_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let _ = switchboard(d, &["chat", "--chat", "r1"], "my account is locked\n");
    let _ = switchboard(d, &["chat", "--chat", "r2"], "human please\n");
    let text = switchboard(d, &["report"], "");
    assert!(text.status.success(), "{text:?}");
    assert!(stdout(&text).contains("50.0 % containment"), "{}", stdout(&text));
    let json = switchboard(d, &["report", "--since", "1d", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    assert_eq!((v["conversations"].as_u64(), v["tickets"].as_u64()), (Some(2), Some(1)), "{v}");
    assert_eq!(v["intents"]["account_locked"]["answer"].as_u64(), Some(1), "{v}");
    for bad in ["soon", "0s", "100000years"] {
        let o = switchboard(d, &["report", "--since", bad], "");
        assert_eq!(o.status.code(), Some(2), "{bad}: {o:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--since"), "{o:?}");
    }
}

#[test]
fn a_closed_ticket_is_rated_and_office_hours_are_checked_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // After the close, the customer is asked to rate the help; a typed number is the rating.
    let _ = switchboard(d, &["chat"], "human\n");
    assert!(switchboard(d, &["desk", "claim", "1"], "").status.success());
    assert!(switchboard(d, &["desk", "close", "1"], "").status.success());
    let rated = stdout(&switchboard(d, &["chat"], "4 thanks, fast\n"));
    assert!(rated.contains("How would you rate the help") && rated.contains("[5] 5 ★★★★★"), "numbered choices: {rated}");
    assert!(rated.contains("Thank you for your feedback"), "{rated}");
    let show = stdout(&switchboard(d, &["desk", "show", "1"], ""));
    assert!(show.contains("rated 4/5 by the customer: thanks, fast"), "{show}");

    // A mistake in [hours] stops every command at start, naming the key.
    let bad = d.join("bad.toml");
    std::fs::write(&bad, "[hours]\ntime_zone = \"Asia/Shanghai\"\nmon = \"9-18\"\n").expect("write");
    for args in [["chat"].as_slice(), &["run"]] {
        let mut all = vec!["--config", bad.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        let o = switchboard(d, &all, "hello\n");
        assert!(!o.status.success(), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("invalid configuration: hours.mon: \"9-18\" is not HH:MM-HH:MM"), "{err}");
    }
    // A week without opening times: the ticket opens, and the customer is told.
    let closed = d.join("closed.toml");
    std::fs::write(&closed, "[hours]\ntime_zone = \"Asia/Shanghai\"\n[satisfaction]\nenabled = false\n").expect("write");
    let o = switchboard(d, &["--config", closed.to_str().expect("utf-8"), "chat", "--chat", "late"], "human\n");
    assert!(stdout(&o).contains("closed until further notice"), "{o:?}");
}
