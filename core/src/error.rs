//! The core's error types, one per concern, each variant documented. [`EngineError`] is what
//! callers of the engine see; it decides what an agent or customer is told (never internals).

use std::time::Duration;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed (connection, I/O, SQL).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The conversation changed since it was read; read again and retry.
    #[error("conversation {0} was changed concurrently")]
    Conflict(i64),
    /// This platform message was already processed.
    #[error("message already processed")]
    Duplicate,
    /// This sender no longer holds the lease on the outbox destination (it expired and another
    /// sender took it over): the item is left to that sender.
    #[error("the outbox lease on {0} was lost")]
    LeaseLost(String),
    /// A stored value could not be decoded (a corrupt row or a newer schema).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database could not be opened or created.
    #[error("cannot open the database at {path}: {reason}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    /// Whether the same call may succeed later: the database did not answer (an outage) or the
    /// conversation changed underneath (read again and retry).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Database(_) | StoreError::Conflict(_))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// One problem in an intent pack, located at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIssue {
    /// The file.
    pub file: String,
    /// 1-based line, 0 when the problem is about the whole file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for PackIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// An intent pack that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The pack folder or a file in it could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The pack's files have problems; each names `file:line`.
    #[error("invalid intent pack:\n{}", .0.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<PackIssue>),
}

/// A failure to deliver to a channel or desk. Adapters choose the variant; the outbox acts on it.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The platform asked us to slow down; retry after the given time.
    #[error("rate limited, retry after {0:?}")]
    RateLimited(Duration),
    /// The platform's wider limit was hit (Discord's global limit, a Telegram group's): every
    /// destination of this channel or desk waits this long, not only this one.
    #[error("rate limited for the whole channel, retry after {0:?}")]
    Paused(Duration),
    /// A failure worth retrying (network, 5xx, timeout).
    #[error("temporary delivery failure: {0}")]
    Transient(String),
    /// The customer blocked the bot or left; do not retry.
    #[error("the recipient blocked the bot or is unreachable: {0}")]
    Blocked(String),
    /// A failure that retrying will not fix (bad request, unknown chat).
    #[error("delivery failed: {0}")]
    Permanent(String),
    /// No channel or desk of that name is configured.
    #[error("no channel named {0}")]
    UnknownChannel(String),
}

/// What the engine's callers see.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Storage failed; details are logged, the user is told to try again.
    #[error("storage is unavailable, please try again")]
    Store(#[from] StoreError),
    /// The actor is not on the agent allowlist.
    #[error("you are not an agent here")]
    NotAnAgent,
    /// No such ticket.
    #[error("there is no ticket #{0}")]
    NoSuchTicket(i64),
    /// The ticket's state does not allow that (e.g. replying to a closed ticket).
    #[error("ticket #{ticket} {why}")]
    InvalidTicketState {
        /// The ticket.
        ticket: i64,
        /// Why, in words for the agent.
        why: String,
    },
    /// An agent command with bad arguments.
    #[error("{0}")]
    BadCommand(String),
    /// Too many concurrent changes to one conversation; try again.
    #[error("the conversation is busy, please try again")]
    Busy,
}

impl EngineError {
    /// Whether trying the same thing again later may succeed: storage that failed to answer (an
    /// outage) or a conversation too busy right now. Adapters keep such a message and retry it
    /// rather than drop it.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Busy => true,
            EngineError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}
