//! The agents' side: [`DiscordDesk`] keeps one thread per ticket in the staff channel. A new ticket
//! opens a thread named after it, starting with the summary embed; customer messages, claims,
//! releases, notes and delivery failures are posted there; closing posts, then archives and locks
//! the thread. Every post carries a nonce Discord enforces (the outbox item's, or for the summary
//! one of the ticket's), so a retried notice is not shown twice.

use std::sync::Arc;

use async_trait::async_trait;
use serenity::all::{AutoArchiveDuration, ChannelId, ChannelType, CreateMessage, CreateThread, EditThread, Http};
use switchboard_core::ChannelError;
use switchboard_core::channel::{AgentDesk, TicketView, ticket_title};
use switchboard_core::types::DeskNotice;

use crate::api::Api;
use crate::channel::{piece_nonce, with_nonce};
use crate::format;
use crate::threads::{NS_CLOSED, NS_SUMMARY, Threads};

/// The desk's name, as in the engine's `desks` setting.
pub const DESK_NAME: &str = "discord";

/// Actor ids of Discord members start with this.
pub const ACTOR_PREFIX: &str = "discord:";

/// Ticket threads in a staff text channel.
#[derive(Clone)]
pub struct DiscordDesk {
    api: Api,
    staff_channel: ChannelId,
    threads: Threads,
}

impl std::fmt::Debug for DiscordDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordDesk").field("staff_channel", &self.staff_channel).finish_non_exhaustive()
    }
}

fn store_error(e: switchboard_core::StoreError) -> ChannelError {
    ChannelError::Transient(format!("storage: {e}"))
}

impl DiscordDesk {
    /// A desk in `staff_channel`.
    pub fn new(http: Arc<Http>, staff_channel: ChannelId, threads: Threads) -> DiscordDesk {
        DiscordDesk::with_api(Api::new(http), staff_channel, threads)
    }

    /// A desk over `api` (shared with the customer channel).
    pub(crate) fn with_api(api: Api, staff_channel: ChannelId, threads: Threads) -> DiscordDesk {
        DiscordDesk { api, staff_channel, threads }
    }

    /// The ticket's thread, created (with its summary) if it has none yet. Safe to retry: the
    /// thread id is stored as soon as the thread exists, and the summary is marked once posted.
    async fn thread(&self, view: &TicketView) -> Result<ChannelId, ChannelError> {
        let id = view.ticket.id;
        let thread = match self.threads.thread_of(id).await.map_err(store_error)? {
            Some(t) => t,
            None => {
                let name = ticket_title(&view.ticket, format::THREAD_NAME_LIMIT);
                let create = CreateThread::new(name).kind(ChannelType::PublicThread).auto_archive_duration(AutoArchiveDuration::OneWeek);
                let thread = self.api.create_thread(self.staff_channel, &create).await?;
                tracing::info!(ticket = id, thread = %thread, "opened a ticket thread");
                self.threads.remember(id, thread).await.map_err(store_error)?;
                thread
            }
        };
        if !self.threads.done(NS_SUMMARY, id).await.map_err(store_error)? {
            // The ticket's own nonce: whichever notice posts the summary, and however often.
            let msg = CreateMessage::new().embed(format::summary_embed(view)).allowed_mentions(format::no_mentions());
            self.api.send_message(thread, &with_nonce(msg, Some(format!("s{id}")))).await?;
            self.threads.mark_done(NS_SUMMARY, id).await.map_err(store_error)?;
        }
        Ok(thread)
    }

    /// Posts a notice's pieces in order (the engine already split long text, see
    /// [`crate::DESK_TEXT_LIMIT`]; escaping may still make more than one), each with its own
    /// nonce derived from the item's.
    async fn post(&self, thread: ChannelId, pieces: Vec<String>, nonce: Option<&str>) -> Result<(), ChannelError> {
        for (i, piece) in pieces.into_iter().enumerate() {
            let msg = CreateMessage::new().content(piece).allowed_mentions(format::no_mentions());
            self.api.send_message(thread, &with_nonce(msg, nonce.map(|n| piece_nonce(n, i)))).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl AgentDesk for DiscordDesk {
    fn name(&self) -> &str {
        DESK_NAME
    }

    async fn notify(&self, view: &TicketView, notice: &DeskNotice) -> Result<(), ChannelError> {
        self.notify_by(view, notice, None).await
    }

    async fn notify_by(&self, view: &TicketView, notice: &DeskNotice, by: Option<&str>) -> Result<(), ChannelError> {
        self.deliver(view, notice, by, None).await
    }

    async fn notify_once(&self, view: &TicketView, notice: &DeskNotice, by: Option<&str>, nonce: &str) -> Result<(), ChannelError> {
        self.deliver(view, notice, by, Some(nonce)).await
    }
}

impl DiscordDesk {
    /// Shows a notice in the ticket's thread, its posts carrying nonces derived from `nonce`.
    async fn deliver(&self, view: &TicketView, notice: &DeskNotice, by: Option<&str>, nonce: Option<&str>) -> Result<(), ChannelError> {
        let own = by.is_some_and(|b| b.starts_with(ACTOR_PREFIX));
        match notice {
            // A Discord agent wrote it in the thread themselves: do not echo it.
            DeskNotice::AgentReply { .. } | DeskNotice::Note { .. } if own => Ok(()),
            DeskNotice::Opened => self.thread(view).await.map(|_| ()),
            DeskNotice::Closed { .. } => {
                // A ticket that never had a thread here needs none now.
                let Some(thread) = self.threads.thread_of(view.ticket.id).await.map_err(store_error)? else {
                    return Ok(());
                };
                if !self.threads.done(NS_CLOSED, view.ticket.id).await.map_err(store_error)?
                    && let Some(pieces) = format::notice_pieces(view, notice)
                {
                    self.post(thread, pieces, nonce).await?;
                    self.threads.mark_done(NS_CLOSED, view.ticket.id).await.map_err(store_error)?;
                }
                let archive = EditThread::new().archived(true).locked(true);
                self.api.edit_thread(thread, &archive).await
            }
            DeskNotice::Rated { .. } => {
                // Rated after the close: said in the ticket's thread (if it has one), which is
                // archived and locked: opened for the post, then archived and locked again.
                let Some(thread) = self.threads.thread_of(view.ticket.id).await.map_err(store_error)? else {
                    return Ok(());
                };
                if let Some(pieces) = format::notice_pieces(view, notice) {
                    self.api.edit_thread(thread, &EditThread::new().archived(false).locked(false)).await?;
                    self.post(thread, pieces, nonce).await?;
                }
                let archive = EditThread::new().archived(true).locked(true);
                self.api.edit_thread(thread, &archive).await
            }
            _ => {
                let thread = self.thread(view).await?;
                match format::notice_pieces(view, notice) {
                    Some(pieces) => self.post(thread, pieces, nonce).await,
                    None => Ok(()),
                }
            }
        }
    }
}
