//! The one store suite (`switchboard_testkit::store_suite`), run against every backend: memory,
//! SQLite (a file in WAL mode), PostgreSQL (a fresh database on the test server;
//! `SWITCHBOARD_TEST_PG` overrides the URL of the server's `test` database), and `Faulty` around a
//! store while it is up.

#![allow(clippy::unwrap_used)]

use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_testkit::faulty::Faulty;
use switchboard_testkit::store_suite;

#[tokio::test]
async fn memory_store_passes_the_suite() {
    store_suite::run_all(&MemoryStore::new()).await;
}

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    store_suite::run_all(&store).await;
    let mode: String = store.journal_mode().await.unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    assert!(dir.path().join("switchboard.db").exists(), "the file is created on first run");
}

#[tokio::test]
async fn postgres_store_passes_the_suite() {
    let url = store_suite::fresh_postgres().await;
    let store = SqlStore::connect(&url).await.unwrap();
    store_suite::run_all(&store).await;
}

#[tokio::test]
async fn faulty_store_passes_the_suite_while_up() {
    let store = Faulty::new(MemoryStore::new());
    store_suite::run_all(&store).await;
    assert_eq!(store.refused(), 0);
}

#[tokio::test]
async fn reopening_an_existing_database_keeps_data_and_skips_applied_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    store.set_value("k", "v", "1").await.unwrap();
    store.close().await;
    let again = SqlStore::open_sqlite(dir.path()).await.unwrap();
    assert_eq!(again.get_value("k", "v").await.unwrap().as_deref(), Some("1"));
}
