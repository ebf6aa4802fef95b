//! The channel-neutral data every part of Switchboard speaks: inbound messages, replies, conversations,
//! tickets, transcript entries and the outbox items that carry effects to channels and agent desks.

use serde::{Deserialize, Serialize};

use crate::Lang;
use crate::dialogue::DialogueState;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Longest customer message the bot accepts whole; longer ones are stored cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The longest reply or note an agent may send in one command, in characters; the engine splits it
/// into as many platform messages as the customer's channel (and each desk) needs.
pub const MAX_AGENT_CHARS: usize = 16_000;

/// How urgent a ticket is. Ordered: `Urgent` sorts first in the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Can wait.
    Low,
    /// The usual.
    #[default]
    Normal,
    /// Before the usual.
    High,
    /// Money or an account at risk: first in the queue.
    Urgent,
}

impl Priority {
    /// The lowercase name used in files, the database and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Parses [`Priority::as_str`] output.
    pub fn parse(s: &str) -> Option<Priority> {
        [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent].into_iter().find(|p| p.as_str() == s)
    }
}

/// When an intent hands the conversation to a human.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffPolicy {
    /// The bot answers and keeps the conversation.
    #[default]
    Never,
    /// The bot answers, then collects fields (if any) and opens a ticket.
    AfterAnswer,
    /// The answer is only an acknowledgement; fields are collected and a ticket opened.
    Instead,
}

/// A quick-reply choice that adapters render as a button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// What comes back in [`Content::Choice`] when the customer presses it (at most 64 bytes).
    pub payload: String,
    /// The button text.
    pub label: String,
}

/// A message to a customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Plain text; adapters must send it without platform formatting.
    pub text: String,
    /// Quick-reply choices, possibly none.
    pub choices: Vec<Choice>,
}

impl Reply {
    /// A reply without choices.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply { text: text.into(), choices: Vec::new() }
    }
}

/// What a customer sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A text message.
    Text(String),
    /// A pressed quick-reply button: its [`Choice::payload`].
    Choice(String),
    /// Something the bot cannot read (a photo, a sticker, a voice note); the platform's word for it.
    Unsupported(String),
    /// Something the bot cannot read sent with words of the customer's (a photo with a caption, a
    /// file with a message): the words are read as a text message, and the transcript and the
    /// agents see both (`[photo] the words`).
    Captioned {
        /// The platform's word for what came with the text, as in [`Content::Unsupported`].
        kind: String,
        /// The customer's words.
        text: String,
    },
}

/// A customer message as an adapter hands it to the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The channel's name, as in [`crate::channel::Channel::name`] (`"telegram"`, `"discord"`, `"cli"`).
    pub channel: String,
    /// The platform's conversation id (a chat or channel id) replies go to.
    pub conversation: String,
    /// The platform's id for the customer.
    pub customer_id: String,
    /// How agents see the customer.
    pub customer_name: String,
    /// The message.
    pub content: Content,
    /// The platform's id of this message; the same id delivered twice is handled once.
    pub message_id: String,
    /// When the platform says it was sent.
    pub at: Millis,
    /// The platform's guess at the customer's language (e.g. Telegram's `language_code`).
    pub lang_hint: Option<String>,
    /// In a public place (a Discord support channel): whether the adapter deleted this message
    /// because it held a secret (`Some(true)`), or could not (`Some(false)`); `None` elsewhere.
    pub deleted: Option<bool>,
}

/// Identifies a conversation: one platform chat with one customer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConversationKey {
    /// Channel name.
    pub channel: String,
    /// Platform conversation id.
    pub chat: String,
}

/// Who answers a conversation right now. Exactly one at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "agent", rename_all = "lowercase")]
pub enum Owner {
    /// The bot answers.
    #[default]
    Bot,
    /// A ticket waits in the queue; the bot is silent.
    Queue,
    /// This agent (an actor id) has the ticket; the bot is silent.
    Agent(String),
}

/// A stored conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Store-assigned id.
    pub id: i64,
    /// Channel and chat.
    pub key: ConversationKey,
    /// The platform's id for the customer.
    pub customer_id: String,
    /// How agents see the customer.
    pub customer_name: String,
    /// The language the bot answers in.
    pub lang: Lang,
    /// Where the bot is in the dialogue.
    pub state: DialogueState,
    /// Who answers.
    pub owner: Owner,
    /// The open ticket, while the owner is not the bot.
    pub ticket_id: Option<i64>,
    /// Bumped by every change; a write with a stale version is refused ([`crate::StoreError::Conflict`]).
    pub version: i64,
    /// Last change.
    pub updated_at: Millis,
}

/// Why a conversation went to a human.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "intent", rename_all = "snake_case")]
pub enum HandoffReason {
    /// An intent whose policy hands off.
    Intent(String),
    /// The bot did not understand several messages in a row.
    RepeatedFallback,
    /// The customer asked for a person.
    CustomerRequest,
}

impl std::fmt::Display for HandoffReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandoffReason::Intent(id) => write!(f, "intent {id}"),
            HandoffReason::RepeatedFallback => f.write_str("not understood twice"),
            HandoffReason::CustomerRequest => f.write_str("asked for a person"),
        }
    }
}

