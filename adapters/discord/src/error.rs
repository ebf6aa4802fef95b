//! The adapter's error type. Messages never include the bot token or customer text.

use switchboard_core::StoreError;

/// What can stop the Discord adapter from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `[discord]` settings are invalid.
    #[error("invalid [discord] configuration: {0}")]
    Config(String),
    /// Discord refused the bot token (401): it is wrong or was reset.
    #[error("Discord rejected the bot token; check DISCORD_TOKEN")]
    Unauthorized,
    /// A Discord API call failed (network, refused request, unexpected answer).
    #[error("Discord API call failed while {doing}: {source}")]
    Api {
        /// What the adapter was doing.
        doing: &'static str,
        /// Serenity's error.
        #[source]
        source: Box<serenity::Error>,
    },
    /// The staff channel is not a text channel of a guild the bot can see.
    #[error("the staff channel {0} is not a text channel in a guild the bot can see")]
    StaffChannel(u64),
    /// The shared storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// The thread that runs the gateway connection could not be started.
    #[error("cannot start the Discord gateway thread: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    /// Wraps a serenity error, recognising a rejected token.
    pub(crate) fn api(doing: &'static str, e: serenity::Error) -> Error {
        if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) = &e
            && r.status_code.as_u16() == 401
        {
            return Error::Unauthorized;
        }
        Error::Api { doing, source: Box::new(e) }
    }
}
