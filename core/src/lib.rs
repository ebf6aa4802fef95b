//! Switchboard's platform-neutral core.
//!
//! It owns everything a support bot does that is not tied to one chat platform: intent packs
//! ([`pack`]), matching ([`matcher`]), the pure dialogue and handoff rules ([`dialogue`]),
//! storage behind a trait ([`store`]) and the thin async layer that performs the rules' effects
//! ([`engine`]). Platform adapters translate their events into [`types::Inbound`] and implement
//! [`channel::Channel`] and [`channel::AgentDesk`]; nothing here knows a platform SDK.

pub mod agents;
pub mod channel;
pub mod dialogue;
pub mod engine;
pub mod error;
pub mod eval;
pub mod guard;
pub mod hant;
pub mod hours;
pub mod links;
pub mod matcher;
pub mod metrics;
pub mod outbox;
pub mod pack;
pub mod redact;
pub mod reload;
pub mod report;
pub mod retry;
pub mod script;
pub mod store;
pub mod suggest;
pub mod types;

pub use error::{ChannelError, EngineError, PackError, StoreError};
pub use matcher::lang::Lang;
