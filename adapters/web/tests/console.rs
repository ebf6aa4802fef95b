//! The agents' console through its router (no network): sign-in (right, wrong, unknown — one
//! answer), the session cookie's attributes, CSRF and other sites refused without a change, the
//! sign-in limits, the allowlist, the queue of every channel, claim → reply → close reaching the
//! transcript, one owner between two agents, sign-out, the live hints over Server-Sent Events, the
//! page's security headers, and no password in any response or log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_core::engine::{Engine, EngineConfig};
use switchboard_core::pack::Pack;
use switchboard_core::store::MemoryStore;
use switchboard_core::types::{Content, Inbound, TicketStatus, now_ms};
use switchboard_testkit::console::{Browser, HOST, ORIGIN, password_hash, send};
use switchboard_web::config::Account;
use switchboard_web::{Web, WebConfig};
use tokio::sync::watch;
use tower::ServiceExt;

const SECRET: &str = "a test secret of at least 32 chars.....";
const ALICE_PW: &str = "alice-Pa55word-that-is-secret";
const BOB_PW: &str = "bob-Pa55word-quite-secret";
const CAROL_PW: &str = "carol-Pa55word-very-secret";

// ---------------------------------------------------------------------------------------------
// Every log line of every test, to look for passwords in.

static LOGS: Mutex<String> = Mutex::new(String::new());

struct Capture;

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, "{}={value} ", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut s = String::new();
        span.record(&mut Fields(&mut s));
        LOGS.lock().unwrap().push_str(&format!("{s}\n"));
        tracing::span::Id::from_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut s = String::new();
        values.record(&mut Fields(&mut s));
        LOGS.lock().unwrap().push_str(&format!("{s}\n"));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut s = format!("{} {}: ", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut s));
        LOGS.lock().unwrap().push_str(&format!("{s}\n"));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(Capture);
    });
}

fn logs() -> String {
    LOGS.lock().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// The console over a memory store.

struct Console {
    engine: Arc<Engine>,
    app: Router,
    _stop: watch::Sender<bool>,
}

/// Accounts alice and bob (on the allowlist) and carol (not), `per_minute` sign-ins a minute.
async fn console(per_minute: u32) -> Console {
    capture_logs();
    let pack = Pack::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../intents/okpay"))).unwrap();
    let engine = Engine::new(
        Arc::new(MemoryStore::new()),
        pack,
        EngineConfig { agents: vec!["web:alice".into(), "web:bob".into()], desks: vec!["web".into()], ..Default::default() },
    );
    let accounts = [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)]
        .into_iter()
        .map(|(name, pw)| Account { name: name.into(), password_hash: password_hash(pw) })
        .collect();
    let config = WebConfig { accounts, sign_in_per_minute: per_minute, ..Default::default() };
    let (stop, rx) = watch::channel(false);
    let web = Web::start(engine.clone(), config, Some(SECRET), rx).await.unwrap();
    Console { engine, app: web.router(), _stop: stop }
}

/// A customer on `channel` asks for a person: a queued ticket. Returns its id.
async fn customer_ticket(engine: &Engine, channel: &str, chat: &str, name: &str) -> i64 {
    engine
        .handle(Inbound {
            channel: channel.into(),
            conversation: chat.into(),
            customer_id: chat.into(),
            customer_name: name.into(),
            content: Content::Text("I want to talk to a human".into()),
            message_id: format!("{chat}:1"),
            at: now_ms(),
            lang_hint: Some("en".into()),
            deleted: None,
        })
        .await
        .unwrap();
    let tickets = engine.store().tickets(&[TicketStatus::Queued]).await.unwrap();
    tickets.iter().find(|t| t.key.chat == chat).expect("a ticket opened").id
}

