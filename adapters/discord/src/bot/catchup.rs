//! Reading, at each new gateway session, what was written while the bot was away: the marks of
//! the last message handled per channel (`NS_SEEN`, `NS_SEEN_DM`) and the catch-up that reads the
//! REST history after them, oldest first, before live events go on.

use super::*;

/// Namespace of `channel id → id of the last message handled there`, for support channels and
/// ticket threads.
pub const NS_SEEN: &str = "discord.seen";
/// The same for customers' DM channels (REST messages do not say whether they come from a DM).
pub const NS_SEEN_DM: &str = "discord.seen_dm";

/// Channels whose last handled message is older than this are not read again at a session's start
/// (so a restart does not walk every DM ever opened); it matches the engine's dedup retention.
pub(super) const CATCH_UP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// At most this many pages of 100 messages are read per channel at a session's start.
pub(super) const CATCH_UP_PAGES: usize = 10;

/// What a channel whose messages are read at a session's start is.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// A customer's direct messages.
    Dm,
    /// A support channel, where customers mention the bot.
    Support,
    /// The thread of this ticket, where agents answer.
    Thread(i64),
}

impl Kind {
    /// Where the last handled message of such a channel is kept.
    pub(super) fn namespace(self) -> &'static str {
        match self {
            Kind::Dm => NS_SEEN_DM,
            Kind::Support | Kind::Thread(_) => NS_SEEN,
        }
    }
}

/// Milliseconds since the Unix epoch at which a snowflake id was made.
pub(super) fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + 1_420_070_400_000
}

impl Worker {
    /// Starts each new session: once every queue has handled what it held from before, reads
    /// what was missed, then lets the queues go on.
    pub(super) async fn sessions(self: Arc<Self>, mut rx: mpsc::Receiver<Session>, mut stop: watch::Receiver<bool>) {
        loop {
            let session = tokio::select! {
                s = rx.recv() => match s {
                    Some(s) => s,
                    None => return,
                },
                _ = stop.wait_for(|s| *s) => return,
            };
            let Session { ready, reached, resume } = session;
            for r in reached {
                tokio::select! {
                    _ = r => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            self.on_ready(&ready);
            self.catch_up().await;
            drop(resume);
        }
    }

    pub(super) fn on_ready(&self, ready: &Ready) {
        tracing::info!(bot = %ready.user.id, guilds = ready.guilds.len(), "connected to the Discord gateway");
        self.http.set_application_id(ready.application.id);
        let Some(guild) = self.staff_guild else { return };
        if self.commands_registered.swap(true, Ordering::SeqCst) {
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move {
            match guild.set_commands(&*http, commands()).await {
                Ok(c) => tracing::info!(guild = %guild, commands = c.len(), "registered the agents' slash commands"),
                Err(e) => tracing::error!(guild = %guild, error = %e, "could not register the agents' slash commands"),
            }
        });
    }

    /// Handles, oldest first, the messages posted since the last one handled in each recently
    /// active DM, support channel and ticket thread: what customers and agents wrote while no
    /// session was live.
    pub(super) async fn catch_up(&self) {
        let store = self.engine.store().clone();
        let (dms, others) = match (store.values(NS_SEEN_DM).await, store.values(NS_SEEN).await) {
            (Ok(d), Ok(o)) => (d, o),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot read which Discord messages were handled; messages sent while disconnected are not read");
                return;
            }
        };
        let seen = dms.into_iter().map(|s| (true, s)).chain(others.into_iter().map(|s| (false, s)));
        // A live delivery of what the previous session read has come by now.
        self.caught_up.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let now = u64::try_from(switchboard_core::types::now_ms()).unwrap_or_default();
        let window = u64::try_from(CATCH_UP_WINDOW.as_millis()).unwrap_or(u64::MAX);
        let mut read = 0usize;
        for (dm, (channel, last)) in seen {
            let (Ok(channel), Ok(mut after)) = (channel.parse::<u64>(), last.parse::<u64>()) else { continue };
            if channel == 0 || after == 0 || snowflake_ms(after).saturating_add(window) < now {
                continue;
            }
            let kind = if dm {
                Kind::Dm
            } else if self.config.support_channel_ids.contains(&channel) {
                Kind::Support
            } else {
                match self.threads.ticket_of(ChannelId::new(channel)).await {
                    Ok(Some(ticket)) => Kind::Thread(ticket),
                    // No longer a support channel (configuration changed): not ours to read.
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "cannot tell whether a channel is a ticket thread; not read");
                        continue;
                    }
                }
            };
            self.seen.lock().unwrap_or_else(|p| p.into_inner()).entry(channel).or_insert(after);
            for _ in 0..CATCH_UP_PAGES {
                let page = ChannelId::new(channel).messages(&*self.http, GetMessages::new().after(MessageId::new(after)).limit(100)).await;
                let mut page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "cannot read the Discord messages sent while disconnected");
                        break;
                    }
                };
                // Discord lists a page newest first.
                page.sort_by_key(|m| m.id);
                let full = page.len() >= 100;
                let from = after;
                for m in page.into_iter().filter(|m| m.id.get() > from) {
                    after = m.id.get();
                    if !self.takes(&m) {
                        continue;
                    }
                    read += 1;
                    match kind {
                        // REST messages carry no member: the roles the allowlist checks are looked up.
                        Kind::Thread(ticket) => {
                            let member = match self.staff_guild {
                                Some(g) => g.member(&*self.http, m.author.id).await.ok(),
                                None => None,
                            };
                            let nick = member.as_ref().and_then(|mb| mb.nick.clone());
                            let roles = member.map(|mb| mb.roles).unwrap_or_default();
                            self.agent_message(&m, ticket, nick.as_deref(), &roles).await;
                        }
                        // Nor a guild id: the channel's kind says what they are.
                        Kind::Support => self.support_message(&m).await,
                        Kind::Dm => self.customer_message(&m, Target { channel: m.channel_id, user: None }, false).await,
                    }
                    self.caught_up.lock().unwrap_or_else(|p| p.into_inner()).insert(m.id.get());
                }
                // Past what was read (and ignored) too, unless shutdown cut the handling short.
                if self.stop.get().is_some_and(|s| *s.borrow()) {
                    return;
                }
                self.mark_seen(kind.namespace(), ChannelId::new(channel), MessageId::new(after)).await;
                if !full {
                    break;
                }
            }
        }
        if read > 0 {
            tracing::info!(messages = read, "read the Discord messages sent while disconnected");
        }
    }

    /// Records that the message `id` in `channel` (whose kind is told by namespace `ns`) was
    /// handled (only ever forward); for a queued support-channel message, once the earlier ones
    /// there are handled too.
    pub(super) async fn mark_seen(&self, ns: &str, channel: ChannelId, id: MessageId) {
        if !self.in_flight.hold(channel.get(), id.get()) {
            self.write_mark(ns, channel, id).await;
        }
    }

    /// Writes the mark of `channel` (only ever forward).
    pub(super) async fn write_mark(&self, ns: &str, channel: ChannelId, id: MessageId) {
        let newer = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let last = seen.entry(channel.get()).or_insert(0);
            let newer = id.get() > *last;
            if newer {
                *last = id.get();
            }
            newer
        };
        if newer && let Err(e) = self.engine.store().set_value(ns, &channel.get().to_string(), &id.get().to_string()).await {
            tracing::warn!(channel = %channel, error = %e, "cannot record the last handled Discord message");
        }
    }
}
