//! The web channel as the engine sees it: customers' replies need no sending (the transcript is
//! what a page shows), so [`WebChannel::send`] only wakes the pages of a conversation whose
//! reply was queued by a process without the web channel (`switchboard desk`).

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::ChannelError;
use switchboard_core::channel::Channel;
use switchboard_core::types::{ConversationKey, Reply};

use crate::chat::CHANNEL;
use crate::hub::Hub;

/// The `web` channel.
#[derive(Debug)]
pub struct WebChannel {
    pub(crate) hub: Arc<Hub>,
    pub(crate) store: Arc<dyn switchboard_core::store::Store>,
}

#[async_trait]
impl Channel for WebChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    async fn send(&self, chat: &str, _reply: &Reply) -> Result<(), ChannelError> {
        let key = ConversationKey { channel: CHANNEL.into(), chat: chat.to_string() };
        match self.store.find_conversation(&key).await {
            Ok(Some(c)) => self.hub.poke(c.id, None),
            Ok(None) => {}
            Err(e) => return Err(ChannelError::Transient(format!("cannot read the conversation: {e}"))),
        }
        Ok(())
    }

    fn shows_transcript(&self) -> bool {
        true
    }
}
