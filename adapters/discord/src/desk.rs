//! The agents' side: [`DiscordDesk`] keeps one thread per ticket in the staff channel. A new ticket
//! opens a thread named after it, starting with the summary embed; customer messages, claims,
//! releases, notes and delivery failures are posted there; closing posts, then archives and locks
//! the thread.

use std::sync::Arc;

use async_trait::async_trait;
use serenity::all::{AutoArchiveDuration, ChannelId, ChannelType, CreateMessage, CreateThread, EditThread, Http};
use switchboard_core::ChannelError;
use switchboard_core::channel::{AgentDesk, TicketView, ticket_title};
use switchboard_core::types::DeskNotice;

use crate::channel::map_error;
use crate::format;
use crate::threads::{NS_CLOSED, NS_SUMMARY, Threads};

/// The desk's name, as in the engine's `desks` setting.
pub const DESK_NAME: &str = "discord";

/// Actor ids of Discord members start with this.
pub const ACTOR_PREFIX: &str = "discord:";

/// Ticket threads in a staff text channel.
#[derive(Clone)]
pub struct DiscordDesk {
    http: Arc<Http>,
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
        DiscordDesk { http, staff_channel, threads }
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
                let thread = self.staff_channel.create_thread(&*self.http, create).await.map_err(|e| map_error(&e))?;
                tracing::info!(ticket = id, thread = %thread.id, "opened a ticket thread");
                self.threads.remember(id, thread.id).await.map_err(store_error)?;
                thread.id
            }
        };
        if !self.threads.done(NS_SUMMARY, id).await.map_err(store_error)? {
            let msg = CreateMessage::new().embed(format::summary_embed(view)).allowed_mentions(format::no_mentions());
            thread.send_message(&*self.http, msg).await.map_err(|e| map_error(&e))?;
            self.threads.mark_done(NS_SUMMARY, id).await.map_err(store_error)?;
        }
        Ok(thread)
    }

    async fn post(&self, thread: ChannelId, pieces: Vec<String>) -> Result<(), ChannelError> {
        for piece in pieces {
            let msg = CreateMessage::new().content(piece).allowed_mentions(format::no_mentions());
            thread.send_message(&*self.http, msg).await.map_err(|e| map_error(&e))?;
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
                    self.post(thread, pieces).await?;
                    self.threads.mark_done(NS_CLOSED, view.ticket.id).await.map_err(store_error)?;
                }
                let archive = EditThread::new().archived(true).locked(true);
                thread.edit_thread(&*self.http, archive).await.map_err(|e| map_error(&e))?;
                Ok(())
            }
            _ => {
                let thread = self.thread(view).await?;
                match format::notice_pieces(view, notice) {
                    Some(pieces) => self.post(thread, pieces).await,
                    None => Ok(()),
                }
            }
        }
    }
}
