//! Switchboard's test support (`switchboard-testkit`, never published): the tools the workspace's
//! tests and benchmarks share, kept out of the production crates.
//!
//! - [`store_suite`]: the one store suite every backend runs (memory, SQLite, PostgreSQL), and
//!   fresh PostgreSQL databases on the test server ([`store_suite::POSTGRES_ENV`]).
//! - [`console`]: the web console in tests: argon2 password hashes for test accounts and
//!   [`console::Browser`], a client of the console's router.
//! - [`faulty`]: [`faulty::Faulty`], a store wrapper that fails while switched down, for outage
//!   tests.
//! - [`telegram`]: a fake Telegram Bot API server on 127.0.0.1 for the real teloxide client.
//! - [`discord`]: a fake Discord (REST and gateway) on 127.0.0.1 for the real serenity client.
//!
//! It depends on `switchboard-core` (and on no adapter), so the core's own tests use it as a
//! dev-dependency from their integration tests only (`core/tests/`): a unit test inside
//! `core/src` would see two copies of the core's types.

pub mod console;
pub mod discord;
pub mod faulty;
pub mod store_suite;
pub mod telegram;
