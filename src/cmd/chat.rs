//! `switchboard chat`: a customer conversation in the terminal. Each line typed (or piped) is one
//! message; replies, including those an agent sends from `switchboard desk`, are printed as they
//! arrive. Quick-reply choices are numbered: type the number to pick one.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::ChannelError;
use switchboard_core::channel::Channel;
use switchboard_core::engine::Engine;
use switchboard_core::types::{Content, Inbound, Reply, now_ms};
use tokio::io::AsyncBufReadExt;

use crate::config::Config;

/// Options of `switchboard chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The conversation id (reuse it to continue a conversation).
    #[arg(long, default_value = "terminal")]
    pub chat: String,
    /// Your name, as agents see it.
    #[arg(long, default_value = "Terminal customer")]
    pub name: String,
    /// After the input ends, keep printing replies for this many seconds (for piped input that
    /// waits for an agent).
    #[arg(long, default_value_t = 0)]
    pub linger: u64,
}

/// The terminal as a channel: prints replies with their numbered choices.
///
/// Each terminal conversation is a channel of its own (`cli:<chat>`), so that a `switchboard chat`
/// process claims from the outbox only what is addressed to its own conversation: two terminals
/// on one database never print (and so take away) each other's replies.
#[derive(Debug)]
pub struct Terminal {
    name: String,
}

impl Terminal {
    /// The terminal of conversation `chat`.
    pub fn new(chat: &str) -> Self {
        Terminal { name: format!("cli:{chat}") }
    }
}

#[async_trait]
impl Channel for Terminal {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, _chat: &str, reply: &Reply) -> Result<(), ChannelError> {
        let mut out = String::new();
        for line in reply.text.lines() {
            out.push_str("bot> ");
            out.push_str(line);
            out.push('\n');
        }
        for (i, c) in reply.choices.iter().enumerate() {
            out.push_str(&format!("     [{}] {}\n", i + 1, c.label));
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| ChannelError::Transient(e.to_string()))
    }
}

pub async fn run(config: Config, args: ChatArgs) -> anyhow::Result<ExitCode> {
    let pack = config.load_pack()?;
    let store = config.open_store().await?;
    let engine = Engine::new(store, pack, config.engine());
    let terminal = Arc::new(Terminal::new(&args.chat));
    let channel = terminal.name().to_string();
    engine.add_channel(terminal);
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // One task reads and delivers, so replies print in order: after each message, and on a tick
    // for what agents send from another process.
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tick.tick() => {
                engine.flush().await?;
                continue;
            }
        };
        let Some(line) = line else { break };
        let inbound = Inbound {
            channel: channel.clone(),
            conversation: args.chat.clone(),
            customer_id: args.chat.clone(),
            customer_name: args.name.clone(),
            content: Content::Text(line),
            message_id: format!("{}-{}-{}", now_ms(), std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)),
            at: now_ms(),
            lang_hint: None,
            deleted: None,
        };
        match engine.handle(inbound).await {
            Ok(_) => engine.flush().await?,
            Err(e) => eprintln!("error: {e}"),
        }
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(args.linger);
    loop {
        engine.flush().await?;
        if tokio::time::Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(ExitCode::SUCCESS)
}
