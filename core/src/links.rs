//! Where each ticket lives on an agents' desk (a Telegram forum topic, a Discord thread) and which
//! ticket a place belongs to: one map per desk in the store's key-value space, both directions
//! written in one transaction, and a place known at once in this process (so an agent's message
//! in a brand-new thread is relayed even before, or without, the store's write).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::StoreError;
use crate::store::Store;

/// The ticket ↔ place map of one desk.
pub struct TicketLinks {
    store: Arc<dyn Store>,
    /// Namespace of `ticket → place`.
    place_ns: &'static str,
    /// Namespace of `place → ticket`.
    ticket_ns: &'static str,
    /// Prefix of every key (a desk serving several groups keys by group).
    scope: String,
    known: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for TicketLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketLinks").field("place_ns", &self.place_ns).field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl TicketLinks {
    /// The map kept under `place_ns` (ticket → place) and `ticket_ns` (place → ticket), keys
    /// prefixed by `scope` (e.g. `"-100123:"`, or `""`).
    pub fn new(store: Arc<dyn Store>, place_ns: &'static str, ticket_ns: &'static str, scope: impl Into<String>) -> TicketLinks {
        TicketLinks { store, place_ns, ticket_ns, scope: scope.into(), known: Mutex::new(HashMap::new()) }
    }

    /// The ticket's place, if it has one.
    pub async fn place_of(&self, ticket: i64) -> Result<Option<String>, StoreError> {
        let v = self.store.get_value(self.place_ns, &format!("{}{ticket}", self.scope)).await?;
        Ok(v.filter(|p| !p.is_empty()))
    }

    /// The ticket a place belongs to, if it is a ticket's.
    pub async fn ticket_of(&self, place: &str) -> Result<Option<i64>, StoreError> {
        if let Some(&t) = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(place) {
            return Ok(Some(t));
        }
        let t = self.store.get_value(self.ticket_ns, &format!("{}{place}", self.scope)).await?.and_then(|v| v.parse::<i64>().ok());
        if let Some(t) = t {
            self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(place.to_string(), t);
        }
        Ok(t)
    }

    /// Records a ticket's place: at once in this process, then both directions in the store in
    /// one transaction (an error leaves the store as it was; the notice's retry records it again).
    pub async fn link(&self, ticket: i64, place: &str) -> Result<(), StoreError> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(place.to_string(), ticket);
        let (ticket_key, place_key, ticket_text) =
            (format!("{}{ticket}", self.scope), format!("{}{place}", self.scope), ticket.to_string());
        self.store.set_values(&[(self.place_ns, &ticket_key, place), (self.ticket_ns, &place_key, &ticket_text)]).await
    }

    /// Forgets where a ticket's place is (a deleted topic), so the next notice opens a new one;
    /// the old place still names its ticket.
    pub async fn unlink(&self, ticket: i64) -> Result<(), StoreError> {
        self.store.set_value(self.place_ns, &format!("{}{ticket}", self.scope), "").await
    }
}
