//! Which thread of the staff channel belongs to which ticket, kept in the engine store's
//! key-value space so a restart (or another instance) finds the same threads.

use std::sync::Arc;

use serenity::all::ChannelId;
use switchboard_core::StoreError;
use switchboard_core::links::TicketLinks;
use switchboard_core::store::Store;

/// Namespace of `ticket id → thread id`.
pub const NS_THREAD: &str = "discord.thread";
/// Namespace of `thread id → ticket id`.
pub const NS_TICKET: &str = "discord.thread_ticket";
/// Namespace of tickets whose summary embed is in their thread.
pub const NS_SUMMARY: &str = "discord.summary";
/// Namespace of tickets whose closing line is in their thread.
pub const NS_CLOSED: &str = "discord.closed";

/// The ticket ↔ thread map: the core's [`TicketLinks`] over this desk's namespaces, plus the steps
/// done per ticket.
#[derive(Clone)]
pub struct Threads {
    store: Arc<dyn Store>,
    links: Arc<TicketLinks>,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads").finish_non_exhaustive()
    }
}

impl Threads {
    /// The map over `store`.
    pub fn new(store: Arc<dyn Store>) -> Threads {
        Threads { links: Arc::new(TicketLinks::new(store.clone(), NS_THREAD, NS_TICKET, "")), store }
    }

    /// The ticket's thread, if it has one.
    pub async fn thread_of(&self, ticket: i64) -> Result<Option<ChannelId>, StoreError> {
        let v = self.links.place_of(ticket).await?;
        Ok(v.and_then(|v| v.parse::<u64>().ok()).filter(|&id| id > 0).map(ChannelId::new))
    }

    /// The ticket a thread belongs to, if it is a ticket thread.
    pub async fn ticket_of(&self, thread: ChannelId) -> Result<Option<i64>, StoreError> {
        self.links.ticket_of(&thread.get().to_string()).await
    }

    /// Records a ticket's new thread: at once in this process, so an agent's message in the thread
    /// is relayed even if it arrives before (or without) the store's write, then in the store
    /// (both directions in one transaction).
    pub async fn remember(&self, ticket: i64, thread: ChannelId) -> Result<(), StoreError> {
        self.links.link(ticket, &thread.get().to_string()).await
    }

    /// Whether `step` (a namespace such as [`NS_SUMMARY`]) was done for the ticket.
    pub async fn done(&self, step: &str, ticket: i64) -> Result<bool, StoreError> {
        Ok(self.store.get_value(step, &ticket.to_string()).await?.is_some())
    }

    /// Records that `step` was done for the ticket, so a retried notice does not repeat it.
    pub async fn mark_done(&self, step: &str, ticket: i64) -> Result<(), StoreError> {
        self.store.set_value(step, &ticket.to_string(), "done").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::store::MemoryStore;
    use switchboard_testkit::faulty::Faulty;

    #[tokio::test]
    async fn a_remembered_thread_is_known_here_even_when_storing_it_failed() {
        let store = Arc::new(Faulty::new(MemoryStore::new()));
        let threads = Threads::new(store.clone());
        store.set_down(true);
        assert!(threads.remember(7, ChannelId::new(900)).await.is_err(), "the store is down");
        assert_eq!(threads.ticket_of(ChannelId::new(900)).await.ok().flatten(), Some(7));
        store.set_down(false);
        assert_eq!(threads.thread_of(7).await.ok().flatten(), None, "not stored: the notice's retry opens the thread again");
        threads.remember(8, ChannelId::new(901)).await.expect("stored");
        let fresh = Threads::new(store);
        assert_eq!(fresh.ticket_of(ChannelId::new(901)).await.ok().flatten(), Some(8), "another instance finds it in the store");
        assert_eq!(fresh.thread_of(8).await.ok().flatten(), Some(ChannelId::new(901)));
    }
}
