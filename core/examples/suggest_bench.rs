//! `intents suggest` on a big store (issue 17): fills a SQLite data folder with a million
//! transcript lines (half customer messages with their outcome, half the bot's replies, over the
//! last 20 days), then times `suggest::from_store` on it: the same streaming, grouping and judging
//! as `switchboard intents suggest`, which can then be timed on the same folder too.
//!
//! ```sh
//! cargo run --release -p switchboard-core --example suggest_bench -- /tmp/sb1m 1000000
//! time SWITCHBOARD_DATA_DIR=/tmp/sb1m ./target/release/switchboard intents suggest --since 30d > /dev/null
//! ```
//!
//! The folder is filled only if its database has no transcript yet (delete it to fill again). The
//! lines are written with direct SQL in batches (the schema of `core/migrations/sqlite`, applied
//! by `SqlStore::open_sqlite` first); going through `Store::commit` would take minutes.
//!
//! The customer messages (seeded, so every fill is the same): 82 % answered with a phrasing of
//! the OKPay pack, 7 % fallbacks (questions on 24 topics the pack does not cover, each in English
//! and Chinese templates with numbers, greetings and endings that vary, and one in seven pure
//! noise, unique), 6 % "did you mean" (half settled by the next message, half not), 3 % answered as
//! `other_question`, 1 % handoffs (half asked for a person, half unmatched), 1 % written to an
//! agent.

use std::path::PathBuf;
use std::time::Instant;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use switchboard_core::eval::Rng;
use switchboard_core::matcher::Matcher;
use switchboard_core::pack::Pack;
use switchboard_core::store::{SqlStore, Store};
use switchboard_core::suggest::{self, Known, Settings};
use switchboard_core::types::{Author, now_ms};

/// A transcript line to insert: conversation, author, text, time, intent, outcome.
type Row = (i64, String, String, i64, Option<String>, Option<String>);

const TOPICS: &[(&[&str], &[&str])] = &[
    (
        &["can I pay {n} with bitcoin", "do you accept bitcoin for {n} dollars", "bitcoin payments possible"],
        &["可以用比特币付{n}元吗", "支持比特币支付吗"],
    ),
    (
        &["what is the exchange rate for {n} euros", "euro exchange rate today", "exchange rate dollars to pounds"],
        &["欧元汇率是多少", "今天{n}美元换多少人民币"],
    ),
    (&["how do I get a loan of {n}", "do you offer loans", "can I borrow {n} dollars"], &["可以贷款{n}元吗", "你们有借款服务吗"]),
    (&["is there an okpay credit card", "apply for a credit card", "credit card with {n} limit"], &["有信用卡吗", "怎么申请信用卡"]),
    (
        &["interest rate on savings", "do you pay interest on {n} dollars", "savings account interest"],
        &["存款有利息吗", "{n}元存一年利息多少"],
    ),
    (&["can I buy stocks", "invest {n} in shares", "stock trading on okpay"], &["可以买股票吗", "怎么投资{n}元"]),
    (
        &["how do I change my name on the account", "update my legal name", "name change after marriage"],
        &["怎么改账户名字", "结婚后改名字"],
    ),
    (
        &["close my joint account with {n} left", "open a joint account", "shared account for couples"],
        &["可以开联名账户吗", "两个人共用账户"],
    ),
    (&["student discount", "are there discounts for students", "student plan price {n}"], &["学生有优惠吗", "学生账户便宜吗"]),
    (&["pay my phone bill", "mobile top up {n}", "recharge my phone credit"], &["怎么交话费", "手机充值{n}元"]),
    (&["gift card balance", "buy a gift card for {n}", "redeem gift card"], &["礼品卡怎么用", "买{n}元礼品卡"]),
    (&["cashback on purchases", "do I get cashback", "{n} percent cashback"], &["有返现吗", "消费返现多少"]),
    (&["tax documents for {n}", "annual tax statement", "download tax form"], &["怎么下载税单", "{n}年的税务证明"]),
    (&["dark mode in the app", "app crashes on startup", "app version {n} bug"], &["App闪退", "怎么开夜间模式"]),
    (&["send money to india", "transfer {n} to china", "international transfer to brazil"], &["可以汇款到国外吗", "转{n}元到香港"]),
    (&["pay rent with okpay", "rent payment of {n}", "landlord wants okpay"], &["能用来交房租吗", "房租{n}元怎么付"]),
    (&["paypal to okpay", "connect paypal", "move {n} from paypal"], &["能绑定paypal吗", "从paypal转钱"]),
    (&["apple pay support", "add okpay to apple pay", "google pay with okpay"], &["支持苹果支付吗", "怎么绑定谷歌支付"]),
    (&["charity donation {n}", "donate to charity", "tax deductible donations"], &["怎么捐款", "捐{n}元给慈善"]),
    (&["insurance for my purchases", "purchase protection", "insured up to {n}"], &["购物有保险吗", "买东西有保障吗"]),
    (&["job at okpay", "are you hiring", "careers {n}"], &["你们招聘吗", "怎么应聘"]),
    (&["partner program for merchants", "merchant fees {n} percent", "become a merchant"], &["商户怎么入驻", "商家手续费{n}"]),
    (&["data export gdpr", "download my data", "delete all my data"], &["怎么导出我的数据", "删除我的个人信息"]),
    (&["kids account", "account for my {n} year old", "teen account"], &["可以给孩子开户吗", "{n}岁能开户吗"]),
];
const GREET_EN: &[&str] = &["", "", "hi ", "hello, ", "hey "];
const END_EN: &[&str] = &["", "?", "??", " please", " thanks"];
const GREET_ZH: &[&str] = &["", "", "你好,", "请问"];
const END_ZH: &[&str] = &["", "?", "呢", "谢谢"];

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len())]
}

