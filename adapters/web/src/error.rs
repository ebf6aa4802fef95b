//! The web channel's one error type: what a visitor or agent is told (never internals) and what
//! is logged.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchboard_core::EngineError;

/// What can go wrong in the web channel.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The `[web]` section is wrong; the message names the key.
    #[error("web configuration: {0}")]
    Config(String),
    /// The request is malformed; the message says how, in words safe to show.
    #[error("{0}")]
    BadRequest(String),
    /// Not signed in, or the session ended.
    #[error("sign in first")]
    Unauthorized,
    /// Signed in, but the action is refused (not on the agents' allowlist, a bad CSRF token, a
    /// site that may not use the chat).
    #[error("{0}")]
    Forbidden(String),
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts: try again in {0} s")]
    TooMany(u64),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] switchboard_core::StoreError),
}

impl WebError {
    /// The HTTP status and the words a browser is shown.
    pub fn public(&self) -> (StatusCode, String) {
        match self {
            WebError::Config(m) => (StatusCode::INTERNAL_SERVER_ERROR, m.clone()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            WebError::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            WebError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, self.to_string()),
            WebError::Engine(e) => match e {
                EngineError::NotAnAgent => (StatusCode::FORBIDDEN, "you are not on the agents' allowlist".into()),
                EngineError::NoSuchTicket(id) => (StatusCode::NOT_FOUND, format!("there is no ticket #{id}")),
                EngineError::Store(_) | EngineError::Busy => {
                    (StatusCode::SERVICE_UNAVAILABLE, "the service is busy or its storage does not answer; try again".into())
                }
                // The engine's other refusals are written for agents (already closed, held by
                // someone else, too long…).
                other => (StatusCode::CONFLICT, other.to_string()),
            },
            WebError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage does not answer; try again".into()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = self.public();
        if status.is_server_error() {
            tracing::warn!(error = %self, "web request failed");
        }
        let mut res = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        if let WebError::TooMany(secs) = self
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        res
    }
}
