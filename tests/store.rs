//! The one store suite, run against every backend: memory, SQLite (a file in WAL mode) and
//! PostgreSQL (a fresh database on the local server; `SWITCHBOARD_TEST_PG` overrides the URL of
//! the server's `test` database).

#![allow(clippy::unwrap_used)]

mod support;

use switchboard_core::store::{MemoryStore, SqlStore, suite};

#[tokio::test]
async fn memory_store_passes_the_suite() {
    suite::run_all(&MemoryStore::new()).await;
}

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    suite::run_all(&store).await;
    let mode: String = store.journal_mode().await.unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    assert!(dir.path().join("switchboard.db").exists(), "the file is created on first run");
}

#[tokio::test]
async fn postgres_store_passes_the_suite() {
    let url = switchboard_core::store::suite::fresh_postgres().await;
    let store = SqlStore::connect(&url).await.unwrap();
    suite::run_all(&store).await;
}

#[tokio::test]
async fn reopening_an_existing_database_keeps_data_and_skips_applied_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    use switchboard_core::store::Store;
    store.set_value("k", "v", "1").await.unwrap();
    store.close().await;
    let again = SqlStore::open_sqlite(dir.path()).await.unwrap();
    assert_eq!(again.get_value("k", "v").await.unwrap().as_deref(), Some("1"));
}
