//! The chat widget's socket, end to end over real WebSockets on 127.0.0.1: stored before
//! acknowledged, catching up after a reconnect and a restart, tokens that cannot be forged,
//! refused origins, sizes and floods, live agent replies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_core::engine::{Engine, EngineConfig};
use switchboard_core::pack::Pack;
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{Actor, Author};
use switchboard_web::{Web, WebConfig};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "a test secret that is long enough!!";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server {
    addr: std::net::SocketAddr,
    engine: Arc<Engine>,
    stop: watch::Sender<bool>,
}

fn pack() -> Pack {
    Pack::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../intents/okpay"))).unwrap()
}

async fn serve(store: Arc<dyn Store>, config: WebConfig) -> Server {
    let engine = Engine::new(store, pack(), EngineConfig { agents: vec!["web:alice".into(), "desk:bob".into()], ..Default::default() });
    let (stop, rx) = watch::channel(false);
    let web = Web::start(engine.clone(), config, Some(SECRET), rx.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = web.router();
    let mut rx2 = rx;
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx2.wait_for(|s| *s).await;
            })
            .await
            .unwrap();
    });
    Server { addr, engine, stop }
}

async fn connect(s: &Server, origin: Option<&str>) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{}/chat/ws", s.addr).into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

async fn next(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s").expect("open").unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn put(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Says hello; returns the welcome and every line up to `synced`.
async fn hello(ws: &mut Socket, token: Option<&str>, after: i64, lang: &str) -> (Value, Vec<Value>) {
    put(ws, json!({"type": "hello", "token": token, "after": after, "lang": lang})).await;
    let welcome = next(ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let mut lines = Vec::new();
    loop {
        let f = next(ws).await;
        match f["type"].as_str() {
            Some("line") => lines.push(f),
            Some("synced") => return (welcome, lines),
            _ => panic!("unexpected before synced: {f}"),
        }
    }
}

/// Frames up to the ack of `id` (lines), or the error about it.
async fn until_ack(ws: &mut Socket, id: &str) -> Result<Vec<Value>, Value> {
    let mut lines = Vec::new();
    loop {
        let f = next(ws).await;
        match f["type"].as_str() {
            Some("line") => lines.push(f),
            Some("ack") if f["id"] == id => return Ok(lines),
            Some("error") if f["id"] == id => return Err(f),
            _ => panic!("unexpected: {f}"),
        }
    }
}

async fn say(ws: &mut Socket, id: &str, text: &str) -> Result<Vec<Value>, Value> {
    put(ws, json!({"type": "send", "id": id, "text": text})).await;
    until_ack(ws, id).await
}

fn texts(lines: &[Value]) -> Vec<(String, String)> {
    lines.iter().map(|l| (l["from"].as_str().unwrap().to_string(), l["text"].as_str().unwrap().to_string())).collect()
}

#[tokio::test]
async fn a_question_is_stored_answered_and_acknowledged_in_the_browsers_language() {
    let s = serve(Arc::new(MemoryStore::new()), WebConfig::default()).await;
    let mut ws = connect(&s, None).await.unwrap();
    let (welcome, lines) = hello(&mut ws, None, 0, "zh-CN").await;
    assert_eq!(welcome["fresh"], true);
    assert!(lines.is_empty());
    let token = welcome["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("v1.") && token.len() > 60, "{token}");

    let got = say(&mut ws, "m1", "转账一直显示处理中").await.unwrap();
    let t = texts(&got);
    assert_eq!(t[0], ("customer".into(), "转账一直显示处理中".into()), "{t:?}");
    assert_eq!(t[1].0, "bot");
    assert!(t[1].1.contains("处理"), "answered in Chinese: {t:?}");
    // The store has it: the ack came after the commit.
    let conv = s
        .engine
        .store()
        .find_conversation(&switchboard_core::types::ConversationKey {
            channel: "web".into(),
            chat: token.split('.').nth(1).unwrap().into(),
        })
        .await
        .unwrap()
        .expect("stored");
    let stored = s.engine.store().transcript(conv.id, 10).await.unwrap();
    assert_eq!(stored[0].text, "转账一直显示处理中");
    // The web channel reads its replies from the transcript: nothing waits in the outbox.
    assert!(s.engine.store().outbox_pending().await.unwrap().is_empty());

    // A button: the greeting's topics come as choices, and pressing one answers it.
    put(&mut ws, json!({"type": "choice", "id": "m2", "payload": "start"})).await;
    let got = until_ack(&mut ws, "m2").await.unwrap();
    let with_choices = got.iter().find(|l| l["choices"].as_array().is_some_and(|c| !c.is_empty())).expect("buttons offered");
    let payload = with_choices["choices"][0]["payload"].as_str().unwrap().to_string();
    put(&mut ws, json!({"type": "choice", "id": "m3", "payload": payload})).await;
    let got = until_ack(&mut ws, "m3").await.unwrap();
    assert!(got.iter().any(|l| l["from"] == "bot"), "{got:?}");

    // The same id again is stored once, and acknowledged.
    let again = say(&mut ws, "m1", "转账一直显示处理中").await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    let _ = s.stop.send(true);
}

#[tokio::test]
async fn a_reconnect_gets_what_it_missed_once_in_order_and_an_agents_reply_arrives_live() {
    let s = serve(Arc::new(MemoryStore::new()), WebConfig::default()).await;
    let mut ws = connect(&s, None).await.unwrap();
    let (welcome, _) = hello(&mut ws, None, 0, "en-US").await;
    let token = welcome["token"].as_str().unwrap().to_string();
    let got = say(&mut ws, "a1", "I want to talk to a human").await.unwrap();
    let seen = got.last().unwrap()["id"].as_i64().unwrap();
    let ticket = s.engine.store().tickets(&[switchboard_core::types::TicketStatus::Queued]).await.unwrap()[0].id;

    // Live: an agent's reply from another desk comes without asking.
    let bob = Actor::new("desk:bob", "Bob");
    s.engine.agent(&bob, switchboard_core::agents::AgentCommand::Reply(ticket, "Hi, Bob here <b>".into())).await.unwrap();
    // The reply claims the waiting ticket: the customer is told who joined, then the reply.
    let joined = next(&mut ws).await;
    assert_eq!(joined["from"], "bot");
    assert!(joined["text"].as_str().unwrap().contains("Bob"), "{joined}");
    let live = next(&mut ws).await;
    assert_eq!(
        (live["type"].as_str(), live["from"].as_str(), live["text"].as_str()),
        (Some("line"), Some("agent"), Some("Hi, Bob here <b>"))
    );
    let live_id = live["id"].as_i64().unwrap();
    drop(ws);

    // While the page is away: two more replies.
    for text in ["first while away", "second while away"] {
        s.engine.agent(&bob, switchboard_core::agents::AgentCommand::Reply(ticket, text.into())).await.unwrap();
    }
    let mut ws = connect(&s, None).await.unwrap();
    let (welcome, missed) = hello(&mut ws, Some(&token), live_id, "en-US").await;
    assert_eq!(welcome["fresh"], false);
    assert_eq!(texts(&missed), [("agent".into(), "first while away".into()), ("agent".into(), "second while away".into())]);
    // A reload (after = 0) gets the whole conversation, in order, each line once.
    let mut ws2 = connect(&s, None).await.unwrap();
    let (_, all) = hello(&mut ws2, Some(&token), 0, "en-US").await;
    let ids: Vec<i64> = all.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(all[0]["text"], "I want to talk to a human");
    assert!(ids.contains(&seen) && ids.len() == missed.len() + ids.iter().filter(|&&i| i <= live_id).count());
    let _ = s.stop.send(true);
}

#[tokio::test]
async fn forged_or_foreign_tokens_start_a_new_conversation_and_never_read_anothers() {
    let s = serve(Arc::new(MemoryStore::new()), WebConfig::default()).await;
    let mut alice = connect(&s, None).await.unwrap();
    let (welcome, _) = hello(&mut alice, None, 0, "en").await;
    let token = welcome["token"].as_str().unwrap().to_string();
    say(&mut alice, "x1", "my account is locked, my email is alice@example.com").await.unwrap();

    let (_, id, sig) = {
        let mut p = token.split('.');
        (p.next().unwrap(), p.next().unwrap().to_string(), p.next().unwrap().to_string())
    };
    let flipped = format!("v1.{id}.{}{}", &sig[..sig.len() - 1], if sig.ends_with('A') { 'B' } else { 'A' });
    let forgeries = [format!("v1.{id}.AAAA"), flipped, format!("v1.{id}"), id.clone(), "<img src=x onerror=alert(1)>".into()];
    for forged in forgeries {
        let mut mallory = connect(&s, None).await.unwrap();
        let (w, lines) = hello(&mut mallory, Some(&forged), 0, "en").await;
        assert_eq!(w["fresh"], true, "{forged}");
        assert_ne!(w["token"], token.as_str());
        assert!(lines.is_empty(), "a forged token read {lines:?}");
    }
    let _ = s.stop.send(true);
}

#[tokio::test]
async fn bad_frames_long_messages_and_floods_get_a_clear_answer_and_lose_nothing() {
    let config = WebConfig { burst: 3, messages_per_minute: 6, max_message_chars: 50, ..WebConfig::default() };
    let s = serve(Arc::new(MemoryStore::new()), config).await;
    let mut ws = connect(&s, None).await.unwrap();
    hello(&mut ws, None, 0, "en").await;
    // Not JSON, an unknown type, a bad id: told, and the socket stays open.
    for junk in ["{not json", r#"{"type":"dance"}"#, r#"{"type":"send","id":"has space","text":"x"}"#] {
        ws.send(Message::Text(junk.into())).await.unwrap();
        let f = next(&mut ws).await;
        assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("bad_frame")), "{junk}: {f}");
    }
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "bad_frame");
    // Too long: refused whole with the limit named, not stored.
    let err = say(&mut ws, "long", &"x".repeat(51)).await.unwrap_err();
    assert_eq!(err["code"], "too_long");
    assert!(err["message"].as_str().unwrap().contains("50 characters"), "{err}");
    // A frame larger than the server's read buffer (but within the frame limit) is read whole:
    // the same clear answer, on the same socket.
    let big = "长".repeat(switchboard_web::chat::READ_BUFFER_BYTES);
    assert!(big.len() > 2 * switchboard_web::chat::READ_BUFFER_BYTES && big.len() < switchboard_web::chat::MAX_FRAME_BYTES);
    let err = say(&mut ws, "big", &big).await.unwrap_err();
    assert_eq!(err["code"], "too_long", "{err}");
    // A flood: past the burst, refused with the time to wait; what was acknowledged is stored.
    let mut acked = Vec::new();
    let mut limited = None;
    for i in 0..6 {
        match say(&mut ws, &format!("f{i}"), &format!("hello {i}")).await {
            Ok(_) => acked.push(format!("hello {i}")),
            Err(e) => {
                limited = Some(e);
                break;
            }
        }
    }
    let limited = limited.expect("the flood was limited");
    assert_eq!(limited["code"], "rate_limited");
    assert!(limited["retry_ms"].as_u64().unwrap() > 0);
    assert_eq!(acked.len(), 3);
    // A frame over the size limit closes that socket (the page reconnects); the server lives.
    let _ = ws.send(Message::Text("x".repeat(switchboard_web::chat::MAX_FRAME_BYTES + 1).into())).await;
    let mut other = connect(&s, None).await.unwrap();
    hello(&mut other, None, 0, "en").await;
    let convs = s.engine.store().transcript_touched(0, 100).await.unwrap();
    let (conv, _) = convs[0];
    let stored: Vec<String> = s
        .engine
        .store()
        .transcript(conv, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.author == Author::Customer)
        .map(|e| e.text)
        .collect();
    assert_eq!(stored, acked, "exactly the acknowledged messages are stored");
    let _ = s.stop.send(true);
}

