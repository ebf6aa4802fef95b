//! Agent commands, channel-neutral: the allowlist, the queue and ticket views, and the ticket
//! actions (claim, reply, note, release, close), each planned from the stored ticket and
//! conversation and applied as one commit that the store refuses if the owner moved meanwhile.
//! Every desk (Telegram topics, Discord threads, the terminal) is a front end to [`Engine::agent`].

use crate::dialogue::Phrase;
use crate::engine::{CONFLICT_RETRIES, Engine, conflict_pause};
use crate::hant::in_script;
use crate::matcher::normalize::clean;
use crate::store::Commit;
use crate::types::{
    Actor, Author, Conversation, DeskNotice, Line, MAX_AGENT_CHARS, Outgoing, Owner, Reply, Ticket, TicketEvent, TicketEventKind,
    TicketStatus, TranscriptEntry, now_ms,
};
use crate::{EngineError, Lang, StoreError};

/// An agent's command, channel-neutral. Each variant's doc is its help text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// List waiting and assigned tickets, urgent first, then oldest.
    Queue,
    /// Show a ticket with its details, history and transcript.
    Show(i64),
    /// Take a ticket: the bot goes silent and you answer the customer.
    Claim(i64),
    /// Send a message to the ticket's customer (claims the ticket if it is waiting).
    Reply(i64, String),
    /// Add an internal note; the customer never sees it.
    Note(i64, String),
    /// Put the ticket back in the queue.
    Release(i64),
    /// Close the ticket and hand the customer back to the bot.
    Close(i64),
    /// Block the ticket's customer, for a while (`2h`, `7d`) or until unblocked, with a reason:
    /// their messages are stored but neither answered nor relayed.
    Block {
        /// The ticket whose customer is blocked.
        ticket: i64,
        /// How long; `None` until unblocked.
        duration: Option<std::time::Duration>,
        /// Why, for the ticket's history.
        reason: String,
    },
    /// Lift the block on the ticket's customer.
    Unblock(i64),
}

/// A ticket with its history and transcript.
#[derive(Debug, Clone)]
pub struct TicketDetail {
    /// The ticket.
    pub ticket: Ticket,
    /// Its events, oldest first.
    pub events: Vec<TicketEvent>,
    /// The conversation's transcript, oldest first.
    pub transcript: Vec<TranscriptEntry>,
}

/// What an agent command produced.
#[derive(Debug, Clone)]
pub enum AgentOutcome {
    /// The queue.
    Queue(Vec<Ticket>),
    /// A ticket's detail.
    Detail(Box<TicketDetail>),
    /// The ticket after the change.
    Done(Ticket),
}

/// The key-value namespace where agents' names are kept by actor id.
pub const AGENT_NAMES: &str = "agent.names";

impl Engine {
    /// Records the name an agent goes by, so that others are told "Alice (telegram:123)" rather
    /// than a bare platform id. Written when it changes (remembered per process meanwhile).
    async fn remember_name(&self, actor: &Actor) {
        let known = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(&actor.id) == Some(&actor.name);
        if known || actor.name == actor.id {
            return;
        }
        match self.store.set_value(AGENT_NAMES, &actor.id, &actor.name).await {
            Ok(()) => {
                self.names.lock().unwrap_or_else(|p| p.into_inner()).insert(actor.id.clone(), actor.name.clone());
            }
            Err(e) => tracing::debug!(error = %e, "cannot record an agent's name"),
        }
    }

    /// How an agent is named to others: `Alice (telegram:123)`, or the bare id if no name is known.
    async fn agent_label(&self, id: &str) -> String {
        let cached = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let name = match cached {
            Some(n) => Some(n),
            None => self.store.get_value(AGENT_NAMES, id).await.ok().flatten(),
        };
        match name {
            Some(n) if n != id => format!("{n} ({id})"),
            _ => id.to_string(),
        }
    }

