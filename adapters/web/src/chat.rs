//! The chat widget's live connection: one WebSocket per open page, speaking JSON frames.
//!
//! Page → server: `hello {token?, after, lang?}` first, then `send {id, text}` and
//! `choice {id, payload}`. Server → page: `welcome {token, fresh, title, max_chars}`, `line {id,
//! from, text, choices, at}` for every transcript line after the page's last (its own messages
//! too, as stored: secrets masked), `synced {last}` once the lines there were at connection are
//! sent, `ack {id}` once a message is stored, and `error {id?, code,
//! message, retry_ms?}`. A message is acknowledged only after the engine committed it; a page
//! sends unacknowledged messages again (same id: stored once) after a reconnect or `retry_ms`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use serde::{Deserialize, Serialize};
use switchboard_core::types::{Author, Choice, Content, ConversationKey, Inbound, TranscriptEntry, now_ms};

use crate::Web;

/// The channel name web conversations carry.
pub const CHANNEL: &str = "web";
/// The largest frame a page may send, in bytes (a message at `max_message_chars` fits many times).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Each socket's read buffer to start with, in bytes.
pub const READ_BUFFER_BYTES: usize = 8 * 1024;
/// How long a new connection has to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(10);
/// How the transcript keeps the page's opening: the greeting button, pressed by the page when a
/// visitor opens the chat for the first time.
const OPENING: &str = "[start]";
/// How often a quiet socket is pinged.
const PING_EVERY: Duration = Duration::from_secs(25);
/// Lines sent per read when a page catches up.
const BATCH: usize = 200;

/// A frame from the page.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromPage {
    Hello {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        after: i64,
        #[serde(default)]
        lang: Option<String>,
    },
    Send {
        id: String,
        text: String,
    },
    Choice {
        id: String,
        payload: String,
    },
}

/// A frame to the page.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToPage<'a> {
    Welcome {
        token: &'a str,
        fresh: bool,
        title: &'a str,
        max_chars: usize,
    },
    Line {
        id: i64,
        from: &'static str,
        text: &'a str,
        choices: &'a [Choice],
        at: i64,
    },
    /// The page has every line there was when it connected.
    Synced {
        last: i64,
    },
    Ack {
        id: &'a str,
    },
    Error {
        id: Option<&'a str>,
        code: &'static str,
        message: String,
        retry_ms: Option<u64>,
    },
}

/// Serves one page's socket until it closes or the server stops.
pub async fn serve(web: Arc<Web>, mut socket: WebSocket) {
    let Some((visitor, after, lang)) = hello(&web, &mut socket).await else {
        return;
    };
    let mut page = Page { web: web.clone(), visitor, cursor: after, lang, conversation: None, wake: None };
    if page.attach().await.is_err() || page.flush(&mut socket).await.is_err() {
        return;
    }
    if send(&mut socket, &ToPage::Synced { last: page.cursor }).await.is_err() {
        return;
    }
    let mut stop = web.shutdown.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    // A ping now and then keeps proxies from closing a quiet chat, and finds dead peers.
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() { return; }
            }
            _ = &mut stopped => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        if send(&mut socket, &bad_frame("frames are JSON text")).await.is_err() { return; }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                if page.on_frame(&mut socket, text.as_str()).await.is_err() {
                    return;
                }
            }
            changed = async { match page.wake.as_mut() { Some(w) => w.changed().await, None => std::future::pending().await } } => {
                if changed.is_err() { page.wake = None; continue; }
                let wake = page.wake.as_mut().map(|w| *w.borrow_and_update()).unwrap_or_default();
                if wake.newest.is_some_and(|n| n <= page.cursor) {
                    continue;
                }
                if page.flush(&mut socket).await.is_err() { return; }
            }
        }
    }
}

