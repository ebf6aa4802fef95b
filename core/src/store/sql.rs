//! [`SqlStore`]: the [`Store`] on sqlx's `Any` driver, so one implementation serves SQLite (a file in
//! WAL mode, created on first run) and PostgreSQL (shared by several bot instances). Each backend
//! has its numbered migrations under `core/migrations/<backend>/`; the queries here are portable
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`), with row locking added on PostgreSQL.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

mod erase;

use super::{Commit, Committed, Erased, Lease, NewConversation, Store, TicketRecord};
use crate::types::{
    Author, Conversation, ConversationKey, Millis, OutboxItem, Outcome, Outgoing, Priority, Ticket, TicketEvent, TicketEventKind,
    TicketStatus, TranscriptEntry,
};
use crate::{Lang, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite or PostgreSQL storage.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite takes one writer at a time: this process's writers queue here instead of colliding
    /// in the database and sleeping in SQLite's busy handler (other processes still do that).
    writer: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

/// `PRAGMA auto_vacuum`'s value for incremental.
const SQLITE_INCREMENTAL_VACUUM: i64 = 2;

/// Writes one adapter value, replacing the one before.
const SET_VALUE: &str =
    "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The checksums sqlx recorded (SHA-384 of the file's bytes) for migration 0002 as first released,
/// on SQLite and on PostgreSQL: it also moved one adapter's data, a one-time move that now belongs
/// to that adapter (see [`SqlStore::repair_checksums`]).
const FIRST_0002_SQLITE: [u8; 48] = [
    0x4b, 0x32, 0x26, 0x3f, 0x31, 0x61, 0x44, 0x52, 0x19, 0x42, 0x86, 0xdb, 0x84, 0x99, 0x8a, 0x4c, 0xf6, 0x16, 0xc3, 0xa1, 0x03, 0x98,
    0x37, 0xd1, 0x2a, 0x35, 0x93, 0xb9, 0x2e, 0xe4, 0x26, 0x66, 0x3a, 0xfa, 0x08, 0xfc, 0xde, 0xc3, 0x9d, 0xb6, 0x69, 0x6d, 0x80, 0x3a,
    0x50, 0x20, 0x31, 0x03,
];
/// See [`FIRST_0002_SQLITE`].
const FIRST_0002_POSTGRES: [u8; 48] = [
    0x5a, 0xf3, 0xd5, 0xa2, 0x0c, 0xda, 0x6e, 0x3a, 0x85, 0xe3, 0x7f, 0xe5, 0x72, 0x47, 0x23, 0x66, 0xbb, 0xa8, 0x6e, 0x3f, 0x70, 0xbc,
    0xa3, 0x78, 0x71, 0x55, 0x9f, 0x4c, 0x5a, 0x92, 0x39, 0x31, 0x7a, 0x0d, 0xd0, 0xfc, 0xc3, 0x67, 0xe2, 0x89, 0x24, 0x25, 0x22, 0x04,
    0xdb, 0x0f, 0x74, 0x02,
];

const CONV_COLS: &str = "id, channel, chat, customer_id, customer_name, lang, state, owner, ticket_id, version, updated_at";
const TICKET_COLS: &str =
    "id, conversation_id, channel, chat, customer_id, customer_name, lang, reason, priority, fields, status, agent, created_at, updated_at";

impl SqlStore {
    /// Opens (creating if needed) the SQLite database `switchboard.db` in `data_dir`, in WAL mode,
    /// and applies migrations.
    pub async fn open_sqlite(data_dir: &Path) -> Result<SqlStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open { path: data_dir.display().to_string(), reason: e.to_string() })?;
        let path = data_dir.join("switchboard.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        SqlStore::connect(&url).await
    }

    /// Connects to a `sqlite://` or `postgres://` URL and applies migrations.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Open { path: redact(url), reason: "the URL must start with sqlite: or postgres:".into() });
        };
        let opts =
            sqlx::any::AnyConnectOptions::from_str(url).map_err(|e| StoreError::Open { path: redact(url), reason: e.to_string() })?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // A SQLite connection is a file handle that cannot break: no ping before each use.
            .test_before_acquire(backend != Backend::Sqlite)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Free pages can then be given back as the store runs (see `reclaim`). It
                        // takes effect in a database created by this connection, and so must come
                        // before the journal mode, which writes the file's header; an older
                        // database is converted once, below.
                        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        // In WAL mode this keeps the database consistent through any crash of the
                        // process; only a power loss can take back the last commits. It spares an
                        // fsync per commit.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Open { path: redact(url), reason: e.to_string() })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        SqlStore::repair_checksums(&pool, backend, migrator).await?;
        migrator.run(&pool).await?;
        let writer = (backend == Backend::Sqlite).then(|| std::sync::Arc::new(tokio::sync::Mutex::new(())));
        let store = SqlStore { pool, backend, writer };
        store.fill_destinations().await?;
        if backend == Backend::Sqlite {
            store.convert_to_incremental_vacuum().await?;
        }
        Ok(store)
    }

    /// Makes a database that applied migration 0002 as first released open with today's 0002.
    ///
    /// That first 0002 also moved the Telegram adapter's staff marks from the key-value space to
    /// `processed`: a platform's data, which the core no longer knows, so the move was taken out of
    /// the file and is done by the adapter at start. The statements left are the same, so such a
    /// database has exactly the schema today's 0002 gives. But sqlx keeps each applied migration's
    /// checksum and refuses to run (`VersionMismatch`) when a file no longer matches it: so the
    /// recorded checksum of version 2 is changed to today's file's, only where it is the first
    /// release's ([`FIRST_0002_SQLITE`], [`FIRST_0002_POSTGRES`]). Any other difference still
    /// stops the migrator. Idempotent, and harmless to run from several instances at once.
    async fn repair_checksums(pool: &AnyPool, backend: Backend, migrator: &sqlx::migrate::Migrator) -> Result<(), StoreError> {
        let (first, table_exists) = match backend {
            Backend::Sqlite => {
                (&FIRST_0002_SQLITE, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            }
            // Where sqlx creates it: unqualified, so in the first schema of the search path.
            Backend::Postgres => (
                &FIRST_0002_POSTGRES,
                "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = '_sqlx_migrations' AND schemaname = current_schema()",
            ),
        };
        let found: i64 = sqlx::query_scalar(table_exists).fetch_one(pool).await?;
        if found == 0 {
            return Ok(()); // a new database
        }
        let Some(today) = migrator.iter().find(|m| m.version == 2 && m.migration_type.is_up_migration()) else {
            return Ok(());
        };
        let repaired = sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 2 AND checksum = $2")
            .bind(today.checksum.to_vec())
            .bind(first.to_vec())
            .execute(pool)
            .await?
            .rows_affected();
        if repaired > 0 {
            tracing::info!("migration 0002: recorded the checksum of today's file in place of its first release's");
        }
        Ok(())
    }

    /// Converts a SQLite database created without `auto_vacuum = INCREMENTAL` (by a version before
    /// this one), once: the mode only changes with a `VACUUM`, which rewrites the file in one
    /// transaction. If that fails (another process is writing, or the disk lacks room for the
    /// copy) nothing has changed: the store works as before, and the next start tries again.
    async fn convert_to_incremental_vacuum(&self) -> Result<(), StoreError> {
        if self.auto_vacuum().await? == SQLITE_INCREMENTAL_VACUUM {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        // SQLite acts on this pragma when the statement is prepared: not a statement cached from
        // this connection's start.
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").persistent(false).execute(&mut *conn).await?;
        tracing::info!("converting the SQLite database to incremental vacuum (once; this rewrites the file)");
        match sqlx::query("VACUUM").execute(&mut *conn).await {
            Ok(_) => tracing::info!("the SQLite database now gives free space back as it runs"),
            Err(e) => tracing::warn!(error = %e, "cannot convert the SQLite database to incremental vacuum; will try at the next start"),
        }
        Ok(())
    }

    /// SQLite's `auto_vacuum` mode as the file has it (0 none, 1 full, 2 incremental). SQLite
    /// answers this pragma when the statement is prepared, from the connection's last read of the
    /// file's header: so it is prepared afresh, inside a transaction that has read the header.
    async fn auto_vacuum(&self) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT count(*) FROM sqlite_master").fetch_one(&mut *tx).await?;
        let mode = sqlx::query_scalar("PRAGMA auto_vacuum").persistent(false).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(mode)
    }

    /// Gives up to `pages` free pages of a SQLite database back to the file system (delivered
    /// outbox items and pruned rows leave them) and returns how many it gave back. The file
    /// shrinks at the next WAL checkpoint, which this attempts without waiting for readers. A
    /// database not yet converted to incremental vacuum (see `connect`) and PostgreSQL (whose
    /// autovacuum does this) give back nothing. For periodic housekeeping: each call holds the
    /// write lock for as long as it takes to move `pages` pages.
    pub async fn reclaim(&self, pages: u32) -> Result<u64, StoreError> {
        if self.backend != Backend::Sqlite || pages == 0 {
            return Ok(0);
        }
        let mut conn = self.pool.acquire().await?;
        let before: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut *conn).await?;
        // Each page freed is a row of the statement's result: `execute` steps through them all.
        sqlx::query(AssertSqlSafe(format!("PRAGMA incremental_vacuum({pages})"))).execute(&mut *conn).await?;
        let after: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut *conn).await?;
        if after < before {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut *conn).await?;
        }
        Ok(u64::try_from(before.saturating_sub(after)).unwrap_or(0))
    }

    /// Gives outbox rows written before migration 0002 their destination (it is computed from the
    /// item, which SQL cannot portably parse).
    async fn fill_destinations(&self) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT id, item, attempts, due_at FROM outbox WHERE dest IS NULL").fetch_all(&self.pool).await?;
        for r in &rows {
            let item = outbox_row(r)?;
            sqlx::query("UPDATE outbox SET dest = $1 WHERE id = $2")
                .bind(item.item.destination())
                .bind(item.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// SQLite's journal mode (`wal` for stores opened here); `None` on PostgreSQL.
    pub async fn journal_mode(&self) -> Result<String, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok("postgres".into());
        }
        Ok(sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&self.pool).await?)
    }

    /// Creates the database `name` on the PostgreSQL server of `base_url` (a URL to any existing
    /// database there) and returns the new database's URL. For tests and first-time setup.
    pub async fn create_database(base_url: &str, name: &str) -> Result<String, StoreError> {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Open { path: name.into(), reason: "a database name is letters, digits and _".into() });
        }
        let mut conn =
            sqlx::AnyConnection::connect(base_url).await.map_err(|e| StoreError::Open { path: redact(base_url), reason: e.to_string() })?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await?;
        conn.close().await?;
        let prefix = base_url.split('?').next().unwrap_or(base_url);
        let prefix = prefix.rsplit_once('/').map_or(prefix, |(p, _)| p);
        Ok(format!("{prefix}/{name}"))
    }

    /// Runs an outbox change guarded by `lease` (its query checks the token); no row changed means
    /// the lease was lost, unless the item is simply gone.
    async fn under_lease(&self, lease: &Lease, q: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>) -> Result<(), StoreError> {
        if q.execute(&self.pool).await?.rows_affected() > 0 {
            return Ok(());
        }
        still_held(&self.pool, lease).await
    }

    /// This process's turn to write (SQLite), held for the rest of the calling method.
    async fn writing(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(w) => Some(w.lock().await),
            None => None,
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM outbox_leases WHERE dest = $1 AND token = $2")
            .bind(&lease.dest)
            .bind(&lease.token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool (tests use it to simulate a restart).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Hides the password part of a database URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// `$from, $from+1, …` for `n` bound values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Records a handled message id; affects no row if it was recorded before.
const INSERT_PROCESSED: &str = "INSERT INTO processed (channel, message_id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// The columns [`transcript_entry`] reads.
const TRANSCRIPT_COLUMNS: &str = "id, conversation_id, ticket_id, author, text, at, intent, outcome, choices";

/// A transcript row ([`TRANSCRIPT_COLUMNS`]).
fn transcript_entry(r: &AnyRow) -> Result<TranscriptEntry, StoreError> {
    let outcome: Option<String> = r.try_get("outcome")?;
    let choices: Option<String> = r.try_get("choices")?;
    Ok(TranscriptEntry {
        id: r.try_get("id")?,
        choices: match choices.as_deref() {
            None | Some("") => Vec::new(),
            Some(j) => from_json(j)?,
        },
        conversation_id: r.try_get("conversation_id")?,
        ticket_id: r.try_get("ticket_id")?,
        author: from_json(&r.try_get::<String, _>("author")?)?,
        text: r.try_get("text")?,
        at: r.try_get("at")?,
        outcome: outcome.map(|action| Outcome { intent: r.try_get("intent").ok().flatten(), action }),
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(v)?)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(s)?)
}

fn priority_num(p: Priority) -> i64 {
    p as i64
}

fn priority_from(n: i64) -> Priority {
    match n {
        0 => Priority::Low,
        2 => Priority::High,
        3 => Priority::Urgent,
        _ => Priority::Normal,
    }
}

fn lang_from(s: &str) -> Result<Lang, StoreError> {
    Lang::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown language {s:?}")))
}

fn conversation_row(r: &AnyRow) -> Result<Conversation, StoreError> {
    let id: i64 = r.try_get("id")?;
    // The dialogue state is only where the bot is in its questions: one it cannot read (written by
    // another version, or damaged) starts the dialogue afresh rather than shut the customer out.
    // The owner and ticket are read strictly. The error is not logged: it may quote the state.
    let state = from_json(&r.try_get::<String, _>("state")?).unwrap_or_else(|_| {
        tracing::warn!(conversation = id, "unreadable dialogue state; the dialogue starts afresh");
        crate::dialogue::DialogueState::default()
    });
    Ok(Conversation {
        id,
        key: ConversationKey { channel: r.try_get("channel")?, chat: r.try_get("chat")? },
        customer_id: r.try_get("customer_id")?,
        customer_name: r.try_get("customer_name")?,
        lang: lang_from(&r.try_get::<String, _>("lang")?)?,
        state,
        owner: from_json(&r.try_get::<String, _>("owner")?)?,
        ticket_id: r.try_get("ticket_id")?,
        version: r.try_get("version")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn ticket_row(r: &AnyRow) -> Result<Ticket, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(Ticket {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        key: ConversationKey { channel: r.try_get("channel")?, chat: r.try_get("chat")? },
        customer_id: r.try_get("customer_id")?,
        customer_name: r.try_get("customer_name")?,
        lang: lang_from(&r.try_get::<String, _>("lang")?)?,
        reason: from_json(&r.try_get::<String, _>("reason")?)?,
        priority: priority_from(r.try_get("priority")?),
        fields: from_json(&r.try_get::<String, _>("fields")?)?,
        status: TicketStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("unknown ticket status {status:?}")))?,
        agent: r.try_get("agent")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn outbox_row(r: &AnyRow) -> Result<OutboxItem, StoreError> {
    Ok(OutboxItem {
        id: r.try_get("id")?,
        item: from_json(&r.try_get::<String, _>("item")?)?,
        attempts: r.try_get("attempts")?,
        due_at: r.try_get("due_at")?,
    })
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

async fn insert_outbox(tx: &mut Tx<'_>, item: &Outgoing, at: Millis) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (target, dest, item, attempts, due_at, status) VALUES ($1, $2, $3, 0, $4, 'pending')")
        .bind(item.target())
        .bind(item.destination())
        .bind(json(item)?)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `Ok` while `lease` still holds its destination, else [`StoreError::LeaseLost`].
async fn still_held<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(exec: E, lease: &Lease) -> Result<(), StoreError> {
    let held: Option<String> = sqlx::query_scalar("SELECT token FROM outbox_leases WHERE dest = $1 AND token = $2")
        .bind(&lease.dest)
        .bind(&lease.token)
        .fetch_optional(exec)
        .await?;
    if held.is_some() { Ok(()) } else { Err(StoreError::LeaseLost(lease.dest.clone())) }
}

/// Queues `items` in one statement, in order.
async fn insert_outbox_all(tx: &mut Tx<'_>, items: &[Outgoing], at: Millis) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> =
        (0..items.len()).map(|i| format!("(${}, ${}, ${}, 0, $1, 'pending')", 2 + 3 * i, 3 + 3 * i, 4 + 3 * i)).collect();
    let sql = format!("INSERT INTO outbox (target, dest, item, attempts, due_at, status) VALUES {}", rows.join(", "));
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(at);
    for item in items {
        q = q.bind(item.target()).bind(item.destination()).bind(json(item)?);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

async fn insert_event(tx: &mut Tx<'_>, ticket_id: i64, kind: &TicketEventKind, at: Millis) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO ticket_events (ticket_id, at, kind) VALUES ($1, $2, $3)")
        .bind(ticket_id)
        .bind(at)
        .bind(json(kind)?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    async fn open_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        // Most messages come from a conversation that exists: read first, write only when new.
        let existing = sqlx::query(AssertSqlSafe(format!("SELECT {CONV_COLS} FROM conversations WHERE channel = $1 AND chat = $2")))
            .bind(&new.key.channel)
            .bind(&new.key.chat)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = existing {
            return conversation_row(&row);
        }
        let turn = self.writing().await;
        sqlx::query(
            "INSERT INTO conversations (channel, chat, customer_id, customer_name, lang, state, owner, ticket_id, version, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, 0, $8) ON CONFLICT (channel, chat) DO NOTHING",
        )
        .bind(&new.key.channel)
        .bind(&new.key.chat)
        .bind(&new.customer_id)
        .bind(&new.customer_name)
        .bind(new.lang.as_str())
        .bind(json(&crate::dialogue::DialogueState::default())?)
        .bind(json(&crate::types::Owner::Bot)?)
        .bind(new.at)
        .execute(&self.pool)
        .await?;
        drop(turn);
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {CONV_COLS} FROM conversations WHERE channel = $1 AND chat = $2")))
            .bind(&new.key.channel)
            .bind(&new.key.chat)
            .fetch_one(&self.pool)
            .await?;
        conversation_row(&row)
    }

    async fn find_conversation(&self, key: &ConversationKey) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {CONV_COLS} FROM conversations WHERE channel = $1 AND chat = $2")))
            .bind(&key.channel)
            .bind(&key.chat)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conversation_row).transpose()
    }

    async fn conversation(&self, id: i64) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {CONV_COLS} FROM conversations WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conversation_row).transpose()
    }

    async fn commit(&self, c: Commit) -> Result<Committed, StoreError> {
        let _turn = self.writing().await;
        let mut tx = self.pool.begin().await?;
        if let Some((channel, message_id)) = &c.dedup {
            let done = sqlx::query(INSERT_PROCESSED).bind(channel).bind(message_id).bind(c.at).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Duplicate);
            }
        }
        let mut conv = c.conversation.clone();
        let updated = sqlx::query(
            "UPDATE conversations SET customer_name = $1, lang = $2, state = $3, owner = $4, ticket_id = $5, \
             version = version + 1, updated_at = $6 WHERE id = $7 AND version = $8",
        )
        .bind(&conv.customer_name)
        .bind(conv.lang.as_str())
        .bind(json(&conv.state)?)
        .bind(json(&conv.owner)?)
        .bind(conv.ticket_id)
        .bind(c.at)
        .bind(conv.id)
        .bind(conv.version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict(conv.id));
        }
        conv.version += 1;
        conv.updated_at = c.at;

        let mut ticket_id = c.existing_ticket();
        if let Some(t) = &c.open_ticket {
            let id: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "INSERT INTO tickets ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                &TICKET_COLS[4..]
            )))
            .bind(conv.id)
            .bind(&t.key.channel)
            .bind(&t.key.chat)
            .bind(&t.customer_id)
            .bind(&t.customer_name)
            .bind(t.lang.as_str())
            .bind(json(&t.reason)?)
            .bind(priority_num(t.priority))
            .bind(json(&t.fields)?)
            .bind(t.status.as_str())
            .bind(&t.agent)
            .bind(t.created_at)
            .bind(t.updated_at)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE conversations SET ticket_id = $1 WHERE id = $2").bind(id).bind(conv.id).execute(&mut *tx).await?;
            conv.ticket_id = Some(id);
            ticket_id = Some(id);
        }
        if let Some(t) = &c.update_ticket {
            // With `ticket_was`, only if nobody changed its owner since it was read.
            let guard = if c.ticket_was.is_some() { " AND status = $7 AND agent IS NOT DISTINCT FROM $8" } else { "" };
            let sql =
                format!("UPDATE tickets SET priority = $1, fields = $2, status = $3, agent = $4, updated_at = $5 WHERE id = $6{guard}");
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(priority_num(t.priority))
                .bind(json(&t.fields)?)
                .bind(t.status.as_str())
                .bind(&t.agent)
                .bind(t.updated_at)
                .bind(t.id);
            if let Some((status, agent)) = &c.ticket_was {
                q = q.bind(status.as_str()).bind(agent);
            }
            let updated = q.execute(&mut *tx).await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::Conflict(conv.id));
            }
        }
        if let Some(tid) = ticket_id {
            for kind in &c.events {
                insert_event(&mut tx, tid, kind, c.at).await?;
            }
        }
        // Events for other tickets (a rating on the one that just closed); the foreign key
        // refuses a ticket that does not exist, and with it the whole commit.
        for (tid, kind) in &c.ticket_events {
            insert_event(&mut tx, *tid, kind, c.at).await?;
        }
        // One statement for all the lines, one for all the effects (rows keep their order): each
        // statement is a round trip, and on SQLite the commit holds the one writer's turn.
        if !c.transcript.is_empty() {
            let rows: Vec<String> = (0..c.transcript.len()).map(|i| format!("($1, $2, $3, {})", placeholders(4 + 5 * i, 5))).collect();
            let sql = format!(
                "INSERT INTO transcript (conversation_id, ticket_id, at, author, text, intent, outcome, choices) VALUES {}",
                rows.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(conv.id).bind(ticket_id).bind(c.at);
            // The outcome goes on the first customer line.
            let mut outcome = c.outcome.as_ref();
            for line in &c.transcript {
                let o = if line.author == Author::Customer { outcome.take() } else { None };
                let choices = if line.choices.is_empty() { None } else { Some(json(&line.choices)?) };
                q = q
                    .bind(json(&line.author)?)
                    .bind(line.text.as_str())
                    .bind(o.and_then(|o| o.intent.clone()))
                    .bind(o.map(|o| o.action.clone()))
                    .bind(choices);
            }
            q.execute(&mut *tx).await?;
        }
        let outbox: Vec<Outgoing> = c
            .outbox
            .iter()
            .map(|item| {
                let mut item = item.clone();
                if let Outgoing::Desk { ticket_id: t @ None, .. } = &mut item {
                    *t = ticket_id;
                }
                item
            })
            .collect();
        insert_outbox_all(&mut tx, &outbox, c.at).await?;
        for (namespace, key, value) in &c.values {
            sqlx::query(SET_VALUE).bind(namespace).bind(key).bind(value).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Committed { conversation: conv, ticket_id })
    }

    async fn ticket(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {TICKET_COLS} FROM tickets WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ticket_row).transpose()
    }

    async fn tickets(&self, status: &[TicketStatus]) -> Result<Vec<Ticket>, StoreError> {
        let mut out = Vec::new();
        // Few states: one query per state keeps the SQL portable; merge in queue order.
        for s in status {
            let rows = sqlx::query(AssertSqlSafe(format!("SELECT {TICKET_COLS} FROM tickets WHERE status = $1")))
                .bind(s.as_str())
                .fetch_all(&self.pool)
                .await?;
            for r in &rows {
                out.push(ticket_row(r)?);
            }
        }
        out.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created_at.cmp(&b.created_at)).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn queue_counts(&self) -> Result<[usize; 4], StoreError> {
        let rows = sqlx::query("SELECT priority, COUNT(*) AS n FROM tickets WHERE status = 'queued' GROUP BY priority")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = [0usize; 4];
        for r in &rows {
            let n: i64 = r.try_get("n")?;
            counts[priority_from(r.try_get("priority")?) as usize] += usize::try_from(n).unwrap_or(0);
        }
        Ok(counts)
    }

    async fn backlog(&self) -> Result<super::Backlog, StoreError> {
        // Both counted on their indexes (`tickets_queue`, `outbox_due`), whatever waits.
        let oldest_queued_at: Option<i64> =
            sqlx::query_scalar("SELECT MIN(created_at) FROM tickets WHERE status = 'queued'").fetch_one(&self.pool).await?;
        let rows =
            sqlx::query("SELECT target, COUNT(*) AS n FROM outbox WHERE status = 'pending' GROUP BY target").fetch_all(&self.pool).await?;
        let mut outbox_pending = std::collections::BTreeMap::new();
        for row in rows {
            let (target, n): (String, i64) = (row.try_get("target")?, row.try_get("n")?);
            outbox_pending.insert(target, u64::try_from(n).unwrap_or(0));
        }
        Ok(super::Backlog { oldest_queued_at, outbox_pending })
    }

    async fn queue_position(&self, ticket_id: i64) -> Result<Option<usize>, StoreError> {
        let me = sqlx::query("SELECT priority, created_at FROM tickets WHERE id = $1 AND status = 'queued'")
            .bind(ticket_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(me) = me else { return Ok(None) };
        let (priority, created): (i64, i64) = (me.try_get("priority")?, me.try_get("created_at")?);
        let ahead: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE status = 'queued' AND \
             (priority > $1 OR (priority = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3))))",
        )
        .bind(priority)
        .bind(created)
        .bind(ticket_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(usize::try_from(ahead).unwrap_or(0) + 1))
    }

    async fn ticket_events(&self, ticket_id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query("SELECT ticket_id, at, kind FROM ticket_events WHERE ticket_id = $1 ORDER BY id")
            .bind(ticket_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TicketEvent {
                    ticket_id: r.try_get("ticket_id")?,
                    at: r.try_get("at")?,
                    kind: from_json(&r.try_get::<String, _>("kind")?)?,
                })
            })
            .collect()
    }

    async fn append_events(
        &self,
        ticket_id: i64,
        events: Vec<TicketEventKind>,
        outbox: Vec<Outgoing>,
        at: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.writing().await;
        let mut tx = self.pool.begin().await?;
        for kind in &events {
            insert_event(&mut tx, ticket_id, kind, at).await?;
        }
        for item in &outbox {
            insert_outbox(&mut tx, item, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn transcript(&self, conversation_id: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TRANSCRIPT_COLUMNS} FROM transcript WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2"
        )))
        .bind(conversation_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut v = rows.iter().map(transcript_entry).collect::<Result<Vec<_>, StoreError>>()?;
        v.reverse();
        Ok(v)
    }

    async fn transcript_after(&self, conversation_id: i64, after: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TRANSCRIPT_COLUMNS} FROM transcript WHERE conversation_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(conversation_id)
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(transcript_entry).collect()
    }

    async fn transcript_touched(&self, after: i64, limit: usize) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT conversation_id, MAX(id) AS newest FROM transcript WHERE id > $1 GROUP BY conversation_id ORDER BY newest LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("conversation_id")?, r.try_get("newest")?))).collect()
    }

    async fn transcript_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS head FROM transcript").fetch_one(&self.pool).await?;
        Ok(row.try_get("head")?)
    }

    async fn claim_destinations(
        &self,
        targets: &[String],
        owner: &str,
        now: Millis,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<(Lease, OutboxItem)>, StoreError> {
        if targets.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // The heads of destinations that are due and not held by a live lease, longest waiting
        // first. Asking for a few more than `limit` leaves room for races lost to other senders.
        let list = placeholders(3, targets.len());
        let sql = format!(
            "SELECT o.dest FROM outbox o WHERE o.status = 'pending' AND o.due_at <= $1 AND o.target IN ({list}) \
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.dest = o.dest AND e.status = 'pending' AND e.id < o.id) \
             AND NOT EXISTS (SELECT 1 FROM outbox_leases l WHERE l.dest = o.dest AND l.until > $1) \
             ORDER BY o.due_at, o.id LIMIT $2"
        );
        let mut q =
            sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(now).bind(i64::try_from(limit.saturating_mul(2)).unwrap_or(i64::MAX));
        for t in targets {
            q = q.bind(t);
        }
        let dests = q.fetch_all(&self.pool).await?;
        let mut claimed = Vec::new();
        for dest in dests {
            if claimed.len() >= limit {
                break;
            }
            let lease = Lease { dest, token: super::new_token(owner) };
            let turn = self.writing().await;
            let taken = sqlx::query(
                "INSERT INTO outbox_leases (dest, owner, token, until) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (dest) DO UPDATE SET owner = excluded.owner, token = excluded.token, until = excluded.until \
                 WHERE outbox_leases.until <= $5",
            )
            .bind(&lease.dest)
            .bind(owner)
            .bind(&lease.token)
            .bind(now + lease_ms)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
            drop(turn);
            if taken == 0 {
                continue;
            }
            // Read the head again under the lease: another sender may have moved on meanwhile.
            if let Some(item) = self.outbox_next(&lease, now, lease_ms).await? {
                claimed.push((lease, item));
            }
        }
        Ok(claimed)
    }

    async fn outbox_next(&self, lease: &Lease, now: Millis, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError> {
        let _turn = self.writing().await;
        let renewed = sqlx::query("UPDATE outbox_leases SET until = $1 WHERE dest = $2 AND token = $3")
            .bind(now + lease_ms)
            .bind(&lease.dest)
            .bind(&lease.token)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if renewed == 0 {
            return Err(StoreError::LeaseLost(lease.dest.clone()));
        }
        let row = sqlx::query("SELECT id, item, attempts, due_at FROM outbox WHERE dest = $1 AND status = 'pending' ORDER BY id LIMIT 1")
            .bind(&lease.dest)
            .fetch_optional(&self.pool)
            .await?;
        match row.map(|r| outbox_row(&r)).transpose()? {
            Some(item) if item.due_at <= now => Ok(Some(item)),
            _ => {
                self.release(lease).await?;
                Ok(None)
            }
        }
    }

    async fn outbox_done(&self, lease: &Lease, id: i64) -> Result<(), StoreError> {
        let _turn = self.writing().await;
        let q = sqlx::query("DELETE FROM outbox WHERE id = $1 AND EXISTS (SELECT 1 FROM outbox_leases WHERE dest = $2 AND token = $3)")
            .bind(id)
            .bind(&lease.dest)
            .bind(&lease.token);
        self.under_lease(lease, q).await
    }

    async fn outbox_retry(&self, lease: &Lease, id: i64, attempts: i64, due_at: Millis) -> Result<(), StoreError> {
        let _turn = self.writing().await;
        let q = sqlx::query(
            "UPDATE outbox SET attempts = $1, due_at = $2 WHERE id = $3 \
             AND EXISTS (SELECT 1 FROM outbox_leases WHERE dest = $4 AND token = $5)",
        )
        .bind(attempts)
        .bind(due_at)
        .bind(id)
        .bind(&lease.dest)
        .bind(&lease.token);
        self.under_lease(lease, q).await?;
        self.release(lease).await
    }

    async fn outbox_fail(&self, lease: &Lease, id: i64, reason: &str, at: Millis, record: Option<TicketRecord>) -> Result<(), StoreError> {
        let _turn = self.writing().await;
        let mut tx = self.pool.begin().await?;
        // A failed item's due time is when it failed: what pruning goes by.
        let failed = sqlx::query(
            "UPDATE outbox SET status = 'failed', error = $1, due_at = $2 WHERE id = $3 \
             AND EXISTS (SELECT 1 FROM outbox_leases WHERE dest = $4 AND token = $5)",
        )
        .bind(reason)
        .bind(at)
        .bind(id)
        .bind(&lease.dest)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if failed == 0 {
            // Lost the lease, or the item is gone already: nothing to record either way.
            return still_held(&mut *tx, lease).await;
        }
        if let Some(r) = record {
            for kind in &r.events {
                insert_event(&mut tx, r.ticket_id, kind, at).await?;
            }
            for item in &r.outbox {
                insert_outbox(&mut tx, item, at).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn renew_leases(&self, leases: &[Lease], until: Millis) -> Result<u64, StoreError> {
        let _turn = self.writing().await;
        if leases.is_empty() {
            return Ok(0);
        }
        let sql = format!("UPDATE outbox_leases SET until = $1 WHERE token IN ({})", placeholders(2, leases.len()));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(until);
        for l in leases {
            q = q.bind(&l.token);
        }
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let _turn = self.writing().await;
        Ok(sqlx::query("DELETE FROM outbox_leases WHERE owner = $1").bind(owner).execute(&self.pool).await?.rows_affected())
    }

    async fn prune_failed_outbox(&self, before: Millis) -> Result<u64, StoreError> {
        let _turn = self.writing().await;
        let q = "DELETE FROM outbox WHERE status = 'failed' AND due_at < $1";
        Ok(sqlx::query(q).bind(before).execute(&self.pool).await?.rows_affected())
    }

    async fn outbox_pending(&self) -> Result<Vec<OutboxItem>, StoreError> {
        let rows =
            sqlx::query("SELECT id, item, attempts, due_at FROM outbox WHERE status = 'pending' ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(outbox_row).collect()
    }

    async fn is_processed(&self, channel: &str, message_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT at FROM processed WHERE channel = $1 AND message_id = $2")
            .bind(channel)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn mark_processed(&self, channel: &str, message_id: &str, at: Millis) -> Result<(), StoreError> {
        let _turn = self.writing().await;
        sqlx::query(INSERT_PROCESSED).bind(channel).bind(message_id).bind(at).execute(&self.pool).await?;
        Ok(())
    }

    fn ticket_events_since<'a>(&'a self, since: Millis) -> futures_util::stream::BoxStream<'a, Result<TicketEvent, StoreError>> {
        use futures_util::StreamExt;
        let rows = sqlx::query(
            "SELECT e.ticket_id, e.at, e.kind FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
             WHERE t.created_at >= $1 ORDER BY e.ticket_id, e.id",
        )
        .bind(since)
        .fetch(&self.pool);
        Box::pin(rows.map(|r| {
            let r = r?;
            Ok(TicketEvent { ticket_id: r.try_get("ticket_id")?, at: r.try_get("at")?, kind: from_json(&r.try_get::<String, _>("kind")?)? })
        }))
    }

    fn outcome_lines<'a>(
        &'a self,
        since: Millis,
        until: Millis,
    ) -> futures_util::stream::BoxStream<'a, Result<TranscriptEntry, StoreError>> {
        use futures_util::StreamExt;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TRANSCRIPT_COLUMNS} FROM transcript WHERE outcome IS NOT NULL AND at >= $1 AND at < $2 ORDER BY at, id"
        )))
        .bind(since)
        .bind(until)
        .fetch(&self.pool);
        Box::pin(rows.map(|r| transcript_entry(&r?)))
    }

    async fn prune_transcript(&self, before: Millis, limit: usize) -> Result<u64, StoreError> {
        erase::prune_transcript(self, before, limit).await
    }

    async fn erase_closed_tickets(&self, before: Millis, limit: usize, by: &str) -> Result<u64, StoreError> {
        erase::closed_tickets(self, before, limit, by).await
    }

    async fn erase_customer(&self, channel: &str, customer_id: &str, by: &str, at: Millis) -> Result<Erased, StoreError> {
        erase::customer(self, channel, customer_id, by, at).await
    }

    async fn prune_processed(&self, before: Millis) -> Result<u64, StoreError> {
        let _turn = self.writing().await;
        Ok(sqlx::query("DELETE FROM processed WHERE at < $1").bind(before).execute(&self.pool).await?.rows_affected())
    }

    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM kv WHERE namespace = $1 AND key = $2")
            .bind(namespace)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_value(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError> {
        let _turn = self.writing().await;
        sqlx::query(SET_VALUE).bind(namespace).bind(key).bind(value).execute(&self.pool).await?;
        Ok(())
    }

    async fn set_values(&self, values: &[(&str, &str, &str)]) -> Result<(), StoreError> {
        let _turn = self.writing().await;
        let mut tx = self.pool.begin().await?;
        for (namespace, key, value) in values {
            sqlx::query(SET_VALUE).bind(*namespace).bind(*key).bind(*value).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn values(&self, namespace: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM kv WHERE namespace = $1 ORDER BY key").bind(namespace).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("key")?, r.try_get("value")?))).collect()
    }

    async fn delete_values(&self, namespace: &str) -> Result<u64, StoreError> {
        let _turn = self.writing().await;
        Ok(sqlx::query("DELETE FROM kv WHERE namespace = $1").bind(namespace).execute(&self.pool).await?.rows_affected())
    }

    async fn reclaim_space(&self, pages: u32) -> Result<u64, StoreError> {
        self.reclaim(pages).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[tokio::test]
    async fn an_unreadable_dialogue_state_starts_the_dialogue_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
        let new = NewConversation {
            key: ConversationKey { channel: "tg".into(), chat: "7".into() },
            customer_id: "7".into(),
            customer_name: "Sam".into(),
            lang: Lang::En,
            at: 1,
        };
        let conv = store.open_conversation(new.clone()).await.unwrap();
        sqlx::query(
            "UPDATE conversations SET state = '{\"fallbacks\": \"many\", \"pending\": {\"kind\": \"future\"}}', owner = $1 WHERE id = $2",
        )
        .bind(json(&crate::types::Owner::Queue).unwrap())
        .bind(conv.id)
        .execute(&store.pool)
        .await
        .unwrap();
        let again = store.open_conversation(new).await.unwrap();
        assert_eq!((again.id, again.owner, again.state), (conv.id, crate::types::Owner::Queue, crate::dialogue::DialogueState::default()));
        assert!(store.conversation(conv.id).await.unwrap().is_some());
        // The owner decides who answers: it is never guessed.
        sqlx::query("UPDATE conversations SET owner = 'garbage' WHERE id = $1").bind(conv.id).execute(&store.pool).await.unwrap();
        assert!(matches!(store.conversation(conv.id).await, Err(StoreError::Corrupt(_))));
    }

    async fn pragma(store: &SqlStore, name: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("PRAGMA {name}"))).fetch_one(&store.pool).await.unwrap()
    }

    /// Fills the outbox with `n` rows of about 1 kB and deletes them, as delivery does.
    async fn churn_outbox(pool: &AnyPool, n: usize) {
        let key = ConversationKey { channel: "tg".into(), chat: "42".into() };
        let item = Outgoing::Customer { key, reply: crate::types::Reply::text("x".repeat(1000)), ticket_id: None };
        let item = json(&item).unwrap();
        for _ in 0..n {
            sqlx::query("INSERT INTO outbox (target, dest, item, attempts, due_at, status) VALUES ('tg', 'tg/42', $1, 0, 10, 'pending')")
                .bind(&item)
                .execute(pool)
                .await
                .unwrap();
        }
        sqlx::query("DELETE FROM outbox").execute(pool).await.unwrap();
    }

    #[tokio::test]
    async fn sqlite_gives_the_space_of_delivered_items_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchboard.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        // A database as earlier versions created it: no auto_vacuum, and free pages left behind.
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.unwrap();
        SQLITE_MIGRATIONS.run(&pool).await.unwrap();
        churn_outbox(&pool, 500).await;
        pool.close().await;

        // Opened by this version: converted once.
        let store = SqlStore::connect(&url).await.unwrap();
        assert_eq!(store.auto_vacuum().await.unwrap(), SQLITE_INCREMENTAL_VACUUM);
        assert_eq!(pragma(&store, "freelist_count").await, 0, "the conversion's VACUUM dropped the old free pages");
        assert_eq!(store.journal_mode().await.unwrap(), "wal");

        churn_outbox(&store.pool, 500).await;
        let (pages, free) = (pragma(&store, "page_count").await, pragma(&store, "freelist_count").await);
        assert!(free > 100, "{free} free pages of {pages}");
        assert_eq!(store.reclaim(10).await.unwrap(), 10, "at most the pages asked for");
        assert_eq!(pragma(&store, "freelist_count").await, free - 10);
        assert_eq!(store.reclaim(u32::MAX).await.unwrap(), u64::try_from(free - 10).unwrap());
        assert_eq!(pragma(&store, "freelist_count").await, 0);
        assert_eq!(pragma(&store, "page_count").await, pages - free);
        assert_eq!(store.reclaim(100).await.unwrap(), 0, "nothing left to give back");
        let size = std::fs::metadata(&file).unwrap().len();
        let page_size = u64::try_from(pragma(&store, "page_size").await).unwrap();
        assert!(size <= u64::try_from(pages - free).unwrap() * page_size, "the file shrank after the checkpoint: {size} bytes");
        store.close().await;

        // A new database is created incremental, and stays so when opened again.
        let fresh = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(fresh.path()).await.unwrap();
        assert_eq!(store.auto_vacuum().await.unwrap(), SQLITE_INCREMENTAL_VACUUM);
        store.close().await;
        let store = SqlStore::open_sqlite(fresh.path()).await.unwrap();
        assert_eq!(store.auto_vacuum().await.unwrap(), SQLITE_INCREMENTAL_VACUUM);
        store.close().await;
    }

    #[test]
    fn priorities_round_trip() {
        for p in [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent] {
            assert_eq!(priority_from(priority_num(p)), p);
        }
    }
}
