//! What the adapter logs: never the bot token (not even in network errors, whose URLs carry it),
//! and no customer text at info level or above.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::{Harness, TOKEN, en_customer, eventually};
use switchboard_testkit::telegram::Fault;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[tokio::test]
async fn neither_the_token_nor_customer_text_is_logged() {
    let buf = Buf::default();
    tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(buf.clone()).init();

    let h = Harness::start().await;
    let sam = en_customer(3001);
    let secret_text = "my account is locked, password Hunter2-SECRET";
    h.fake.push_text(&sam, secret_text);
    h.customer_got(&sam, 1).await;
    // A 429 on polling and a customer who blocked the bot: both are logged.
    h.fake.fail("getUpdates", None, Fault::RateLimited(1), 1);
    h.fake.block(sam.id);
    h.fake.push_text(&sam, "Hunter2-SECRET again");
    h.settle().await;
    // The API goes away: network errors carry the request URL, and with it the token.
    drop(h.fake);
    eventually("a logged network error on getUpdates", || {
        buf.text().lines().any(|l| l.contains("getUpdates failed") && l.contains("network error")).then_some(())
    })
    .await;

    let logs = buf.text();
    let secret_part = TOKEN.split_once(':').map(|(_, s)| s).unwrap_or(TOKEN);
    assert!(!logs.contains(secret_part), "the token leaked:\n{logs}");
    assert!(logs.contains("network error"), "network errors are logged:\n{logs}");
    for line in logs.lines().filter(|l| l.contains(" INFO ") || l.contains(" WARN ") || l.contains(" ERROR ")) {
        assert!(!line.contains("Hunter2"), "customer text at info level or above: {line}");
    }
}
