//! One-time moves of what earlier versions of this adapter stored, done at start by
//! [`Telegram::connect`](crate::Telegram::connect) through the store's public API.

use switchboard_core::StoreError;
use switchboard_core::store::Store;
use switchboard_core::types::now_ms;

use crate::STAFF_PROCESSED;

/// Where earlier versions kept the staff-group messages already acted on: adapter values keyed
/// `<chat>:<message id>`, never pruned.
pub(crate) const OLD_STAFF_DONE_NS: &str = "telegram.staff_done";

/// Moves the staff marks earlier versions kept as values ([`OLD_STAFF_DONE_NS`]) to the handled
/// message ids of [`STAFF_PROCESSED`], where they are pruned like every other one; returns how
/// many moved. (The core's migration 0002 did this once; it is this adapter's data, so the
/// adapter does it.) Each mark is dated now, as its own date was never kept: it stays for a whole
/// retention period from the upgrade. Safe to repeat, and to run from several instances at once:
/// a mark recorded twice keeps its first date, and the old values go only once every mark is
/// recorded.
pub(crate) async fn move_staff_marks(store: &dyn Store) -> Result<usize, StoreError> {
    let marks = store.values(OLD_STAFF_DONE_NS).await?;
    if marks.is_empty() {
        return Ok(0);
    }
    let at = now_ms();
    for (key, _) in &marks {
        store.mark_processed(STAFF_PROCESSED, key, at).await?;
    }
    store.delete_values(OLD_STAFF_DONE_NS).await?;
    Ok(marks.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::store::MemoryStore;

    #[tokio::test]
    async fn staff_marks_move_once_and_keep_their_first_date() {
        let store = MemoryStore::new();
        assert_eq!(move_staff_marks(&store).await.unwrap(), 0, "nothing to move");
        store.mark_processed(STAFF_PROCESSED, "-100:4", 5).await.unwrap();
        store.set_values(&[(OLD_STAFF_DONE_NS, "-100:4", "1"), (OLD_STAFF_DONE_NS, "-100:5", "1")]).await.unwrap();
        store.set_value("telegram", "offset", "9").await.unwrap();
        let before = now_ms();
        assert_eq!(move_staff_marks(&store).await.unwrap(), 2);
        for key in ["-100:4", "-100:5"] {
            assert!(store.is_processed(STAFF_PROCESSED, key).await.unwrap(), "{key}");
        }
        assert!(store.values(OLD_STAFF_DONE_NS).await.unwrap().is_empty());
        assert_eq!(store.get_value("telegram", "offset").await.unwrap().as_deref(), Some("9"), "other values stay");
        assert_eq!(store.prune_processed(before).await.unwrap(), 1, "only the mark recorded before, at 5");
        assert!(store.is_processed(STAFF_PROCESSED, "-100:5").await.unwrap(), "dated at the move");
        assert_eq!(move_staff_marks(&store).await.unwrap(), 0, "once");
    }
}
