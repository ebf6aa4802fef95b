//! One module per subcommand.

pub mod chat;
pub mod console_password;
pub mod desk;
pub mod eval;
pub mod forget;
pub mod intents;
pub mod period;
pub mod redact;
pub mod report;
pub mod run;
pub mod run_discord;
pub mod run_telegram;
pub mod run_web;
pub mod suggest;