#[tokio::test]
async fn other_sites_are_refused_and_allowed_ones_served() {
    let config = WebConfig::from_table(&toml::from_str("allowed_origins = [\"https://shop.example.com\"]").unwrap()).unwrap();
    let s = serve(Arc::new(MemoryStore::new()), config).await;
    let refused = connect(&s, Some("https://evil.example.net")).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
    connect(&s, Some("https://shop.example.com")).await.expect("an allowed site");
    connect(&s, Some(&format!("http://{}", s.addr))).await.expect("the bot's own page");

    // The page may be framed by the allowed site only, and runs no inline script.
    let res = reqwest_get(s.addr, "/chat").await;
    let csp = res.0.get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'self' https://shop.example.com"), "{csp}");
    assert!(!res.1.contains("<script>") && !res.1.contains("onclick"), "no inline script in the page");
    let _ = s.stop.send(true);
}

/// A plain GET over a raw socket (headers, body).
async fn reqwest_get(addr: std::net::SocketAddr, path: &str) -> (axum::http::HeaderMap, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut headers = axum::http::HeaderMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers
                .insert(axum::http::HeaderName::from_bytes(k.trim().to_ascii_lowercase().as_bytes()).unwrap(), v.trim().parse().unwrap());
        }
    }
    (headers, body.to_string())
}

#[tokio::test]
async fn a_restart_keeps_the_conversation_and_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let token;
    let before;
    {
        let s = serve(Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap()), WebConfig::default()).await;
        let mut ws = connect(&s, None).await.unwrap();
        let (w, _) = hello(&mut ws, None, 0, "en").await;
        token = w["token"].as_str().unwrap().to_string();
        before = say(&mut ws, "r1", "my transfer is still pending").await.unwrap();
        let _ = s.stop.send(true);
    }
    let s = serve(Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap()), WebConfig::default()).await;
    let mut ws = connect(&s, None).await.unwrap();
    let (w, lines) = hello(&mut ws, Some(&token), 0, "en").await;
    assert_eq!(w["fresh"], false);
    assert_eq!(texts(&lines), texts(&before));
    assert!(lines.iter().zip(&before).all(|(a, b)| a["id"] == b["id"]));
    let _ = s.stop.send(true);
}