async fn signed_in(app: &Router, name: &str, password: &str) -> Browser {
    let mut b = Browser::default();
    let r = b.sign_in(app, name, password).await;
    assert_eq!(r.status, StatusCode::OK, "{name} signs in: {}", r.text);
    b
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sign_in_answers_wrong_passwords_and_unknown_names_alike_and_sets_a_strict_cookie() {
    let c = console(50).await;
    let mut b = Browser::default();
    let ok = b.sign_in(&c.app, "alice", ALICE_PW).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["name"], "alice");
    assert_eq!(ok.json["actor"], "web:alice");
    assert_eq!(ok.json["is_agent"], true);
    assert!(ok.json["csrf"].as_str().is_some_and(|t| t.len() >= 16), "{}", ok.text);
    let cookie = ok.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(cookie.split("; ").any(|a| a == attr), "{attr} in {cookie}");
    }
    let id = b.cookie.clone().unwrap();
    assert!(id.len() >= 40, "a long random session id: {id}");
    // The store keeps a hash of the session id, never the id.
    let kept = c.engine.store().values(switchboard_web::console::SESSIONS).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept.iter().all(|(k, v)| !k.contains(&id) && !v.contains(&id)), "{kept:?}");
    // The session works.
    let me = b.get(&c.app, "/console/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["csrf"], ok.json["csrf"]);

    let wrong = Browser::default().sign_in(&c.app, "alice", "not her password").await;
    let unknown = Browser::default().sign_in(&c.app, "mallory", ALICE_PW).await;
    let empty = Browser::default().sign_in(&c.app, "", "").await;
    for r in [&wrong, &unknown, &empty] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert_eq!(r.json, json!({ "error": "wrong name or password" }));
        assert!(r.headers.get(header::SET_COOKIE).is_none());
    }
    assert_eq!(c.engine.store().values(switchboard_web::console::SESSIONS).await.unwrap().len(), 1, "no session for a failure");
}

#[tokio::test]
async fn an_unknown_name_takes_as_long_as_a_known_one() {
    let c = console(1000).await;
    // Warm up (the dummy hash is made in the background at start).
    let _ = Browser::default().sign_in(&c.app, "nobody", "x").await;
    // Interleaved, so both meet the same load; the median of each.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        for (name, times) in [("alice", &mut known), ("nobody", &mut unknown)] {
            let start = std::time::Instant::now();
            let r = Browser::default().sign_in(&c.app, name, "a wrong password").await;
            times.push(start.elapsed());
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[7], unknown[7]);
    // Both verify one argon2 hash of the same cost: within a factor of 4 of each other (a name
    // answered without hashing is some hundred times faster).
    assert!(unknown * 4 > known && known * 4 > unknown, "known {known:?}, unknown {unknown:?}");
}

#[tokio::test]
async fn sign_in_takes_json_from_the_console_s_own_site_only() {
    let c = console(50).await;
    let form = Request::builder()
        .method("POST")
        .uri("/console/api/sign-in")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("name=alice&password={ALICE_PW}")))
        .unwrap();
    let r = send(&c.app, form).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    for origin in ["https://evil.example.com", "null", "http://127.0.0.1:9999"] {
        let cross = Request::builder()
            .method("POST")
            .uri("/console/api/sign-in")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({ "name": "alice", "password": ALICE_PW }).to_string()))
            .unwrap();
        let r = send(&c.app, cross).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}: {}", r.text);
        assert!(r.headers.get(header::SET_COOKIE).is_none());
    }
    assert!(c.engine.store().values(switchboard_web::console::SESSIONS).await.unwrap().is_empty());
}

#[tokio::test]
async fn changes_without_the_csrf_token_or_from_another_site_are_refused_and_change_nothing() {
    let c = console(50).await;
    let id = customer_ticket(&c.engine, "telegram", "100", "Tom").await;
    let alice = signed_in(&c.app, "alice", ALICE_PW).await;
    let path = format!("/console/api/tickets/{id}/claim");

    let none = Browser { csrf: None, ..alice.clone() }.post(&c.app, &path, json!({})).await;
    let wrong = Browser { csrf: Some("not-the-token".into()), ..alice.clone() }.post(&c.app, &path, json!({})).await;
    // Another session's token is no better.
    let bob = signed_in(&c.app, "bob", BOB_PW).await;
    let others = Browser { csrf: bob.csrf.clone(), ..alice.clone() }.post(&c.app, &path, json!({})).await;
    for r in [&none, &wrong, &others] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.json["error"].as_str().unwrap().contains("security token"), "{}", r.text);
    }
    // The right token from another site's page.
    let req = alice
        .request("POST", &path)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", alice.csrf.as_deref().unwrap())
        .body(Body::from("{}"))
        .unwrap();
    let mut req = req;
    req.headers_mut().insert(header::ORIGIN, "https://evil.example.com".parse().unwrap());
    let cross = send(&c.app, req).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "{}", cross.text);
    let reply =
        Browser { csrf: None, ..alice.clone() }.post(&c.app, &format!("/console/api/tickets/{id}/reply"), json!({"text": "hi"})).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let signout = Browser { csrf: None, ..alice.clone() }.post(&c.app, "/console/api/sign-out", json!({})).await;
    assert_eq!(signout.status, StatusCode::FORBIDDEN);

    let t = c.engine.store().ticket(id).await.unwrap().unwrap();
    assert_eq!((t.status, t.agent), (TicketStatus::Queued, None), "nothing changed");
    assert!(alice.get(&c.app, "/console/api/me").await.status.is_success(), "still signed in");

    let ok = alice.post(&c.app, &path, json!({})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["ticket"]["status"], "assigned");
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_name_and_per_address() {
    let c = console(2).await;
    for _ in 0..2 {
        assert_eq!(Browser::default().sign_in(&c.app, "alice", "wrong").await.status, StatusCode::FORBIDDEN);
    }
    // The third within the minute is refused, even with the right password.
    let r = Browser::default().sign_in(&c.app, "alice", ALICE_PW).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let after: u64 = r.headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&after), "{after}");
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // Another name is not held up by alice's…
    assert_eq!(Browser::default().sign_in(&c.app, "bob", BOB_PW).await.status, StatusCode::OK);
    // …until the address has tried 5 × 2 times (3 so far, plus bob's 1).
    for i in 0..6 {
        let r = Browser::default().sign_in(&c.app, &format!("guess{i}"), "x").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "attempt {i}: {}", r.text);
    }
    let r = Browser::default().sign_in(&c.app, "carol", CAROL_PW).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

