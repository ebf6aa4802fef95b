//! Databases written by earlier versions open with this one, on SQLite and PostgreSQL:
//! - one at migration 1: the later migrations apply, and outbox rows written before migration
//!   0002 get their destination and can be sent;
//! - one that applied migration 0002 as first released (`tests/fixtures/0002_first_release/`,
//!   the file's bytes as they were; it also moved an adapter's data, a move now done by that
//!   adapter): sqlx would refuse the changed file, so `SqlStore::connect` records today's checksum
//!   in place of that one, and the database opens, its old rows sent too;
//! - but a migration changed in any other way still stops the store from opening.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use switchboard_core::StoreError;
use switchboard_core::store::{SqlStore, Store};
use switchboard_core::types::{ConversationKey, Outgoing, Reply};
use switchboard_testkit::store_suite::fresh_postgres;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn today(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// A new, empty database; the folder holds a SQLite file.
    async fn fresh(self, dir: &Path) -> String {
        match self {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("old.db").display()),
            Backend::Postgres => fresh_postgres().await,
        }
    }
}

async fn pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap()
}

/// The migrations an earlier version shipped: 0001 as today, 0002 as first released.
async fn first_release(backend: Backend, dir: &Path) -> Migrator {
    let core = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let migrations = dir.join("first-release-migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::copy(core.join("migrations").join(backend.name()).join("0001_init.sql"), migrations.join("0001_init.sql")).unwrap();
    std::fs::copy(
        core.join("tests/fixtures/0002_first_release").join(format!("{}.sql", backend.name())),
        migrations.join("0002_outbox_destination_and_pruning.sql"),
    )
    .unwrap();
    Migrator::new(migrations.as_path()).await.unwrap()
}

/// An outbox row as versions before migration 0002 wrote it: without a destination.
async fn write_old_outbox_row(pool: &AnyPool) {
    let key = ConversationKey { channel: "tg".into(), chat: "42".into() };
    let item = Outgoing::Customer { key, reply: Reply::text("hi"), ticket_id: None };
    sqlx::query("INSERT INTO outbox (target, item, attempts, due_at, status) VALUES ('tg', $1, 0, 10, 'pending')")
        .bind(serde_json::to_string(&item).unwrap())
        .execute(pool)
        .await
        .unwrap();
}

async fn recorded_checksum(url: &str, version: i64) -> Vec<u8> {
    let pool = pool(url).await;
    let sum = sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = $1").bind(version).fetch_one(&pool).await.unwrap();
    pool.close().await;
    sum
}

fn checksum_of(migrator: &Migrator, version: i64) -> Vec<u8> {
    migrator.iter().find(|m| m.version == version).unwrap().checksum.to_vec()
}

/// Opens `url` with this version and checks that the old outbox row can be sent to its chat.
async fn opens_and_sends_the_old_row(url: &str) {
    let store = SqlStore::connect(url).await.unwrap();
    let claimed = store.claim_destinations(&["tg".to_string()], "up", 20, 10, 1_000).await.unwrap();
    let dests: Vec<&str> = claimed.iter().map(|(l, _)| l.dest.as_str()).collect();
    assert_eq!(dests, ["tg/42"], "the old row got its destination and can be sent");
    store.close().await;
}

async fn upgrades_from_version_1(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh(dir.path()).await;
    let pool = pool(&url).await;
    backend.today().run_to(1, &pool).await.unwrap();
    write_old_outbox_row(&pool).await;
    pool.close().await;

    opens_and_sends_the_old_row(&url).await;
    assert_eq!(recorded_checksum(&url, 2).await, checksum_of(backend.today(), 2));
}

async fn opens_after_the_first_release_of_0002(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh(dir.path()).await;
    let old = first_release(backend, dir.path()).await;
    let pool = pool(&url).await;
    old.run_to(1, &pool).await.unwrap();
    write_old_outbox_row(&pool).await;
    old.run(&pool).await.unwrap();
    pool.close().await;
    let first = recorded_checksum(&url, 2).await;
    assert_eq!(first, checksum_of(&old, 2));
    assert_ne!(first, checksum_of(backend.today(), 2), "the file changed since its first release");

    opens_and_sends_the_old_row(&url).await;
    assert_eq!(recorded_checksum(&url, 2).await, checksum_of(backend.today(), 2), "today's checksum is recorded");
    assert_eq!(recorded_checksum(&url, 1).await, checksum_of(backend.today(), 1), "nothing else changes");
    let again = SqlStore::connect(&url).await.unwrap();
    again.set_value("k", "v", "1").await.unwrap();
    again.close().await;
}

async fn another_changed_migration_still_stops(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.fresh(dir.path()).await;
    SqlStore::connect(&url).await.unwrap().close().await;
    let pool = pool(&url).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 2").bind(vec![0u8; 48]).execute(&pool).await.unwrap();
    pool.close().await;
    let err = SqlStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Migrate(sqlx::migrate::MigrateError::VersionMismatch(2))), "{err:?}");
    assert_eq!(recorded_checksum(&url, 2).await, vec![0u8; 48], "left as it was");
}

#[tokio::test]
async fn sqlite_upgrades_from_version_1() {
    upgrades_from_version_1(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_upgrades_from_version_1() {
    upgrades_from_version_1(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_opens_after_the_first_release_of_0002() {
    opens_after_the_first_release_of_0002(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_opens_after_the_first_release_of_0002() {
    opens_after_the_first_release_of_0002(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_refuses_a_migration_changed_otherwise() {
    another_changed_migration_still_stops(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_refuses_a_migration_changed_otherwise() {
    another_changed_migration_still_stops(Backend::Postgres).await;
}
