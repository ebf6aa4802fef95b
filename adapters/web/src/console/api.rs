//! The console's JSON routes for the queue and tickets: `GET queue`, `GET tickets/{id}`, and the
//! ticket actions (`claim`, `release`, `close`, `reply {text}`, `note {text}`), each one
//! [`Engine::agent`](switchboard_core::engine::Engine::agent) command as `web:<name>`. The engine
//! decides (the allowlist, one owner per ticket); its refusals reach the agent in its words.
//! Every text is sent as JSON data; the page puts it on screen as text.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::EngineError;
use switchboard_core::agents::{AGENT_NAMES, AgentCommand, AgentOutcome, TicketDetail};
use switchboard_core::channel::{QueueLine, TicketView, reason_text};
use switchboard_core::types::{Author, Millis, Ticket, TicketEventKind, now_ms};

use super::auth::{Agent, json_body};
use crate::{Web, WebError};

/// An agent as the page shows them: actor id and name.
#[derive(Debug, Clone, Serialize)]
struct Person {
    id: String,
    name: String,
}

/// Agents' names by actor id, read once per request.
struct Names<'a> {
    web: &'a Web,
    known: HashMap<String, String>,
}

impl<'a> Names<'a> {
    fn new(web: &'a Web) -> Names<'a> {
        Names { web, known: HashMap::new() }
    }

    async fn person(&mut self, id: &str) -> Person {
        if let Some(name) = self.known.get(id) {
            return Person { id: id.to_string(), name: name.clone() };
        }
        let name = self.web.engine.store().get_value(AGENT_NAMES, id).await.ok().flatten().unwrap_or_else(|| id.to_string());
        self.known.insert(id.to_string(), name.clone());
        Person { id: id.to_string(), name }
    }
}

/// A ticket as the queue and the ticket view show it.
async fn ticket_json(t: &Ticket, now: Millis, names: &mut Names<'_>) -> Value {
    let line = QueueLine::new(t, now);
    let holder = match line.holder {
        Some(id) => Some(names.person(id).await),
        None => None,
    };
    json!({
        "id": t.id,
        "priority": t.priority.as_str(),
        "urgent": t.priority == switchboard_core::types::Priority::Urgent,
        "status": t.status.as_str(),
        "holder": holder,
        "customer_name": t.customer_name,
        "channel": t.key.channel,
        "reason": reason_text(&t.reason),
        "waiting_minutes": line.waiting_minutes,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

/// The ticket `id` of a path, or why not.
fn ticket_id(raw: &str) -> Result<i64, WebError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| WebError::BadRequest(format!("{raw:?} is not a ticket number")))
}

fn unexpected() -> WebError {
    WebError::Engine(EngineError::BadCommand("the engine answered something unexpected".into()))
}

/// `GET /console/api/queue`: the waiting and assigned tickets of every channel, urgent first,
/// then oldest: `{now, tickets: [{id, priority, urgent, status, holder, customer_name, channel,
/// reason, waiting_minutes, created_at, updated_at}]}`.
pub(crate) async fn queue(State(web): State<Arc<Web>>, agent: Agent) -> Result<Json<Value>, WebError> {
    let AgentOutcome::Queue(tickets) = web.engine.agent(&agent.actor(), AgentCommand::Queue).await? else {
        return Err(unexpected());
    };
    let now = now_ms();
    let mut names = Names::new(&web);
    let mut list = Vec::with_capacity(tickets.len());
    for t in &tickets {
        list.push(ticket_json(t, now, &mut names).await);
    }
    Ok(Json(json!({ "now": now, "tickets": list })))
}

/// `GET /console/api/tickets/{id}`: `{ticket: {… as in the queue, customer_id, language, fields},
/// transcript: [{id, from, agent, text, at}], notes: [{agent, text, at}], history: [{at, what,
/// agent, text}]}`.
pub(crate) async fn show(State(web): State<Arc<Web>>, agent: Agent, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let id = ticket_id(&id)?;
    let AgentOutcome::Detail(detail) = web.engine.agent(&agent.actor(), AgentCommand::Show(id)).await? else {
        return Err(unexpected());
    };
    Ok(Json(detail_json(&web, *detail).await))
}

async fn detail_json(web: &Web, detail: TicketDetail) -> Value {
    let TicketDetail { ticket, events, transcript } = detail;
    let mut names = Names::new(web);
    let mut t = ticket_json(&ticket, now_ms(), &mut names).await;
    let fields: Vec<Value> = ticket.fields.iter().map(|f| json!({ "name": f.name, "value": f.value })).collect();
    let view = TicketView { ticket, recent: transcript };
    if let Some(o) = t.as_object_mut() {
        o.insert("customer_id".into(), json!(view.ticket.customer_id));
        o.insert("language".into(), json!(view.language()));
        o.insert("fields".into(), json!(fields));
    }
    let mut lines = Vec::with_capacity(view.recent.len());
    for e in &view.recent {
        let (from, agent) = match &e.author {
            Author::Customer => ("customer", None),
            Author::Bot => ("bot", None),
            Author::Agent(a) => ("agent", Some(names.person(a).await)),
        };
        lines.push(json!({ "id": e.id, "from": from, "agent": agent, "text": e.text, "at": e.at }));
    }
    let mut notes = Vec::new();
    let mut history = Vec::new();
    for e in &events {
        let (what, agent, text): (&str, Option<&str>, Option<String>) = match &e.kind {
            TicketEventKind::Opened => ("opened", None, None),
            TicketEventKind::Claimed { agent } => ("claimed", Some(agent), None),
            TicketEventKind::Released { agent } => ("released", Some(agent), None),
            TicketEventKind::Closed { agent } => ("closed", Some(agent), None),
            // In the transcript.
            TicketEventKind::CustomerMessage { .. } | TicketEventKind::AgentReply { .. } => continue,
            TicketEventKind::Note { agent, text } => {
                let who = names.person(agent).await;
                notes.push(json!({ "agent": who, "text": text, "at": e.at }));
                continue;
            }
            TicketEventKind::DeliveryFailed { reason } => ("a message could not be delivered", None, Some(reason.clone())),
            TicketEventKind::Blocked { agent, until, reason } => {
                let until = match until {
                    Some(_) => "customer blocked for a while",
                    None => "customer blocked until unblocked",
                };
                (until, Some(agent), Some(reason.clone()).filter(|r| !r.is_empty()))
            }
            TicketEventKind::Unblocked { agent } => ("customer unblocked", Some(agent), None),
            TicketEventKind::Rated { score, comment } => {
                history.push(json!({ "at": e.at, "what": format!("rated {score} of 5"), "agent": null, "text": comment }));
                continue;
            }
            TicketEventKind::Erased { by } => ("customer's data erased", Some(by), None),
        };
        let agent = match agent {
            Some(a) => Some(names.person(a).await),
            None => None,
        };
        history.push(json!({ "at": e.at, "what": what, "agent": agent, "text": text }));
    }
    json!({ "ticket": t, "transcript": lines, "notes": notes, "history": history })
}

/// Runs a ticket action and answers the ticket after it: `{ticket}`.
async fn act(web: &Web, agent: &Agent, cmd: AgentCommand, id: i64, what: &'static str) -> Result<Json<Value>, WebError> {
    let AgentOutcome::Done(t) = web.engine.agent(&agent.actor(), cmd).await? else {
        return Err(unexpected());
    };
    tracing::info!(agent = %agent.name, action = what, ticket = id, "console: ticket action");
    let mut names = Names::new(web);
    Ok(Json(json!({ "ticket": ticket_json(&t, now_ms(), &mut names).await })))
}

/// `POST /console/api/tickets/{id}/claim`.
pub(crate) async fn claim(State(web): State<Arc<Web>>, agent: Agent, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let id = ticket_id(&id)?;
    act(&web, &agent, AgentCommand::Claim(id), id, "claim").await
}

/// `POST /console/api/tickets/{id}/release`.
pub(crate) async fn release(State(web): State<Arc<Web>>, agent: Agent, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let id = ticket_id(&id)?;
    act(&web, &agent, AgentCommand::Release(id), id, "release").await
}

/// `POST /console/api/tickets/{id}/close`.
pub(crate) async fn close(State(web): State<Arc<Web>>, agent: Agent, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let id = ticket_id(&id)?;
    act(&web, &agent, AgentCommand::Close(id), id, "close").await
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

/// `POST /console/api/tickets/{id}/reply {text}`: to the customer (claims a waiting ticket).
pub(crate) async fn reply(
    State(web): State<Arc<Web>>,
    agent: Agent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, WebError> {
    let id = ticket_id(&id)?;
    let Text { text } = json_body(&headers, &body, r#"{"text": "…"}"#)?;
    act(&web, &agent, AgentCommand::Reply(id, text), id, "reply").await
}

/// `POST /console/api/tickets/{id}/note {text}`: an internal note.
pub(crate) async fn note(
    State(web): State<Arc<Web>>,
    agent: Agent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, WebError> {
    let id = ticket_id(&id)?;
    let Text { text } = json_body(&headers, &body, r#"{"text": "…"}"#)?;
    act(&web, &agent, AgentCommand::Note(id, text), id, "note").await
}
