//! The end-to-end harness: the fake Discord on 127.0.0.1, the real engine with the OKPay pack,
//! its outbox, and the real serenity client of the adapter, wired as `switchboard run` wires them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::engine::{DeliveryConfig, Engine, EngineConfig, RetryPolicy};
use switchboard_core::pack::Pack;
use switchboard_core::store::{MemoryStore, NewConversation, SqlStore, Store};
use switchboard_core::types::{ConversationKey, Ticket, TicketStatus, TranscriptEntry};
use switchboard_discord::bot::Progress;
use switchboard_discord::{Discord, DiscordConfig};
use switchboard_testkit::discord::{self as fake, FakeDiscord, FakeThread, FakeUser, Posted};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The staff channel whose threads hold tickets.
pub const STAFF_CHANNEL: u64 = 800_000_000_000_000_001;
/// A support channel where customers mention the bot.
pub const SUPPORT_CHANNEL: u64 = 800_000_000_000_000_002;
/// The staff role.
pub const STAFF_ROLE: u64 = 800_000_000_000_000_003;
/// How long any condition may take before a test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A customer.
pub fn customer(id: u64, name: &str) -> FakeUser {
    FakeUser::new(id, name)
}

/// A member with the staff role.
pub fn agent(id: u64, name: &str) -> FakeUser {
    FakeUser::new(id, name).with_role(STAFF_ROLE)
}

/// Everything one test runs.
pub struct Harness {
    pub fake: FakeDiscord,
    pub engine: Arc<Engine>,
    /// What the adapter received and handled.
    pub progress: Arc<Progress>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

fn stopped(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

pub fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intents/okpay")
}

/// The engine settings of the tests: the staff role is the allowlist, Discord the desk (with the
/// adapter's text limits, as `switchboard run` sets them), and retries are quick.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        agents: vec![format!("discord-role:{STAFF_ROLE}")],
        desks: vec!["discord".into()],
        retry: RetryPolicy { base: Duration::from_millis(20), max: Duration::from_millis(200), max_attempts: 20 },
        delivery: DeliveryConfig { lease: Duration::from_secs(5), ..DeliveryConfig::default() },
        text_limits: [
            ("discord".to_string(), switchboard_discord::TEXT_LIMIT),
            ("desk:discord".to_string(), switchboard_discord::DESK_TEXT_LIMIT),
        ]
        .into_iter()
        .collect(),
        ..EngineConfig::default()
    }
}

impl Harness {
    /// Starts everything over an in-memory store.
    pub async fn start() -> Harness {
        Harness::start_with(Arc::new(MemoryStore::new()), None).await
    }

    /// Starts everything over a SQLite store in `dir` (kept between two harnesses to test a
    /// restart), with an existing fake if given.
    pub async fn start_sqlite(dir: &Path, fake: Option<FakeDiscord>) -> Harness {
        let store = SqlStore::open_sqlite(dir).await.expect("open the SQLite store");
        Harness::start_with(Arc::new(store), fake).await
    }

    /// A fake Discord with the staff and support channels that outlives harnesses (to test a
    /// restart); it stops when the returned sender sends `true`.
    pub async fn lasting_fake() -> (FakeDiscord, watch::Sender<bool>) {
        let (stop, stop_rx) = watch::channel(false);
        let f = FakeDiscord::bind(stopped(&stop_rx)).await.expect("bind the fake Discord");
        f.add_text_channel(STAFF_CHANNEL, "staff");
        f.add_text_channel(SUPPORT_CHANNEL, "support");
        (f, stop)
    }

    /// Starts everything over `store`, with an existing fake if given.
    pub async fn start_with(store: Arc<dyn Store>, fake: Option<FakeDiscord>) -> Harness {
        Harness::start_full(store, fake, false).await
    }

    /// Starts everything over an in-memory store as `switchboard run` does without
    /// `discord.api_url`: serenity's own rate limiter paces every REST call and sends it to
    /// `https://discord.com`, which the client resolves to a TLS front of the fake ([`tls`]).
    pub async fn start_serenity_limited() -> Harness {
        Harness::start_full(Arc::new(MemoryStore::new()), None, true).await
    }