/// A question on one of the topics.
fn topic_question(rng: &mut Rng) -> String {
    let (en, zh) = TOPICS[rng.below(TOPICS.len())];
    let n = (rng.below(500) + 1).to_string();
    if rng.below(2) == 0 {
        format!("{}{}{}", pick(rng, GREET_EN), pick(rng, en).replace("{n}", &n), pick(rng, END_EN))
    } else {
        format!("{}{}{}", pick(rng, GREET_ZH), pick(rng, zh).replace("{n}", &n), pick(rng, END_ZH))
    }
}

/// A line of noise no one else writes.
fn noise(rng: &mut Rng) -> String {
    let words = 2 + rng.below(3);
    (0..words)
        .map(|_| (0..3 + rng.below(5)).map(|_| char::from(b'a' + rng.below(26) as u8)).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(text, action, intent)` of customer lines of one conversation.
fn conversation(rng: &mut Rng, answered: &[(String, String)], out: &mut Vec<(String, &'static str, Option<String>)>) {
    let n = 1 + rng.below(8);
    let mut i = 0;
    while i < n {
        let roll = rng.below(100);
        let (text, label) = &answered[rng.below(answered.len())];
        match roll {
            0..82 => out.push((text.clone(), "answer", Some(label.clone()))),
            82..89 => {
                let t = if rng.below(7) == 0 { noise(rng) } else { topic_question(rng) };
                out.push((t, "fallback", None));
            }
            89..95 => {
                out.push((topic_question(rng), "clarify", None));
                if rng.below(2) == 0 {
                    out.push((format!("[{label}]"), "answer", Some(label.clone())));
                    i += 1;
                }
            }
            95..98 => out.push((topic_question(rng), "answer", Some("other_question".into()))),
            98 => {
                if rng.below(2) == 0 {
                    out.push(("human".into(), "handoff", Some("human_agent".into())));
                } else {
                    out.push((topic_question(rng), "handoff", None));
                }
            }
            _ => out.push((text.clone(), "silent", None)),
        }
        i += 1;
    }
}

async fn fill(dir: &std::path::Path, lines: usize, pack: &Pack) -> Result<(), Box<dyn std::error::Error>> {
    let opts = SqliteConnectOptions::new().filename(dir.join("switchboard.db")).journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transcript").fetch_one(&pool).await?;
    if have > 0 {
        println!("{} already holds {have} transcript lines: not filled again", dir.display());
        return Ok(());
    }
    let answered: Vec<(String, String)> =
        pack.examples().into_iter().filter(|e| e.label != suggest::CATCH_ALL).map(|e| (e.text, e.label)).collect();
    let customer = serde_json::to_string(&Author::Customer)?;
    let bot = serde_json::to_string(&Author::Bot)?;
    let state = serde_json::to_string(&switchboard_core::dialogue::DialogueState::default())?;
    let owner = serde_json::to_string(&switchboard_core::types::Owner::Bot)?;
    let mut rng = Rng::new(17);
    let now = now_ms();
    let span: i64 = 20 * 86_400_000;
    let start = now - span;
    let t0 = Instant::now();
    let (mut written, mut conv_id) = (0usize, 0i64);
    let mut tx = pool.begin().await?;
    let mut rows: Vec<Row> = Vec::new();
    let mut msgs = Vec::new();
    while written < lines {
        conv_id += 1;
        let at0 = start + (span as f64 * written as f64 / lines as f64) as i64;
        sqlx::query(
            "INSERT INTO conversations (id, channel, chat, customer_id, customer_name, lang, state, owner, ticket_id, version, updated_at) \
             VALUES (?, 'bench', ?, ?, 'Bench customer', 'en', ?, ?, NULL, 0, ?)",
        )
        .bind(conv_id)
        .bind(format!("chat-{conv_id}"))
        .bind(format!("customer-{conv_id}"))
        .bind(&state)
        .bind(&owner)
        .bind(at0)
        .execute(&mut *tx)
        .await?;
        msgs.clear();
        conversation(&mut rng, &answered, &mut msgs);
        for (k, (text, action, intent)) in msgs.drain(..).enumerate() {
            let at = at0 + 2000 * k as i64;
            rows.push((conv_id, customer.clone(), text, at, intent, Some(action.to_string())));
            rows.push((conv_id, bot.clone(), "(the bot's reply)".into(), at + 500, None, None));
            written += 2;
        }
        if rows.len() >= 400 || written >= lines {
            let marks = vec!["(?, NULL, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
            let sql = format!("INSERT INTO transcript (conversation_id, ticket_id, author, text, at, intent, outcome) VALUES {marks}");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (c, a, t, at, i, o) in rows.drain(..) {
                q = q.bind(c).bind(a).bind(t).bind(at).bind(i).bind(o);
            }
            q.execute(&mut *tx).await?;
            if conv_id % 2000 == 0 {
                tx.commit().await?;
                tx = pool.begin().await?;
            }
        }
    }
    tx.commit().await?;
    pool.close().await;
    println!("filled {}: {written} transcript lines in {conv_id} conversations in {:.1} s", dir.display(), t0.elapsed().as_secs_f64());
    Ok(())
}

/// This process's peak resident memory, from /proc (Linux).
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.trim_start_matches("VmHWM:").trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/sb1m".into()));
    let lines: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let pack = Pack::load(std::path::Path::new("intents/okpay"))?;
    // Creates the database and applies the migrations.
    SqlStore::open_sqlite(&dir).await?.close().await;
    fill(&dir, lines, &pack).await?;

    let store = SqlStore::open_sqlite(&dir).await?;
    let t0 = Instant::now();
    let matcher = Matcher::train(&pack.examples());
    let known = Known::from_pack(&pack, &matcher);
    let trained = t0.elapsed();
    let now = now_ms();
    // The stream alone (read and keep the unanswered), to tell it from the grouping.
    let t1 = Instant::now();
    let mut collector = suggest::Collector::new(known.catch_all.as_deref());
    let mut lines = store.outcome_lines(now - 30 * 86_400_000, now + 1);
    while let Some(line) = futures_util::StreamExt::next(&mut lines).await {
        collector.push(&line?);
    }
    drop(lines);
    let found = collector.finish();
    println!(
        "stream: {} customer lines read, {} unanswered kept as {} distinct phrasings in {:.2} s",
        found.read,
        found.total(),
        found.messages.len(),
        t1.elapsed().as_secs_f64()
    );
    let t1 = Instant::now();
    let s = suggest::from_store(&store, now - 30 * 86_400_000, now + 1, &known, &Settings::default()).await?;
    let took = t1.elapsed();
    println!(
        "suggest: {} customer lines read, {} unanswered ({} distinct phrasings in {} groups of ≥ 3, {} left out) in {:.2} s \
         (+ {:.2} s to train the matcher); peak memory {}",
        s.read,
        s.unanswered,
        s.groups.iter().map(|g| g.phrasings.len()).sum::<usize>(),
        s.groups.len(),
        s.left_out,
        took.as_secs_f64(),
        trained.as_secs_f64(),
        peak_rss()
    );
    for g in s.groups.iter().take(5) {
        println!("  {} messages: {} — {:?}", g.size, g.verdict, g.shown().next().unwrap_or_default());
    }
    store.close().await;
    Ok(())
}
