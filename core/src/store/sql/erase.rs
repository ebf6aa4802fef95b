//! Deleting and erasing data on SQL: old transcript lines (`retention.transcript_days`), the texts
//! of tickets closed long ago (`retention.closed_ticket_days`), and everything about one customer
//! on request (`switchboard forget`). Each runs in one transaction, in bounded batches where it
//! runs from housekeeping. Tickets keep their times, reason, priority and outcome, for reports.

use sqlx::{AssertSqlSafe, Row};

use super::{SqlStore, Tx, from_json, insert_event, json};
use crate::StoreError;
use crate::dialogue::DialogueState;
use crate::store::Erased;
use crate::types::{ERASED, Millis, Owner, TicketEventKind};

/// `$first, $first+1, …` for `n` values.
fn params(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub(super) async fn prune_transcript(store: &SqlStore, before: Millis, limit: usize) -> Result<u64, StoreError> {
    let _turn = store.writing().await;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(sqlx::query("DELETE FROM transcript WHERE id IN (SELECT id FROM transcript WHERE at < $1 ORDER BY id LIMIT $2)")
        .bind(before)
        .bind(limit)
        .execute(&store.pool)
        .await?
        .rows_affected())
}

pub(super) async fn closed_tickets(store: &SqlStore, before: Millis, limit: usize, by: &str) -> Result<u64, StoreError> {
    let _turn = store.writing().await;
    let mut tx = store.pool.begin().await?;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM tickets WHERE status = 'closed' AND updated_at < $1 AND erased_at IS NULL ORDER BY id LIMIT $2")
            .bind(before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
    erase_tickets(&mut tx, &ids, by, crate::types::now_ms()).await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// Erases the tickets' texts; returns the transcript lines deleted.
async fn erase_tickets(tx: &mut Tx<'_>, ids: &[i64], by: &str, at: Millis) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let list = params(1, ids.len());
    let bind_ids = |sql: String| {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(*id);
        }
        q
    };
    let lines = bind_ids(format!("DELETE FROM transcript WHERE ticket_id IN ({list})")).execute(&mut **tx).await?.rows_affected();
    let events = bind_ids(format!("SELECT id, kind FROM ticket_events WHERE ticket_id IN ({list})")).fetch_all(&mut **tx).await?;
    for row in events {
        let kind: TicketEventKind = from_json(&row.try_get::<String, _>("kind")?)?;
        if let Some(gone) = kind.erased() {
            sqlx::query("UPDATE ticket_events SET kind = $1 WHERE id = $2")
                .bind(json(&gone)?)
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&mut **tx)
                .await?;
        }
    }
    let tickets = bind_ids(format!("SELECT id, fields FROM tickets WHERE id IN ({list})")).fetch_all(&mut **tx).await?;
    for row in tickets {
        let mut fields: Vec<crate::types::Field> = from_json(&row.try_get::<String, _>("fields")?)?;
        for f in &mut fields {
            f.value = ERASED.into();
        }
        let id: i64 = row.try_get("id")?;
        sqlx::query("UPDATE tickets SET fields = $1, erased_at = $2 WHERE id = $3")
            .bind(json(&fields)?)
            .bind(at)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        insert_event(tx, id, &TicketEventKind::Erased { by: by.to_string() }, at).await?;
    }
    Ok(lines)
}

pub(super) async fn customer(store: &SqlStore, channel: &str, customer_id: &str, by: &str, at: Millis) -> Result<Erased, StoreError> {
    let _turn = store.writing().await;
    let mut tx = store.pool.begin().await?;
    let convs = sqlx::query("SELECT id, chat FROM conversations WHERE channel = $1 AND customer_id = $2")
        .bind(channel)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await?;
    let tickets = sqlx::query("SELECT id, chat, conversation_id FROM tickets WHERE channel = $1 AND customer_id = $2")
        .bind(channel)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await?;
    let ticket_ids: Vec<i64> = tickets.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
    let mut out = Erased { conversations: convs.len() as u64, tickets: ticket_ids.len() as u64, ..Erased::default() };
    out.transcript_lines += erase_tickets(&mut tx, &ticket_ids, by, at).await?;
    let mut dests: Vec<String> = Vec::new();
    for row in &tickets {
        let (id, chat, conv): (i64, String, i64) = (row.try_get("id")?, row.try_get("chat")?, row.try_get("conversation_id")?);
        dests.push(format!("{channel}/{chat}"));
        sqlx::query("UPDATE tickets SET customer_id = $1, customer_name = $1, chat = $2, status = 'closed' WHERE id = $3")
            .bind(ERASED)
            .bind(format!("erased:{conv}"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        out.outbox_items +=
            sqlx::query("DELETE FROM outbox WHERE dest LIKE $1").bind(format!("desk:%/{id}")).execute(&mut *tx).await?.rows_affected();
    }
    for row in &convs {
        let (id, chat): (i64, String) = (row.try_get("id")?, row.try_get("chat")?);
        dests.push(format!("{channel}/{chat}"));
        out.transcript_lines +=
            sqlx::query("DELETE FROM transcript WHERE conversation_id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        sqlx::query(
            "UPDATE conversations SET customer_id = $1, customer_name = $1, chat = $2, state = $3, owner = $4, ticket_id = NULL, \
             version = version + 1, updated_at = $5 WHERE id = $6",
        )
        .bind(ERASED)
        .bind(format!("erased:{id}"))
        .bind(json(&DialogueState::default())?)
        .bind(json(&Owner::Bot)?)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    dests.sort();
    dests.dedup();
    if !dests.is_empty() {
        let mut q = sqlx::query(AssertSqlSafe(format!("DELETE FROM outbox WHERE dest IN ({})", params(1, dests.len()))));
        for d in &dests {
            q = q.bind(d.as_str());
        }
        out.outbox_items += q.execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(out)
}