    /// Whether the allowlist lets `actor` act on tickets.
    pub fn is_agent(&self, actor: &Actor) -> bool {
        let allowed = |id: &str| {
            self.config.agents.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix),
                None => a == id,
            })
        };
        allowed(&actor.id) || actor.roles.iter().any(|r| allowed(r))
    }

    /// Runs an agent command. Anyone not on the allowlist is refused, and the attempt logged.
    pub async fn agent(&self, actor: &Actor, cmd: AgentCommand) -> Result<AgentOutcome, EngineError> {
        crate::metrics::agent(self.agent_command(actor, cmd).await)
    }

    async fn agent_command(&self, actor: &Actor, cmd: AgentCommand) -> Result<AgentOutcome, EngineError> {
        let named = Actor { name: crate::channel::display_name(&actor.name, "Agent"), ..actor.clone() };
        let actor = &named;
        if !self.is_agent(actor) {
            tracing::warn!(actor = %actor.id, command = ?command_name(&cmd), "refused an agent command from someone not on the allowlist");
            return Err(EngineError::NotAnAgent);
        }
        self.remember_name(actor).await;
        tracing::info!(actor = %actor.id, command = ?command_name(&cmd), "agent command");
        match cmd {
            AgentCommand::Queue => Ok(AgentOutcome::Queue(self.store.tickets(&[TicketStatus::Queued, TicketStatus::Assigned]).await?)),
            AgentCommand::Show(id) => {
                let ticket = self.store.ticket(id).await?.ok_or(EngineError::NoSuchTicket(id))?;
                let events = self.store.ticket_events(id).await?;
                let transcript = self.store.transcript(ticket.conversation_id, 500).await?;
                Ok(AgentOutcome::Detail(Box::new(TicketDetail { ticket, events, transcript })))
            }
            AgentCommand::Reply(_, ref text) | AgentCommand::Note(_, ref text) if clean(text).trim().is_empty() => {
                Err(EngineError::BadCommand("the message is empty".into()))
            }
            // Refused rather than cut: the agent would not know the customer got only part of it.
            // (Anything shorter is split into as many platform messages as needed.)
            AgentCommand::Reply(_, ref text) | AgentCommand::Note(_, ref text) if clean(text).chars().count() > MAX_AGENT_CHARS => {
                Err(EngineError::BadCommand(format!(
                    "the message is {} characters long; at most {MAX_AGENT_CHARS} go in one, send the rest in another",
                    clean(text).chars().count()
                )))
            }
            AgentCommand::Claim(id)
            | AgentCommand::Reply(id, _)
            | AgentCommand::Note(id, _)
            | AgentCommand::Release(id)
            | AgentCommand::Close(id)
            | AgentCommand::Block { ticket: id, .. }
            | AgentCommand::Unblock(id) => self.ticket_action(actor, id, &cmd).await,
        }
    }

    async fn ticket_action(&self, actor: &Actor, id: i64, cmd: &AgentCommand) -> Result<AgentOutcome, EngineError> {
        let key = self.store.ticket(id).await?.ok_or(EngineError::NoSuchTicket(id))?.key;
        let _turn = self.stripe(&key).lock().await;
        for attempt in 0..CONFLICT_RETRIES {
            let ticket = self.store.ticket(id).await?.ok_or(EngineError::NoSuchTicket(id))?;
            let conv = self.store.conversation(ticket.conversation_id).await?.ok_or(EngineError::NoSuchTicket(id))?;
            let holder = match &ticket.agent {
                Some(a) if a != &actor.id => Some(self.agent_label(a).await),
                _ => None,
            };
            let customer = crate::guard::customer_key(&ticket.key.channel, &ticket.customer_id);
            let block = match self.store.get_value(crate::guard::BLOCKS, &customer).await? {
                Some(v) => crate::guard::Block::parse(&v),
                None => None,
            };
            let (commit, after) = self.plan_ticket_action(actor, ticket, conv, cmd, holder, block)?;
            let blocking = !commit.values.is_empty();
            let lines = !commit.transcript.is_empty();
            match self.store.commit(self.split_commit(commit)).await {
                Ok(done) => {
                    self.wake.notify_one();
                    if lines {
                        self.wrote(done.conversation.id);
                    }
                    if blocking {
                        // Holds in this process from the next message; other instances read it
                        // within `guard::BLOCKS_FRESH`.
                        self.blocks.forget().await;
                    }
                    crate::metrics::ticket_action(&*self.store, cmd, &after).await;
                    return Ok(AgentOutcome::Done(after));
                }
                Err(StoreError::Conflict(_)) => {
                    self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    conflict_pause(attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Busy)
    }

    fn plan_ticket_action(
        &self,
        actor: &Actor,
        ticket: Ticket,
        conv: Conversation,
        cmd: &AgentCommand,
        holder: Option<String>,
        block: Option<crate::guard::Block>,
    ) -> Result<(Commit, Ticket), EngineError> {
        let at = now_ms().max(ticket.updated_at);
        let invalid = |why: String| EngineError::InvalidTicketState { ticket: ticket.id, why };
        let closed = ticket.status == TicketStatus::Closed;
        let mine = ticket.agent.as_deref() == Some(actor.id.as_str());
        let other = match (&ticket.status, &ticket.agent) {
            (TicketStatus::Assigned, Some(a)) if a != &actor.id => Some(holder.unwrap_or_else(|| a.clone())),
            _ => None,
        };
        let mut t = ticket.clone();
        t.updated_at = at;
        let mut conv_next = conv.clone();
        // The conversation is only touched while this ticket is its current one.
        let current = conv.ticket_id == Some(ticket.id);
        let mut commit = Commit::new(conv_next.clone(), at);
        commit.update_ticket = Some(t.clone());
        commit.ticket_was = Some((ticket.status, ticket.agent.clone()));
        let lang = ticket.lang;
        let traditional = conv.state.traditional;
        let claim = |commit: &mut Commit, t: &mut Ticket, conv_next: &mut Conversation| {
            t.status = TicketStatus::Assigned;
            t.agent = Some(actor.id.clone());
            conv_next.owner = Owner::Agent(actor.id.clone());
            commit.events.push(TicketEventKind::Claimed { agent: actor.id.clone() });
            let joined = match lang {
                Lang::Zh => format!("客服 {} 已接入,将为您处理。", actor.name),
                Lang::En => format!("{} from our support team has joined and will help you.", actor.name),
            };
            let joined = in_script(Reply::text(joined), lang, traditional);
            commit.transcript.push(Line::bot(&joined));
            commit.outbox.push(Outgoing::Customer { key: ticket.key.clone(), reply: joined, ticket_id: Some(ticket.id) });
        };
        match cmd {
            AgentCommand::Claim(_) => {
                if closed {
                    return Err(invalid("is closed".into()));
                }
                if let Some(o) = other {
                    return Err(invalid(format!("is already with {o}; they must release it first")));
                }
                if mine {
                    return Ok((Commit::new(conv, at), ticket));
                }
                claim(&mut commit, &mut t, &mut conv_next);
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Claimed { agent: actor.name.clone() }, Some(actor));
            }
            AgentCommand::Reply(_, text) => {
                if closed {
                    return Err(invalid("is closed; the customer is back with the bot".into()));
                }
                if let Some(o) = other {
                    return Err(invalid(format!("is with {o}")));
                }
                if t.status == TicketStatus::Queued {
                    claim(&mut commit, &mut t, &mut conv_next);
                    self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Claimed { agent: actor.name.clone() }, Some(actor));
                }
                let text = clean(text);
                commit.events.push(TicketEventKind::AgentReply { agent: actor.id.clone(), text: text.clone() });
                commit.transcript.push(Line::from((Author::Agent(actor.id.clone()), text.clone())));
                commit.outbox.push(Outgoing::Customer {
                    key: ticket.key.clone(),
                    reply: Reply::text(text.clone()),
                    ticket_id: Some(ticket.id),
                });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::AgentReply { agent: actor.name.clone(), text }, Some(actor));
            }
            AgentCommand::Note(_, text) => {
                let text = clean(text);
                commit.events.push(TicketEventKind::Note { agent: actor.id.clone(), text: text.clone() });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Note { agent: actor.name.clone(), text }, Some(actor));
            }
            AgentCommand::Release(_) => {
                if closed {
                    return Err(invalid("is closed".into()));
                }
                if !mine {
                    return Err(invalid("is not yours to release".into()));
                }
                t.status = TicketStatus::Queued;
                t.agent = None;
                conv_next.owner = Owner::Queue;
                commit.events.push(TicketEventKind::Released { agent: actor.id.clone() });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Released { agent: actor.name.clone() }, Some(actor));
            }
            AgentCommand::Close(_) => {
                if closed {
                    return Err(invalid("is already closed".into()));
                }
                if let Some(o) = other {
                    return Err(invalid(format!("is with {o}; they must close it")));
                }
                t.status = TicketStatus::Closed;
                t.agent = t.agent.or_else(|| Some(actor.id.clone()));
                conv_next.owner = Owner::Bot;
                conv_next.ticket_id = None;
                conv_next.state = conv.state.restart();
                commit.events.push(TicketEventKind::Closed { agent: actor.id.clone() });
                let back = in_script(Reply::text(Phrase::BackToBot.text(lang)), lang, traditional);
                commit.transcript.push(Line::bot(&back));
                commit.outbox.push(Outgoing::Customer { key: ticket.key.clone(), reply: back, ticket_id: Some(ticket.id) });
                // How was the help? Asked once, with buttons 1 to 5; the dialogue takes the answer
                // (or drops the question at anything else). Never of a customer who is blocked.
                if current && self.config.satisfaction && !block.as_ref().is_some_and(|b| b.holds(at)) {
                    conv_next.state.pending = crate::dialogue::Pending::Rating { ticket: ticket.id, asked_at: at };
                    let ask = in_script(crate::dialogue::rating_prompt(lang), lang, traditional);
                    commit.transcript.push(Line::bot(&ask));
                    commit.outbox.push(Outgoing::Customer { key: ticket.key.clone(), reply: ask, ticket_id: Some(ticket.id) });
                }
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Closed { agent: actor.name.clone() }, Some(actor));
            }
            AgentCommand::Block { duration, reason, .. } => {
                let customer = crate::guard::customer_key(&ticket.key.channel, &ticket.customer_id);
                let until = duration.map(|d| at.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
                let reason = clean(reason).trim().to_string();
                let value = crate::guard::Block { by: actor.id.clone(), at, until, reason: reason.clone(), lifted: false };
                let value = serde_json::to_string(&value).map_err(|e| EngineError::BadCommand(e.to_string()))?;
                commit.values.push((crate::guard::BLOCKS.into(), customer, value));
                commit.events.push(TicketEventKind::Blocked { agent: actor.id.clone(), until, reason: reason.clone() });
                self.notify_desks(
                    &mut commit,
                    Some(ticket.id),
                    DeskNotice::Blocked { agent: actor.name.clone(), until, reason },
                    Some(actor),
                );
            }
            AgentCommand::Unblock(_) => {
                let customer = crate::guard::customer_key(&ticket.key.channel, &ticket.customer_id);
                let Some(mut b) = block.filter(|b| b.holds(at)) else {
                    return Err(EngineError::BadCommand(format!("the customer of ticket #{} is not blocked", ticket.id)));
                };
                b.lifted = true;
                let value = serde_json::to_string(&b).map_err(|e| EngineError::BadCommand(e.to_string()))?;
                commit.values.push((crate::guard::BLOCKS.into(), customer, value));
                commit.events.push(TicketEventKind::Unblocked { agent: actor.id.clone() });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Unblocked { agent: actor.name.clone() }, Some(actor));
            }
            AgentCommand::Queue | AgentCommand::Show(_) => {}
        }
        if current {
            commit.conversation = conv_next;
        }
        commit.update_ticket = Some(t.clone());
        Ok((commit, t))
    }
}

fn command_name(cmd: &AgentCommand) -> &'static str {
    match cmd {
        AgentCommand::Queue => "queue",
        AgentCommand::Show(_) => "show",
        AgentCommand::Claim(_) => "claim",
        AgentCommand::Reply(..) => "reply",
        AgentCommand::Note(..) => "note",
        AgentCommand::Release(_) => "release",
        AgentCommand::Close(_) => "close",
        AgentCommand::Block { .. } => "block",
        AgentCommand::Unblock(_) => "unblock",
    }
}
