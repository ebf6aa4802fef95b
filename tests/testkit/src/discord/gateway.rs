//! The fake's gateway, over plain `ws://`: HELLO on connect, IDENTIFY → READY (a new session),
//! RESUME → the events the client missed, then RESUMED; heartbeats are ACKed. Every dispatched
//! event is logged with its sequence number so a resume can replay what came after the client's.

use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Frame, Gateway, Session, State, json as j};

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new().route("/gateway", get(upgrade)).with_state(state)
}

async fn upgrade(AxState(s): AxState<Arc<State>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(s, socket))
}

fn text(v: &Value) -> Frame {
    Frame::Text(v.to_string())
}

/// Logs a dispatch and sends it to the live connection, if any.
pub(super) fn dispatch(g: &mut Gateway, kind: &str, data: Value) {
    let Some(session) = g.session.as_mut() else {
        tracing::warn!(kind, "fake Discord: no gateway session yet, event dropped");
        return;
    };
    session.seq += 1;
    let event = json!({ "op": 0, "s": session.seq, "t": kind, "d": data });
    session.log.push((session.seq, event.clone()));
    if let Some((_, tx)) = &g.live {
        let _ = tx.send(text(&event));
    }
}

async fn connection(s: Arc<State>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    let conn = {
        let mut st = s.lock();
        st.gateway.next_conn += 1;
        st.gateway.stats.connections += 1;
        st.gateway.next_conn
    };
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let sent = match f {
                Frame::Text(t) => sink.send(Message::Text(t.into())).await,
                Frame::Close(code) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: "fake drop".into() }))).await;
                    break;
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let _ = tx.send(text(&json!({ "op": 10, "d": { "heartbeat_interval": s.heartbeat_ms } })));
    while let Some(Ok(msg)) = stream.next().await {
        let payload: Value = match msg {
            Message::Text(t) => serde_json::from_str(t.as_str()).unwrap_or(Value::Null),
            Message::Close(_) => break,
            _ => continue,
        };
        match payload["op"].as_u64() {
            Some(1) => {
                s.lock().gateway.stats.heartbeats += 1;
                let _ = tx.send(text(&json!({ "op": 11 })));
            }
            Some(2) => {
                let (s, tx) = (s.clone(), tx.clone());
                tokio::spawn(async move {
                    wait_unpaused(&s).await;
                    identify(&s, conn, tx);
                });
            }
            Some(6) => {
                let (s, tx) = (s.clone(), tx.clone());
                let session = payload["d"]["session_id"].as_str().unwrap_or_default().to_string();
                let seq = payload["d"]["seq"].as_u64().unwrap_or(0);
                tokio::spawn(async move {
                    wait_unpaused(&s).await;
                    resume(&s, conn, tx, &session, seq);
                });
            }
            _ => {}
        }
    }
    {
        let mut st = s.lock();
        if st.gateway.live.as_ref().is_some_and(|(c, _)| *c == conn) {
            st.gateway.live = None;
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn wait_unpaused(s: &State) {
    let mut rx = s.paused.subscribe();
    let _ = rx.wait_for(|p| !*p).await;
}

fn identify(s: &State, conn: u64, tx: mpsc::UnboundedSender<Frame>) {
    let mut st = s.lock();
    let g = &mut st.gateway;
    g.stats.identifies += 1;
    let id = format!("fake-session-{}", g.stats.identifies);
    g.session = Some(Session { id: id.clone(), seq: 0, log: Vec::new() });
    g.live = Some((conn, tx));
    dispatch(g, "READY", j::ready(&id, &s.ws_url()));
}

fn resume(s: &State, conn: u64, tx: mpsc::UnboundedSender<Frame>, session: &str, seq: u64) {
    let mut st = s.lock();
    let g = &mut st.gateway;
    let Some(sess) = g.session.as_ref().filter(|x| x.id == session) else {
        let _ = tx.send(text(&json!({ "op": 9, "d": false })));
        return;
    };
    let missed: Vec<Value> = sess.log.iter().filter(|(s, _)| *s > seq).map(|(_, e)| e.clone()).collect();
    g.stats.replayed += missed.len();
    for e in &missed {
        let _ = tx.send(text(e));
    }
    g.stats.resumes += 1;
    g.live = Some((conn, tx));
    dispatch(g, "RESUMED", json!({}));
}