    async fn start_full(store: Arc<dyn Store>, fake: Option<FakeDiscord>, serenity_limiter: bool) -> Harness {
        init_logs();
        let (stop, stop_rx) = watch::channel(false);
        let fake = match fake {
            // Owned by the test, which stops it.
            Some(f) => f,
            None => {
                let f = FakeDiscord::bind(stopped(&stop_rx)).await.expect("bind the fake Discord");
                f.add_text_channel(STAFF_CHANNEL, "staff");
                f.add_text_channel(SUPPORT_CHANNEL, "support");
                f
            }
        };
        let pack = Pack::load(&pack_dir()).expect("load the OKPay pack");
        let engine = Engine::new(store, pack, engine_config());
        let mut tasks = vec![tokio::spawn(engine.clone().run_outbox(Duration::from_millis(50), stopped(&stop_rx)))];
        let mut config = DiscordConfig {
            staff_channel_id: Some(STAFF_CHANNEL),
            staff_role_id: Some(STAFF_ROLE),
            support_channel_ids: vec![SUPPORT_CHANNEL],
            staff_guild_id: None,
            api_url: Some(fake.url()),
        };
        let discord = if serenity_limiter {
            config.api_url = None;
            let front = tls::front(&fake, stopped(&stop_rx)).await;
            Discord::connect_with(engine.clone(), tls::http(front), config).await.expect("connect the adapter")
        } else {
            Discord::connect(engine.clone(), fake::TOKEN, config).await.expect("connect the adapter")
        };
        let progress = discord.progress();
        let identifies = fake.gateway_stats().identifies;
        tasks.extend(discord.spawn(stopped(&stop_rx)).expect("spawn the adapter"));
        let h = Harness { fake, engine, progress, stop, tasks };
        let f = h.fake.clone();
        fake::eventually("the gateway session and the slash commands", TIMEOUT, || {
            let g = f.gateway_stats();
            (g.live && g.identifies > identifies && f.commands().len() == switchboard_discord::bot::commands().len()).then_some(())
        })
        .await;
        h
    }

    /// Stops the adapter, the outbox and the fake (unless it was given to the harness).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    /// The DM channel of `user`.
    pub fn dm_channel(&self, user: &FakeUser) -> u64 {
        self.fake.dm_channel(user)
    }

    /// What the bot posted in `channel`, as read.
    pub fn texts(&self, channel: u64) -> Vec<String> {
        self.fake.posts(channel).iter().map(Posted::text).collect()
    }

    /// Waits until the bot posted at least `n` messages in `channel`, and returns them.
    pub async fn wait_posts(&self, what: &str, channel: u64, n: usize) -> Vec<Posted> {
        let f = self.fake.clone();
        fake::eventually(what, TIMEOUT, || {
            let p = f.posts(channel);
            (p.len() >= n).then_some(p)
        })
        .await
    }

    /// Waits until a post in `channel` contains `needle` (as read), and returns it.
    pub async fn wait_text(&self, channel: u64, needle: &str) -> Posted {
        let f = self.fake.clone();
        fake::eventually(&format!("a post containing {needle:?} in {channel}"), TIMEOUT, || {
            f.posts(channel).into_iter().find(|p| p.text().contains(needle))
        })
        .await
    }

    /// Waits for the bot's answer to an interaction.
    pub async fn wait_response(&self, interaction: u64) -> serde_json::Value {
        let f = self.fake.clone();
        fake::eventually("the interaction response", TIMEOUT, || f.response(interaction)).await
    }

    /// The customer asks for a person in a DM; waits for the ticket's thread with its summary.
    pub async fn escalate(&self, user: &FakeUser) -> (Ticket, FakeThread) {
        let before = self.fake.threads().len();
        self.fake.dm(user, "转人工");
        let f = self.fake.clone();
        let thread = fake::eventually("the ticket's thread", TIMEOUT, || f.threads().get(before).cloned()).await;
        let posts = self.wait_posts("the summary embed", thread.id, 1).await;
        assert!(!posts[0].embeds.is_empty(), "the thread starts with the summary embed");
        let ticket = self.open_tickets().await.into_iter().find(|t| t.customer_id == user.id.to_string()).expect("the ticket");
        (ticket, thread)
    }

    /// Queued and assigned tickets.
    pub async fn open_tickets(&self) -> Vec<Ticket> {
        self.engine.store().tickets(&[TicketStatus::Queued, TicketStatus::Assigned]).await.expect("read tickets")
    }

    /// A ticket as stored now.
    pub async fn ticket(&self, id: i64) -> Ticket {
        self.engine.store().ticket(id).await.expect("read the ticket").expect("the ticket exists")
    }

