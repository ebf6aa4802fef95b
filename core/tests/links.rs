//! `links::TicketLinks` through a store that fails: a link is known in this process at once, and
//! stored in both directions or not at all.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use switchboard_core::links::TicketLinks;
use switchboard_core::store::{MemoryStore, Store};
use switchboard_testkit::faulty::Faulty;

#[tokio::test]
async fn a_link_is_known_here_at_once_and_stored_in_both_directions_or_not_at_all() {
    let store = Arc::new(Faulty::new(MemoryStore::new()));
    let links = TicketLinks::new(store.clone(), "t.place", "t.ticket", "g:");
    store.set_down(true);
    assert!(links.link(7, "900").await.is_err(), "the store is down");
    assert_eq!(links.ticket_of("900").await.ok().flatten(), Some(7), "known in this process");
    store.set_down(false);
    assert_eq!(links.place_of(7).await.unwrap(), None, "not stored: the notice's retry links it again");
    assert_eq!(store.get_value("t.ticket", "g:900").await.unwrap(), None, "neither direction");
    links.link(8, "901").await.unwrap();
    let other = TicketLinks::new(store.clone(), "t.place", "t.ticket", "g:");
    assert_eq!(other.ticket_of("901").await.unwrap(), Some(8), "another instance finds it");
    assert_eq!(other.place_of(8).await.unwrap().as_deref(), Some("901"));
    other.unlink(8).await.unwrap();
    assert_eq!(other.place_of(8).await.unwrap(), None);
    assert_eq!(other.ticket_of("901").await.unwrap(), Some(8));
}
