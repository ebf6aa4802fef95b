//! The console's desk and live updates: the desk `web` the engine tells of every ticket change
//! (from its outbox, like the Telegram and Discord desks), and `GET /console/api/events`, a
//! Server-Sent Events stream that passes each change on to signed-in agents' pages as a small hint
//! — `{"ticket": 12, "kind": "claimed"}`, never a text — on which a page reads the queue and its
//! open ticket again. (Pages also read them every 15 s, for what other instances delivered.)

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use switchboard_core::ChannelError;
use switchboard_core::EngineError;
use switchboard_core::channel::{AgentDesk, TicketView};
use switchboard_core::types::DeskNotice;
use tokio::sync::{broadcast, watch};

use super::auth::{Agent, session};
use crate::{Web, WebError};

/// How often an open stream checks that its session still holds (signed out, expired).
const RECHECK: Duration = Duration::from_secs(30);
/// The comment sent when nothing happened for this long, so proxies keep the stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The desk `web`: hints for open console pages.
#[derive(Debug)]
pub(crate) struct WebDesk {
    hints: broadcast::Sender<String>,
}

impl WebDesk {
    pub(crate) fn new() -> WebDesk {
        WebDesk { hints: broadcast::channel(256).0 }
    }
}

/// A notice's kind (`opened`, `claimed`, `customer_message`…), without what it carries.
fn kind(notice: &DeskNotice) -> String {
    serde_json::to_value(notice)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "changed".into())
}

#[async_trait]
impl AgentDesk for WebDesk {
    fn name(&self) -> &str {
        crate::DESK
    }

    async fn notify(&self, view: &TicketView, notice: &DeskNotice) -> Result<(), ChannelError> {
        // No page open is not a failure: pages read everything when they open.
        let _ = self.hints.send(serde_json::json!({ "ticket": view.ticket.id, "kind": kind(notice) }).to_string());
        Ok(())
    }
}

/// One page's stream.
struct Feed {
    web: Arc<Web>,
    hints: broadcast::Receiver<String>,
    stop: watch::Receiver<bool>,
    key: String,
    recheck: tokio::time::Instant,
}

impl Feed {
    /// The next event; `None` ends the stream (the server stops, the session ended).
    async fn next(&mut self) -> Option<Event> {
        loop {
            let stop = &mut self.stop;
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::select! {
                () = stopped => return None,
                hint = self.hints.recv() => return match hint {
                    Ok(h) => Some(Event::default().data(h)),
                    // Missed some: the page reads everything again.
                    Err(broadcast::error::RecvError::Lagged(_)) => Some(Event::default().data(r#"{"ticket":null,"kind":"lagged"}"#)),
                    Err(broadcast::error::RecvError::Closed) => None,
                },
                () = tokio::time::sleep_until(self.recheck) => {
                    self.recheck = tokio::time::Instant::now() + RECHECK;
                    // A store that does not answer ends nothing.
                    if matches!(session(&self.web, &self.key).await, Ok(None)) {
                        return None;
                    }
                }
            }
        }
    }
}

/// `GET /console/api/events`: Server-Sent Events, one `{ticket, kind}` hint per ticket change,
/// to signed-in agents on the allowlist.
pub(crate) async fn events(State(web): State<Arc<Web>>, agent: Agent) -> Result<Response, WebError> {
    if !web.engine.is_agent(&agent.actor()) {
        return Err(WebError::Engine(EngineError::NotAnAgent));
    }
    let feed = Feed {
        hints: web.console.desk.hints.subscribe(),
        stop: web.shutdown.clone(),
        key: agent.key,
        recheck: tokio::time::Instant::now() + RECHECK,
        web,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move { feed.next().await.map(|e| (Ok::<_, Infallible>(e), feed)) });
    let mut res = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    // Proxies (nginx) pass each event on at once.
    res.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}