#[tokio::test]
async fn an_account_off_the_allowlist_signs_in_but_works_no_ticket() {
    let c = console(50).await;
    let id = customer_ticket(&c.engine, "telegram", "200", "Tina").await;
    let carol = signed_in(&c.app, "carol", CAROL_PW).await;
    let me = carol.get(&c.app, "/console/api/me").await;
    assert_eq!(me.json["is_agent"], false);
    assert_eq!(me.json["actor"], "web:carol");
    for r in [
        carol.get(&c.app, "/console/api/queue").await,
        carol.get(&c.app, &format!("/console/api/tickets/{id}")).await,
        carol.post(&c.app, &format!("/console/api/tickets/{id}/claim"), json!({})).await,
        carol.post(&c.app, &format!("/console/api/tickets/{id}/reply"), json!({"text": "hello"})).await,
        carol.get(&c.app, "/console/api/events").await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.json["error"].as_str().unwrap().contains("allowlist"), "{}", r.text);
    }
    let t = c.engine.store().ticket(id).await.unwrap().unwrap();
    assert_eq!(t.status, TicketStatus::Queued);
}

#[tokio::test]
async fn without_a_session_nothing_but_the_page_and_sign_in_answers() {
    let c = console(50).await;
    let nobody = Browser::default();
    let forged = Browser { cookie: Some("forged-session-id".into()), csrf: Some("x".into()) };
    for b in [&nobody, &forged] {
        for path in ["/console/api/me", "/console/api/queue", "/console/api/tickets/1", "/console/api/events"] {
            let r = b.get(&c.app, path).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
            assert_eq!(r.json, json!({ "error": "sign in first" }));
        }
        assert_eq!(b.post(&c.app, "/console/api/tickets/1/claim", json!({})).await.status, StatusCode::UNAUTHORIZED);
    }
    let page = nobody.get(&c.app, "/console").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    for id in [
        "signin-form",
        "signin-name",
        "signin-password",
        "signin-submit",
        "signin-error",
        "queue",
        "ticket",
        "ticket-status",
        "transcript",
        "history",
        "details",
        "reply-text",
        "reply-send",
        "note-text",
        "note-send",
        "claim",
        "release",
        "close",
        "console-error",
        "signout",
        "whoami",
    ] {
        assert!(page.text.contains(&format!("id=\"{id}\"")), "#{id} on the page");
    }
    assert!(!page.text.contains("style=") && !page.text.contains("<script>"), "no inline style or script");
    assert!(page.text.contains("aria-live=\"polite\"") && page.text.contains("role=\"alert\""));
    let js = nobody.get(&c.app, "/console/app.js").await;
    assert!(js.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/javascript"));
    assert!(!js.text.contains("innerHTML") && !js.text.contains("insertAdjacentHTML") && !js.text.contains("eval("));
    let css = nobody.get(&c.app, "/console/app.css").await;
    assert!(css.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn tickets_of_every_channel_are_queued_and_claim_reply_note_close_work() {
    let c = console(50).await;
    let tg = customer_ticket(&c.engine, "telegram", "300", "Tess").await;
    let dc = customer_ticket(&c.engine, "discord", "301", "Dan").await;
    let alice = signed_in(&c.app, "alice", ALICE_PW).await;

    let q = alice.get(&c.app, "/console/api/queue").await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    let tickets = q.json["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2, "{}", q.text);
    let first = &tickets[0];
    assert_eq!(first["id"], tg, "oldest first");
    assert_eq!(first["channel"], "telegram");
    assert_eq!(first["customer_name"], "Tess");
    assert_eq!(first["status"], "queued");
    assert_eq!(first["holder"], Value::Null);
    assert_eq!(first["reason"], "asked for a person");
    assert_eq!(first["waiting_minutes"], 0);
    assert!(first["priority"].is_string() && first["created_at"].is_i64());
    assert_eq!(tickets[1]["channel"], "discord");

    let base = format!("/console/api/tickets/{tg}");
    let claim = alice.post(&c.app, &format!("{base}/claim"), json!({})).await;
    assert_eq!(claim.status, StatusCode::OK, "{}", claim.text);
    assert_eq!(claim.json["ticket"]["holder"]["id"], "web:alice");
    let q = alice.get(&c.app, "/console/api/queue").await;
    assert_eq!(q.json["tickets"][0]["holder"], json!({ "id": "web:alice", "name": "alice" }));

    let reply = alice.post(&c.app, &format!("{base}/reply"), json!({ "text": "Hello Tess, <b>Alice</b> here." })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let note = alice.post(&c.app, &format!("{base}/note"), json!({ "text": "called the bank" })).await;
    assert_eq!(note.status, StatusCode::OK, "{}", note.text);
    let empty = alice.post(&c.app, &format!("{base}/reply"), json!({ "text": "  " })).await;
    assert_eq!(empty.status, StatusCode::CONFLICT, "{}", empty.text);
    assert!(empty.json["error"].as_str().unwrap().contains("empty"));

    let d = alice.get(&c.app, &base).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(d.json["ticket"]["channel"], "telegram");
    assert_eq!(d.json["ticket"]["language"], "en");
    assert_eq!(d.json["ticket"]["status"], "assigned");
    let lines = d.json["transcript"].as_array().unwrap();
    assert_eq!(lines[0]["from"], "customer");
    assert_eq!(lines[0]["text"], "I want to talk to a human");
    assert!(lines.iter().any(|l| l["from"] == "bot"));
    let last = lines.last().unwrap();
    assert_eq!(last["from"], "agent");
    assert_eq!(last["text"], "Hello Tess, <b>Alice</b> here.", "the text as written: the page shows it as text");
    assert_eq!(last["agent"]["name"], "alice");
    assert!(!lines.iter().any(|l| l["text"] == "called the bank"), "a note is not in the transcript");
    assert_eq!(d.json["notes"][0]["text"], "called the bank");
    assert_eq!(d.json["notes"][0]["agent"]["id"], "web:alice");
    let history: Vec<&str> = d.json["history"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert_eq!(history, ["opened", "claimed"]);

    let close = alice.post(&c.app, &format!("{base}/close"), json!({})).await;
    assert_eq!(close.status, StatusCode::OK, "{}", close.text);
    assert_eq!(close.json["ticket"]["status"], "closed");
    let again = alice.post(&c.app, &format!("{base}/close"), json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.json["error"].as_str().unwrap().contains("already closed"), "{}", again.text);
    let q = alice.get(&c.app, "/console/api/queue").await;
    let ids: Vec<i64> = q.json["tickets"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [dc], "the closed ticket left the queue");
    let d = alice.get(&c.app, &base).await;
    assert_eq!(d.json["history"].as_array().unwrap().last().unwrap()["what"], "closed");
    assert_eq!(alice.get(&c.app, "/console/api/tickets/999").await.status, StatusCode::NOT_FOUND);
    assert_eq!(alice.get(&c.app, "/console/api/tickets/abc").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_second_agent_cannot_answer_a_ticket_that_is_with_the_first() {
    let c = console(50).await;
    let id = customer_ticket(&c.engine, "telegram", "400", "Ursula").await;
    let alice = signed_in(&c.app, "alice", ALICE_PW).await;
    let bob = signed_in(&c.app, "bob", BOB_PW).await;
    assert_eq!(alice.post(&c.app, &format!("/console/api/tickets/{id}/claim"), json!({})).await.status, StatusCode::OK);
    let before = c.engine.store().transcript(c.engine.store().ticket(id).await.unwrap().unwrap().conversation_id, 100).await.unwrap();

    let reply = bob.post(&c.app, &format!("/console/api/tickets/{id}/reply"), json!({ "text": "bob here" })).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    let error = reply.json["error"].as_str().unwrap();
    assert!(error.contains("is with") && error.contains("alice"), "{error}");
    for action in ["claim", "close", "release"] {
        let r = bob.post(&c.app, &format!("/console/api/tickets/{id}/{action}"), json!({})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{action}: {}", r.text);
    }
    let after = c.engine.store().transcript(before[0].conversation_id, 100).await.unwrap();
    assert_eq!(before, after, "bob wrote nothing");
    let t = c.engine.store().ticket(id).await.unwrap().unwrap();
    assert_eq!(t.agent.as_deref(), Some("web:alice"));
    // Once alice releases it, bob may.
    assert_eq!(alice.post(&c.app, &format!("/console/api/tickets/{id}/release"), json!({})).await.status, StatusCode::OK);
    assert_eq!(bob.post(&c.app, &format!("/console/api/tickets/{id}/reply"), json!({ "text": "bob here" })).await.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let c = console(50).await;
    let alice = signed_in(&c.app, "alice", ALICE_PW).await;
    let other = signed_in(&c.app, "alice", ALICE_PW).await;
    let out = alice.post(&c.app, "/console/api/sign-out", json!({})).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    let cookie = out.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.starts_with("sb_console=;") && cookie.contains("Max-Age=0"), "{cookie}");
    for path in ["/console/api/me", "/console/api/queue"] {
        assert_eq!(alice.get(&c.app, path).await.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(alice.post(&c.app, "/console/api/sign-out", json!({})).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(other.get(&c.app, "/console/api/me").await.status, StatusCode::OK, "another sign-in is another session");
}

#[tokio::test]
async fn the_event_stream_hints_at_each_change() {
    let c = console(50).await;
    let id = customer_ticket(&c.engine, "telegram", "500", "Vera").await;
    c.engine.flush().await.unwrap();
    let alice = signed_in(&c.app, "alice", ALICE_PW).await;
    let res = c.app.clone().oneshot(alice.request("GET", "/console/api/events").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = res.into_body().into_data_stream();

    assert_eq!(alice.post(&c.app, &format!("/console/api/tickets/{id}/claim"), json!({})).await.status, StatusCode::OK);
    c.engine.flush().await.unwrap();
    let mut seen = String::new();
    let hint = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = body.next().await.expect("the stream stays open").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = seen.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str::<Value>(line).unwrap();
            }
        }
    })
    .await
    .expect("a hint within 10 s");
    assert_eq!(hint, json!({ "ticket": id, "kind": "claimed" }));

    // A customer's message is hinted too, without its text.
    c.engine
        .handle(Inbound {
            channel: "telegram".into(),
            conversation: "500".into(),
            customer_id: "500".into(),
            customer_name: "Vera".into(),
            content: Content::Text("my card number is private".into()),
            message_id: "500:2".into(),
            at: now_ms(),
            lang_hint: None,
            deleted: None,
        })
        .await
        .unwrap();
    c.engine.flush().await.unwrap();
    let mut seen = String::new();
    let hint = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = body.next().await.expect("the stream stays open").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = seen.lines().find_map(|l| l.strip_prefix("data: ")) {
                return line.to_string();
            }
        }
    })
    .await
    .expect("a second hint");
    assert_eq!(serde_json::from_str::<Value>(&hint).unwrap(), json!({ "ticket": id, "kind": "customer_message" }));
    assert!(!hint.contains("private"));
}

#[tokio::test]
async fn no_response_or_log_holds_a_password_or_session() {
    let c = console(50).await;
    let id = customer_ticket(&c.engine, "telegram", "600", "Wim").await;
    let mut replies = Vec::new();
    let mut alice = Browser::default();
    replies.push(alice.sign_in(&c.app, "alice", ALICE_PW).await);
    replies.push(Browser::default().sign_in(&c.app, "alice", BOB_PW).await);
    replies.push(Browser::default().sign_in(&c.app, CAROL_PW, CAROL_PW).await);
    replies.push(alice.get(&c.app, "/console/api/me").await);
    replies.push(alice.get(&c.app, "/console/api/queue").await);
    replies.push(alice.post(&c.app, &format!("/console/api/tickets/{id}/claim"), json!({})).await);
    replies.push(alice.get(&c.app, &format!("/console/api/tickets/{id}")).await);
    let session = alice.cookie.clone().unwrap();
    let csrf = alice.csrf.clone().unwrap();
    replies.push(alice.post(&c.app, "/console/api/sign-out", json!({})).await);
    for r in &replies {
        let all = format!("{:?} {}", r.headers, r.text);
        for pw in [ALICE_PW, BOB_PW, CAROL_PW] {
            assert!(!all.contains(pw), "a password in a response: {all}");
        }
    }
    let logs = logs();
    assert!(logs.contains("console: signed in") && logs.contains("alice"), "the sign-in is logged: {logs}");
    assert!(logs.contains("console: a sign-in with a name that is no account failed"), "{logs}");
    for secret in [ALICE_PW, BOB_PW, CAROL_PW, session.as_str(), csrf.as_str()] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}
