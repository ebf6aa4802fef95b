//! One module per subcommand.

pub mod chat;
pub mod desk;
pub mod eval;
pub mod intents;
pub mod run;