/// Where a ticket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Waiting for an agent.
    Queued,
    /// An agent has it.
    Assigned,
    /// Done; the bot has the conversation back.
    Closed,
}

impl TicketStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Queued => "queued",
            TicketStatus::Assigned => "assigned",
            TicketStatus::Closed => "closed",
        }
    }

    /// Parses [`TicketStatus::as_str`] output.
    pub fn parse(s: &str) -> Option<TicketStatus> {
        [TicketStatus::Queued, TicketStatus::Assigned, TicketStatus::Closed].into_iter().find(|t| t.as_str() == s)
    }
}

/// A detail collected from the customer before a handoff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The field's name in the intent file.
    pub name: String,
    /// What the customer answered.
    pub value: String,
}

/// A handoff to humans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Store-assigned id, shown as `#id`.
    pub id: i64,
    /// The conversation it belongs to.
    pub conversation_id: i64,
    /// The customer's channel and chat.
    pub key: ConversationKey,
    /// The platform's id for the customer.
    pub customer_id: String,
    /// How agents see the customer.
    pub customer_name: String,
    /// The customer's language.
    pub lang: Lang,
    /// Why.
    pub reason: HandoffReason,
    /// How urgent.
    pub priority: Priority,
    /// Details collected before the handoff.
    pub fields: Vec<Field>,
    /// Queued, assigned or closed.
    pub status: TicketStatus,
    /// The agent (actor id) that has it.
    pub agent: Option<String>,
    /// Opened.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// Something that happened to a ticket. The history is append-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TicketEventKind {
    /// The ticket was opened.
    Opened,
    /// An agent took it.
    Claimed {
        /// Actor id.
        agent: String,
    },
    /// An agent put it back in the queue.
    Released {
        /// Actor id.
        agent: String,
    },
    /// The customer wrote while a human owned the conversation.
    CustomerMessage {
        /// The text as stored.
        text: String,
    },
    /// An agent answered the customer.
    AgentReply {
        /// Actor id.
        agent: String,
        /// The text sent.
        text: String,
    },
    /// An internal note; never shown to the customer.
    Note {
        /// Actor id.
        agent: String,
        /// The note.
        text: String,
    },
    /// A message could not be delivered to the customer and will not be retried.
    DeliveryFailed {
        /// Why, in words safe to show agents.
        reason: String,
    },
    /// The ticket was closed and the conversation returned to the bot.
    Closed {
        /// Actor id.
        agent: String,
    },
    /// An agent blocked the ticket's customer: their messages are stored, not answered or relayed.
    Blocked {
        /// Actor id.
        agent: String,
        /// Until when; `None` until unblocked.
        until: Option<Millis>,
        /// Why (may be empty).
        reason: String,
    },
    /// An agent lifted the customer's block.
    Unblocked {
        /// Actor id.
        agent: String,
    },
    /// The customer rated the help after the ticket closed (1–5), with an optional comment.
    Rated {
        /// 1 (poor) to 5 (excellent).
        score: u8,
        /// What they added, if anything (masked like every customer message).
        comment: Option<String>,
    },
    /// The customer's data was erased on request (`switchboard forget`): texts are gone, the
    /// ticket's times and outcome stay for reports.
    Erased {
        /// Who ran it.
        by: String,
    },
}

impl TicketEventKind {
    /// The event with the words anyone wrote in it replaced by `[erased]` (who acted, and when,
    /// stay for reports); `None` when it holds no such words.
    pub fn erased(&self) -> Option<TicketEventKind> {
        let gone = || ERASED.to_string();
        Some(match self {
            TicketEventKind::CustomerMessage { .. } => TicketEventKind::CustomerMessage { text: gone() },
            TicketEventKind::AgentReply { agent, .. } => TicketEventKind::AgentReply { agent: agent.clone(), text: gone() },
            TicketEventKind::Note { agent, .. } => TicketEventKind::Note { agent: agent.clone(), text: gone() },
            TicketEventKind::Rated { score, comment: Some(_) } => TicketEventKind::Rated { score: *score, comment: Some(gone()) },
            TicketEventKind::Blocked { agent, until, reason } if !reason.is_empty() => {
                TicketEventKind::Blocked { agent: agent.clone(), until: *until, reason: gone() }
            }
            _ => return None,
        })
    }
}

/// What erased text reads as.
pub const ERASED: &str = "[erased]";

/// A ticket event with its time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// The ticket.
    pub ticket_id: i64,
    /// When.
    pub at: Millis,
    /// What.
    pub kind: TicketEventKind,
}

/// Who wrote a transcript line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Author {
    /// The customer.
    Customer,
    /// The bot.
    Bot,
    /// An agent (actor id).
    Agent(String),
}