    /// The transcript of the Discord conversation `chat`.
    pub async fn transcript_of(&self, chat: &str) -> Vec<TranscriptEntry> {
        let new = NewConversation {
            key: ConversationKey { channel: "discord".into(), chat: chat.into() },
            customer_id: String::new(),
            customer_name: String::new(),
            lang: switchboard_core::Lang::En,
            at: 0,
        };
        let conv = self.engine.store().open_conversation(new).await.expect("the conversation");
        self.engine.store().transcript(conv.id, 100).await.expect("the transcript")
    }

    /// Waits until the adapter has received the event `id` (a message or interaction id) from the
    /// gateway, at least `times` times.
    pub async fn wait_received(&self, id: u64, times: u32) {
        let p = self.progress.clone();
        fake::eventually(&format!("event {id} received {times} time(s)"), TIMEOUT, || (p.received(id) >= times).then_some(())).await;
    }

    /// Waits until the adapter has handled the event `id` at least `times` times.
    pub async fn wait_handled(&self, id: u64, times: u32) {
        let p = self.progress.clone();
        fake::eventually(&format!("event {id} handled {times} time(s)"), TIMEOUT, || (p.handled(id) >= times).then_some(())).await;
    }

    /// The events of this gateway session the adapter has not handled yet (as many times as the
    /// fake sent them).
    fn unhandled(&self) -> Vec<u64> {
        let mut sent = std::collections::BTreeMap::<u64, u32>::new();
        for id in self.fake.session_events() {
            *sent.entry(id).or_default() += 1;
        }
        sent.into_iter().filter(|&(id, n)| self.progress.handled(id) < n).map(|(id, _)| id).collect()
    }

    /// Waits until everything the bot was sent has had its effect: the adapter handled every event
    /// the fake sent it in this session (each as often as it was sent), its background posts
    /// (slash command answers) are done, and the outbox has nothing left to deliver. Only then may
    /// a test assert that nothing more was sent.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let sent = self.fake.session_events().len();
            let unhandled = self.unhandled();
            let background = self.progress.background();
            let pending = self.engine.store().outbox_pending().await.expect("read the outbox");
            // Nothing was sent to the bot meanwhile, and nothing it did is still going on.
            if unhandled.is_empty() && background == 0 && pending.is_empty() && self.fake.session_events().len() == sent {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not settled: events not handled {unhandled:?}, background posts {background}, outbox {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A TLS front for the fake as `https://discord.com`: serenity's rate limiter ignores the proxy
/// setting and always builds `https://discord.com/api/v10/…` URLs, so the client is given a
/// `reqwest` client that resolves discord.com to this front, and trusts the test CA that signed
/// its certificate (`tests/tls/`: a CA made for these tests, and a discord.com certificate and
/// key it signed; both valid until 2126). The front decrypts and passes the bytes to the fake.
pub mod tls {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use switchboard_discord::serenity::http::HttpBuilder;
    use switchboard_testkit::discord::{self as fake, FakeDiscord};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::{self, pki_types};

    const CA: &[u8] = include_bytes!("../tls/ca.der");
    const CERT: &[u8] = include_bytes!("../tls/discord.com.der");
    const KEY: &[u8] = include_bytes!("../tls/discord.com.key.der");

    /// Serves the fake over TLS as discord.com until `stop`; returns the front's address.
    pub async fn front(fake: &FakeDiscord, stop: impl std::future::Future<Output = ()> + Send + 'static) -> SocketAddr {
        let upstream: SocketAddr = fake.url().trim_start_matches("http://").parse().expect("the fake's address");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![pki_types::CertificateDer::from(CERT.to_vec())],
                pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(KEY.to_vec())),
            )
            .expect("the test certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the TLS front");
        let addr = listener.local_addr().expect("the front's address");
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                let tcp = tokio::select! {
                    () = &mut stop => return,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let (Ok(mut tls), Ok(mut plain)) = (acceptor.accept(tcp).await, TcpStream::connect(upstream).await) else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        addr
    }

    /// The adapter's REST client with serenity's rate limiter on, sending to discord.com, which
    /// resolves to `front`.
    pub fn http(front: SocketAddr) -> HttpBuilder {
        let ca = reqwest::Certificate::from_der(CA).expect("the test CA");
        let client = reqwest::Client::builder()
            .resolve("discord.com", front)
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .expect("the HTTP client");
        HttpBuilder::new(fake::TOKEN).client(client)
    }
}
