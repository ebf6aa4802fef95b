//! The REST path `switchboard run` takes against Discord's own API (no `discord.api_url`):
//! serenity's rate limiter paces every call from the `X-RateLimit-*` headers and waits out 429s
//! itself. That limiter ignores serenity's proxy setting (it always sends to
//! `https://discord.com`), so these tests reach the fake another way: a `reqwest` client that
//! resolves discord.com to a TLS front of the fake (`common::tls`), the limiter left on.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Harness, customer};
use switchboard_core::channel::Channel;
use switchboard_core::types::Reply;
use switchboard_discord::DiscordChannel;
use switchboard_testkit::discord::{self as fake, Failure, RateLimits};

/// Three messages per channel a second: Discord's kind of limit, made quick to test.
const QUICK: RateLimits = RateLimits { global_per_second: 50, messages_per_channel: 3, channel_window: Duration::from_secs(1) };

async fn fake_with_front() -> (fake::FakeDiscord, tokio::sync::watch::Sender<bool>, std::net::SocketAddr) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: &tokio::sync::watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let f = fake::FakeDiscord::bind(stopped(&rx)).await.expect("fake");
    let front = common::tls::front(&f, stopped(&rx)).await;
    (f, stop, front)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenitys_limiter_paces_a_burst_to_one_channel_from_the_headers() {
    let (f, stop, front) = fake_with_front().await;
    let http = common::tls::http(front).build();
    assert!(http.ratelimiter.is_some() && http.proxy.is_none(), "serenity's own limiter, no proxy");
    let channel = DiscordChannel::new(Arc::new(http));
    let dm = f.dm_channel(&customer(3001, "ann")).to_string();
    f.set_latency(Duration::from_millis(10));
    f.set_rate_limits(Some(QUICK));
    let started = Instant::now();
    for i in 0..10 {
        channel.send_once(&dm, &Reply::text(format!("m{i}")), &format!("n{i}")).await.expect("serenity waits instead of failing");
    }
    let took = started.elapsed();
    let texts: Vec<String> = f.posts(dm.parse().expect("id")).iter().map(fake::Posted::text).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "each once, in order");
    let stats = f.rest_stats();
    // Told by the headers that the bucket was spent, serenity waited for it to refill: ten
    // messages at three a second take three windows, and the fake refused none.
    assert_eq!(stats.route_limited, 0, "paced, not refused: {stats:?}");
    assert_eq!(stats.global_limited, 0, "{stats:?}");
    assert!(took >= Duration::from_millis(2900), "ten messages at three a second went in {took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenitys_limiter_waits_out_a_429_and_sends_once() {
    let (f, stop, front) = fake_with_front().await;
    let channel = DiscordChannel::new(Arc::new(common::tls::http(front).build()));
    let dm = f.dm_channel(&customer(3101, "ann"));
    // A route 429 (retry_after 0.2 s; Retry-After rounded up to 1 s, as Discord's) and then a
    // global one: serenity reads `Retry-After`, sleeps, and asks again; the caller sees success.
    f.fail_next_posts(&[Failure::RateLimited(0.2)]);
    let started = Instant::now();
    channel.send_once(&dm.to_string(), &Reply::text("first"), "1").await.expect("serenity retried");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "waited the Retry-After: {took:?}");
    f.fail_next_posts(&[Failure::GloballyRateLimited(0.2)]);
    let started = Instant::now();
    channel.send_once(&dm.to_string(), &Reply::text("second"), "2").await.expect("serenity retried");
    let took_global = started.elapsed();
    assert!(took_global >= Duration::from_secs(1), "waited the global Retry-After: {took_global:?}");
    let stats = f.rest_stats();
    assert_eq!(stats.injected_failures, 2, "{stats:?}");
    let texts: Vec<String> = f.posts(dm).iter().map(fake::Posted::text).collect();
    assert_eq!(texts, ["first", "second"], "each once");
    assert_eq!(stats.nonce_replays, 0, "the 429s created nothing: {stats:?}");
    // Errors other than 429s still reach the outbox, mapped as on the proxy path.
    f.fail_next_posts(&[Failure::ServerError]);
    let e = channel.send(&dm.to_string(), &Reply::text("third")).await;
    assert!(matches!(e, Err(switchboard_core::ChannelError::Transient(_))), "{e:?}");
    f.block_dms(&customer(3101, "ann"));
    let e = channel.send(&dm.to_string(), &Reply::text("third")).await;
    assert!(matches!(e, Err(switchboard_core::ChannelError::Blocked(_))), "{e:?}");
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_api_url_a_customer_flooding_a_dm_is_answered_once_in_order_at_discords_pace() {
    let h = Harness::start_serenity_limited().await;
    assert!(h.fake.unknown_routes().is_empty(), "{:?}", h.fake.unknown_routes());
    h.fake.set_latency(Duration::from_millis(10));
    h.fake.set_rate_limits(Some(QUICK));
    let ann = customer(3201, "ann");
    let dm = h.dm_channel(&ann);
    let asked = [
        ("my account is locked", "Forgot password"),
        ("my transfer failed", "A failed transfer is most often caused"),
        ("how do I close my account", "Before closing your account"),
    ];
    let mut ids = Vec::new();
    for _ in 0..3 {
        for (question, _) in asked {
            ids.push(h.fake.dm(&ann, question));
        }
    }
    let started = Instant::now();
    h.wait_posts("nine answers", dm, 9).await;
    let took = started.elapsed();
    h.settle().await;
    for id in ids {
        assert_eq!(h.progress.handled(id), 1, "message {id}");
    }
    let texts = h.texts(dm);
    assert_eq!(texts.len(), 9, "once each: {texts:?}");
    for (i, text) in texts.iter().enumerate() {
        assert!(text.contains(asked[i % 3].1), "answer {i} in order: {texts:?}");
    }
    let stats = h.fake.rest_stats();
    eprintln!("9 replies to one DM in {took:?} through serenity's limiter: {stats:?}");
    assert_eq!(stats.route_limited, 0, "paced by the headers, never refused: {stats:?}");
    assert_eq!(stats.nonce_replays, 0, "nothing sent twice: {stats:?}");
    assert!(took >= Duration::from_millis(1900), "three messages a second: {took:?}");
    // The gateway, slash commands and desk work the same way through the limiter.
    let (ticket, thread) = h.escalate(&ann).await;
    h.fake.say(thread.id, &common::agent(3251, "alice"), "hello from alice");
    h.wait_text(dm, "hello from alice").await;
    let q = h.fake.slash(common::STAFF_CHANNEL, &common::agent(3251, "alice"), "queue", &[]);
    h.wait_response(q).await;
    h.settle().await;
    assert_eq!(h.ticket(ticket.id).await.agent.as_deref(), Some("discord:3251"));
    assert!(h.fake.unknown_routes().is_empty(), "{:?}", h.fake.unknown_routes());
    h.stop().await;
}