/// One customer-visible message, either direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// The line's id: increasing in the order lines were written, across all conversations
    /// (a page that shows a conversation resumes after the last id it has). 0 before it is stored.
    #[serde(default)]
    pub id: i64,
    /// The conversation.
    pub conversation_id: i64,
    /// The ticket open when it was written, if any.
    pub ticket_id: Option<i64>,
    /// Who wrote it.
    pub author: Author,
    /// The text (customer text cleaned and cut to [`MAX_MESSAGE_CHARS`]).
    pub text: String,
    /// When.
    pub at: Millis,
    /// For a customer's message: what the bot made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// For a bot's reply: the quick-reply buttons it offered (a channel that shows the transcript
    /// itself, such as the web chat, draws them again after a reload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
}

/// A line a [`crate::store::Commit`] adds to the transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Who wrote it.
    pub author: Author,
    /// The text.
    pub text: String,
    /// The buttons a bot reply offered.
    pub choices: Vec<Choice>,
}

impl Line {
    /// A bot reply as the customer sees it: its text and buttons.
    pub fn bot(reply: &Reply) -> Line {
        Line { author: Author::Bot, text: reply.text.clone(), choices: reply.choices.clone() }
    }
}

impl From<(Author, String)> for Line {
    fn from((author, text): (Author, String)) -> Line {
        Line { author, text, choices: Vec::new() }
    }
}

/// What the bot made of a customer's message, kept on its transcript line for reports and
/// `intents suggest`. Bounded values only: an intent id of the pack and an action name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The intent matched (or asked about), if any.
    pub intent: Option<String>,
    /// The dialogue's action, as in [`crate::dialogue::Action::as_str`] (`answer`, `clarify`,
    /// `fallback`, `handoff`, `silent`…).
    pub action: String,
}

/// Someone acting on tickets: an agent, if the allowlist says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Channel-qualified id, e.g. `telegram:12345`, `discord:6789`, `desk:alice`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Channel-qualified roles the platform vouches for, e.g. `discord-role:42`.
    pub roles: Vec<String>,
}

impl Actor {
    /// An actor without roles.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Actor {
        Actor { id: id.into(), name: name.into(), roles: Vec::new() }
    }
}

/// What an agent desk is told about a ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeskNotice {
    /// A new ticket: show its summary.
    Opened,
    /// The customer wrote on the ticket.
    CustomerMessage {
        /// Text.
        text: String,
    },
    /// An agent answered (from any desk).
    AgentReply {
        /// Agent display name.
        agent: String,
        /// Text.
        text: String,
    },
    /// An internal note was added.
    Note {
        /// Agent display name.
        agent: String,
        /// Text.
        text: String,
    },
    /// An agent claimed it.
    Claimed {
        /// Agent display name.
        agent: String,
    },
    /// Put back in the queue.
    Released {
        /// Agent display name.
        agent: String,
    },
    /// Closed; the customer is back with the bot.
    Closed {
        /// Agent display name.
        agent: String,
    },
    /// A message to the customer could not be delivered.
    DeliveryFailed {
        /// Why.
        reason: String,
    },
    /// An agent blocked the customer.
    Blocked {
        /// Agent display name.
        agent: String,
        /// Until when; `None` until unblocked.
        until: Option<Millis>,
        /// Why (may be empty).
        reason: String,
    },
    /// An agent lifted the customer's block.
    Unblocked {
        /// Agent display name.
        agent: String,
    },
    /// The customer rated the help after the ticket closed.
    Rated {
        /// 1 (poor) to 5 (excellent).
        score: u8,
        /// What they added, if anything (masked).
        comment: Option<String>,
    },
}

/// An effect waiting in the outbox until it has been delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Outgoing {
    /// A message to a customer.
    Customer {
        /// Where.
        key: ConversationKey,
        /// What.
        reply: Reply,
        /// The ticket it belongs to, if any (delivery failures are recorded there).
        ticket_id: Option<i64>,
    },
    /// A notice to one agent desk.
    Desk {
        /// The desk's name (see [`crate::channel::AgentDesk::name`]).
        desk: String,
        /// The ticket; `None` in a commit means "the ticket of this commit".
        ticket_id: Option<i64>,
        /// What happened.
        notice: DeskNotice,
        /// The actor id whose action caused it, so a desk can skip echoing its own agents.
        by: Option<String>,
    },
}

impl Outgoing {
    /// Which process may deliver it: the customer's channel name, or `desk:<name>`.
    pub fn target(&self) -> String {
        match self {
            Outgoing::Customer { key, .. } => key.channel.clone(),
            Outgoing::Desk { desk, .. } => format!("desk:{desk}"),
        }
    }

    /// Where it goes within its target: one customer chat (`<channel>/<chat>`) or one ticket's
    /// thread on a desk (`desk:<name>/<ticket id>`). Items for one destination are delivered in
    /// order.
    pub fn destination(&self) -> String {
        match self {
            Outgoing::Customer { key, .. } => format!("{}/{}", key.channel, key.chat),
            Outgoing::Desk { desk, ticket_id, .. } => format!("desk:{desk}/{}", ticket_id.unwrap_or(0)),
        }
    }
}

/// A stored outbox item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Store-assigned id; delivery follows id order.
    pub id: i64,
    /// The effect.
    pub item: Outgoing,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Not before this time.
    pub due_at: Millis,
}