/// Reads the hello frame: the visitor (theirs if the token is ours and unaltered, else a new
/// one), the last line the page has, its language; the welcome is sent.
async fn hello(web: &Web, socket: &mut WebSocket) -> Option<(String, i64, Option<String>)> {
    let first = tokio::time::timeout(HELLO_WITHIN, socket.recv()).await.ok()??.ok()?;
    let Message::Text(text) = first else {
        let _ = send(socket, &bad_frame("say hello first")).await;
        return None;
    };
    let Ok(FromPage::Hello { token, after, lang }) = serde_json::from_str::<FromPage>(text.as_str()) else {
        let _ = send(socket, &bad_frame("say hello first: {\"type\":\"hello\",\"token\":…,\"after\":0}")).await;
        return None;
    };
    let known = token.as_deref().and_then(|t| web.signer.visitor(t));
    let (visitor, token, fresh, after) = match known {
        Some(v) => {
            let t = web.signer.token(&v);
            (v, t, false, after.max(0))
        }
        // A new conversation: whatever the page had is not this visitor's.
        None => {
            let (v, t) = web.signer.new_visitor();
            (v, t, true, 0)
        }
    };
    let lang = lang.filter(|l| l.len() <= 35 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let welcome = ToPage::Welcome { token: &token, fresh, title: &web.config.title, max_chars: web.config.max_message_chars };
    send(socket, &welcome).await.ok()?;
    Some((visitor, after, lang))
}

/// One open page.
struct Page {
    web: Arc<Web>,
    visitor: String,
    /// The last line the page has.
    cursor: i64,
    lang: Option<String>,
    conversation: Option<i64>,
    wake: Option<tokio::sync::watch::Receiver<crate::hub::Wake>>,
}

/// The socket is gone.
struct Gone;

impl Page {
    fn key(&self) -> ConversationKey {
        ConversationKey { channel: CHANNEL.into(), chat: self.visitor.clone() }
    }

    /// Finds the visitor's conversation, once there is one, and starts watching it.
    async fn attach(&mut self) -> Result<(), switchboard_core::StoreError> {
        if self.conversation.is_none()
            && let Some(c) = self.web.engine.store().find_conversation(&self.key()).await?
        {
            self.conversation = Some(c.id);
            self.wake = Some(self.web.hub.watch(c.id));
        }
        Ok(())
    }

    /// Sends the lines after the page's last, in order.
    async fn flush(&mut self, socket: &mut WebSocket) -> Result<(), Gone> {
        let Some(conv) = self.conversation else { return Ok(()) };
        // What woke the page so far is read now: only a later wake reads again (the one for the
        // page's own message, sent as it was committed, does not).
        if let Some(w) = self.wake.as_mut() {
            w.borrow_and_update();
        }
        loop {
            let lines = match self.web.engine.store().transcript_after(conv, self.cursor, BATCH).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(error = %e, "web: cannot read a transcript; the page is woken again later");
                    return Ok(());
                }
            };
            for line in &lines {
                // The page's own opening (the greeting's `start` button, pressed for the
                // visitor) is not something they said.
                if !(line.author == Author::Customer && line.text == OPENING) {
                    send(socket, &line_frame(line)).await?;
                }
                self.cursor = line.id;
            }
            if lines.len() < BATCH {
                return Ok(());
            }
        }
    }

    async fn on_frame(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), Gone> {
        let frame = match serde_json::from_str::<FromPage>(text) {
            Ok(f) => f,
            Err(e) => return send(socket, &bad_frame(&format!("a frame this server does not read: {}", short(&e.to_string())))).await,
        };
        let (id, content) = match frame {
            FromPage::Hello { .. } => return send(socket, &bad_frame("hello was said already")).await,
            FromPage::Send { id, text } => (id, Content::Text(text)),
            FromPage::Choice { id, payload } => (id, Content::Choice(payload)),
        };
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return send(socket, &bad_frame("a message id is 1 to 64 letters, digits, '-' or '_'")).await;
        }
        let max = self.web.config.max_message_chars;
        match &content {
            Content::Text(t) if t.trim().is_empty() => {
                return send(socket, &error(Some(&id), "empty", "There is nothing to send.".into(), None)).await;
            }
            Content::Text(t) if t.chars().count() > max => {
                let message = format!("This message is too long: keep it under {max} characters, or send it in parts.");
                return send(socket, &error(Some(&id), "too_long", message, None)).await;
            }
            Content::Choice(p) if p.is_empty() || p.len() > 64 => {
                return send(socket, &bad_frame("a button's payload is 1 to 64 bytes")).await;
            }
            _ => {}
        }
        if let Err(wait) = self.web.pace(&self.visitor) {
            let secs = wait.as_secs().max(1);
            let message = format!("You are sending messages faster than we can read them. This one is sent again in {secs} s.");
            return send(socket, &error(Some(&id), "rate_limited", message, Some(wait.as_millis() as u64))).await;
        }
        let inbound = Inbound {
            channel: CHANNEL.into(),
            conversation: self.visitor.clone(),
            customer_id: self.visitor.clone(),
            customer_name: format!("Web visitor {}", &self.visitor[..4.min(self.visitor.len())]),
            content,
            message_id: format!("{}:{id}", self.visitor),
            at: now_ms(),
            lang_hint: self.lang.clone(),
            deleted: None,
        };
        match self.web.engine.handle(inbound).await {
            Ok(_) => {
                if self.attach().await.is_err() {
                    tracing::debug!("web: stored, but the conversation cannot be read now; the page catches up later");
                }
                self.flush(socket).await?;
                send(socket, &ToPage::Ack { id: &id }).await
            }
            Err(e) if e.is_transient() => {
                let message = "We could not take your message just now; it is sent again shortly.".to_string();
                send(socket, &error(Some(&id), "unavailable", message, Some(2000))).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "web: a message was refused");
                send(socket, &error(Some(&id), "refused", "This message cannot be taken.".into(), None)).await
            }
        }
    }
}

fn line_frame(line: &TranscriptEntry) -> ToPage<'_> {
    let from = match line.author {
        Author::Customer => "customer",
        Author::Bot => "bot",
        Author::Agent(_) => "agent",
    };
    ToPage::Line { id: line.id, from, text: &line.text, choices: &line.choices, at: line.at }
}

fn error<'a>(id: Option<&'a str>, code: &'static str, message: String, retry_ms: Option<u64>) -> ToPage<'a> {
    ToPage::Error { id, code, message, retry_ms }
}

fn bad_frame(why: &str) -> ToPage<'static> {
    ToPage::Error { id: None, code: "bad_frame", message: why.to_string(), retry_ms: None }
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

async fn send(socket: &mut WebSocket, frame: &ToPage<'_>) -> Result<(), Gone> {
    let text = serde_json::to_string(frame).map_err(|_| Gone)?;
    socket.send(Message::Text(text.into())).await.map_err(|_| Gone)
}
