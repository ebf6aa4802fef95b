//! The outbox sender under concurrency: destinations are sent to at once while each keeps its
//! order; one failing or slow chat holds up no other; a flood takes its turn; a platform-wide limit
//! pauses its whole channel only; leases pass to another sender when one dies and come back at once
//! to a restarted one; shutdown is bounded and leaves the rest queued; long texts are split once,
//! before they are queued.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::ChannelError;
use switchboard_core::Lang;
use switchboard_core::channel::{Channel, Recorder, TextLimit, chars_len};
use switchboard_core::engine::{AgentCommand, DeliveryConfig, Engine, EngineConfig, RetryPolicy};
use switchboard_core::pack::Pack;
use switchboard_core::store::{Commit, MemoryStore, NewConversation, SqlStore, Store};
use switchboard_core::types::{Actor, Choice, Content, ConversationKey, Inbound, Outgoing, Reply};
use tokio::sync::{Notify, oneshot};

fn pack() -> Pack {
    Pack::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../intents/okpay")).unwrap()
}

fn config(concurrency: usize, instance: &str) -> EngineConfig {
    EngineConfig {
        agents: vec!["desk:alice".into()],
        retry: RetryPolicy { base: Duration::from_millis(20), max: Duration::from_millis(200), max_attempts: 1_000 },
        delivery: DeliveryConfig {
            concurrency,
            instance: instance.into(),
            lease: Duration::from_secs(60),
            shutdown_grace: Duration::from_millis(200),
        },
        ..EngineConfig::default()
    }
}

/// A channel that records what it sends, in the order sent, and can be told to hold a chat's
/// sends until released, to fail a chat's next sends, or to take a while for every send.
#[derive(Debug, Default)]
struct Probe {
    name: String,
    sent: Mutex<Vec<(String, String)>>,
    held: Mutex<HashMap<String, Arc<Notify>>>,
    failures: Mutex<HashMap<String, VecDeque<ChannelError>>>,
    delay: Duration,
    sent_one: Notify,
}

impl Probe {
    fn new(name: &str, delay: Duration) -> Arc<Probe> {
        Arc::new(Probe { name: name.into(), delay, ..Probe::default() })
    }

    fn hold(&self, chat: &str) -> Arc<Notify> {
        self.held.lock().unwrap().entry(chat.into()).or_insert_with(|| Arc::new(Notify::new())).clone()
    }

    /// Lets a held chat's sends go, now and from now on.
    fn release(&self, chat: &str) {
        if let Some(hold) = self.held.lock().unwrap().remove(chat) {
            hold.notify_waiters();
        }
    }

    fn fail(&self, chat: &str, errors: Vec<ChannelError>) {
        self.failures.lock().unwrap().entry(chat.into()).or_default().extend(errors);
    }

    fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().unwrap().clone()
    }

    fn texts_to(&self, chat: &str) -> Vec<String> {
        self.sent().into_iter().filter(|(c, _)| c == chat).map(|(_, t)| t).collect()
    }

    /// Waits (up to a minute, then fails the test) until `done` holds of what was sent.
    async fn until(&self, what: &str, done: impl Fn(&[(String, String)]) -> bool) {
        let wait = async {
            loop {
                let notified = self.sent_one.notified();
                if done(&self.sent()) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), wait).await.is_err() {
            panic!("never happened: {what}; sent: {:?}", self.sent());
        }
    }
}

#[async_trait]
impl Channel for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, chat: &str, reply: &Reply) -> Result<(), ChannelError> {
        let hold = self.held.lock().unwrap().get(chat).cloned();
        if let Some(hold) = hold {
            hold.notified().await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let failure = self.failures.lock().unwrap().get_mut(chat).and_then(VecDeque::pop_front);
        if let Some(e) = failure {
            return Err(e);
        }
        self.sent.lock().unwrap().push((chat.to_string(), reply.text.clone()));
        self.sent_one.notify_waiters();
        Ok(())
    }
}

/// Queues `texts` for `chat` on `channel` in one commit, as the engine would.
async fn queue(store: &dyn Store, channel: &str, chat: &str, texts: &[String]) {
    let key = ConversationKey { channel: channel.into(), chat: chat.into() };
    let conv = store
        .open_conversation(NewConversation {
            key: key.clone(),
            customer_id: chat.into(),
            customer_name: chat.into(),
            lang: Lang::En,
            at: 1,
        })
        .await
        .unwrap();
    let mut commit = Commit::new(conv, switchboard_core::types::now_ms());
    for t in texts {
        commit.outbox.push(Outgoing::Customer { key: key.clone(), reply: Reply::text(t.clone()), ticket_id: None });
    }
    store.commit(commit).await.unwrap();
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(engine: &Arc<Engine>) -> Running {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(Arc::clone(engine).run_outbox(Duration::from_millis(20), async move {
            let _ = rx.await;
        }));
        Running { stop: Some(tx), task }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

#[tokio::test]
async fn a_chat_whose_send_hangs_holds_up_no_other_chat() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let probe = Probe::new("p", Duration::ZERO);
    let _stuck = probe.hold("stuck");
    queue(&*store, "p", "stuck", &numbered("stuck", 3)).await;
    for c in 0..20 {
        queue(&*store, "p", &format!("c{c}"), &numbered(&format!("c{c}"), 3)).await;
    }
    let engine = Engine::new(store.clone(), pack(), config(4, "a"));
    engine.add_channel(probe.clone());
    let run = Running::start(&engine);
    probe.until("every other chat is answered", |s| s.len() == 60).await;
    assert!(probe.texts_to("stuck").is_empty());
    for c in 0..20 {
        assert_eq!(probe.texts_to(&format!("c{c}")), numbered(&format!("c{c}"), 3), "in order");
    }
    probe.release("stuck");
    probe.until("the stuck chat catches up", |s| s.len() == 63).await;
    assert_eq!(probe.texts_to("stuck"), numbered("stuck", 3));
    run.stop().await;
    assert!(store.outbox_pending().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_chat_backs_off_alone_and_keeps_its_order() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let probe = Probe::new("p", Duration::from_millis(2));
    probe.fail("bad", (0..4).map(|_| ChannelError::Transient("503".into())).collect());
    probe.fail("slow", vec![ChannelError::RateLimited(Duration::from_millis(300))]);
    queue(&*store, "p", "bad", &numbered("bad", 5)).await;
    queue(&*store, "p", "slow", &numbered("slow", 5)).await;
    for c in 0..10 {
        queue(&*store, "p", &format!("c{c}"), &numbered(&format!("c{c}"), 5)).await;
    }
    let engine = Engine::new(store.clone(), pack(), config(3, "a"));
    engine.add_channel(probe.clone());
    let run = Running::start(&engine);
    probe.until("all 60 replies", |s| s.len() == 60).await;
    run.stop().await;
    for chat in ["bad", "slow"].into_iter().map(String::from).chain((0..10).map(|c| format!("c{c}"))) {
        assert_eq!(probe.texts_to(&chat), numbered(&chat, 5), "{chat}: each once, in order");
    }
    // The healthy chats did not wait for the failing ones' retries.
    let sent = probe.sent();
    let last_healthy = sent.iter().rposition(|(c, _)| c.starts_with('c')).unwrap();
    let first_bad = sent.iter().position(|(c, _)| c == "bad").unwrap();
    assert!(last_healthy < first_bad, "a chat retrying after 503s went last: {sent:?}");
}

#[tokio::test]
async fn one_chats_flood_takes_turns_with_the_others() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let probe = Probe::new("p", Duration::ZERO);
    queue(&*store, "p", "flood", &numbered("flood", 200)).await;
    for c in 0..10 {
        queue(&*store, "p", &format!("c{c}"), &[format!("c{c}")]).await;
    }
    // One destination at a time: only turn-taking lets the others through before the flood ends.
    let engine = Engine::new(store.clone(), pack(), config(1, "a"));
    engine.add_channel(probe.clone());
    let run = Running::start(&engine);
    probe.until("everything", |s| s.len() == 210).await;
    run.stop().await;
    assert_eq!(probe.texts_to("flood"), numbered("flood", 200), "the flood keeps its order");
    let sent = probe.sent();
    let last_other = sent.iter().rposition(|(c, _)| c != "flood").unwrap();
    assert!(last_other < 40, "the other chats were answered among the flood's first messages, not after it: at {last_other}");
}

#[tokio::test]
async fn a_platform_wide_limit_pauses_its_channel_only() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let limited = Probe::new("limited", Duration::ZERO);
    let other = Probe::new("other", Duration::ZERO);
    limited.fail("a0", vec![ChannelError::Paused(Duration::from_secs(2))]);
    // The limited channel's replies are older: without the pause they would go first.
    for c in 0..5 {
        queue(&*store, "limited", &format!("a{c}"), &[format!("a{c}")]).await;
    }
    for c in 0..5 {
        queue(&*store, "other", &format!("b{c}"), &[format!("b{c}")]).await;
    }
    let engine = Engine::new(store.clone(), pack(), config(1, "a"));
    engine.add_channel(limited.clone());
    engine.add_channel(other.clone());
    let run = Running::start(&engine);
    other.until("the other channel is served during the pause", |s| s.len() == 5).await;
    assert!(limited.sent().is_empty(), "every chat of the paused channel waits: {:?}", limited.sent());
    limited.until("the paused channel resumes", |s| s.len() == 5).await;
    run.stop().await;
    let pending = store.outbox_pending().await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test]
async fn a_dead_senders_destinations_are_taken_over_and_a_restart_takes_its_own_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    queue(&*store, "p", "x", &numbered("x", 2)).await;
    queue(&*store, "p", "y", &numbered("y", 2)).await;

    // Sender "a" takes both chats and hangs in its sends; then it dies without a word.
    let hung = Probe::new("p", Duration::ZERO);
    let _hold_x = hung.hold("x");
    let _hold_y = hung.hold("y");
    let mut short = config(4, "a");
    short.delivery.lease = Duration::from_secs(1);
    let a = Engine::new(store.clone(), pack(), short.clone());
    a.add_channel(hung.clone());
    let run_a = Running::start(&a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    run_a.task.abort();
    let _ = run_a.task.await;

    // Another instance takes them over once the lease runs out.
    let probe_b = Probe::new("p", Duration::ZERO);
    let b = Engine::new(
        store.clone(),
        pack(),
        EngineConfig { delivery: DeliveryConfig { instance: "b".into(), ..short.delivery.clone() }, ..short.clone() },
    );
    b.add_channel(probe_b.clone());
    let run_b = Running::start(&b);
    probe_b.until("b delivers what a left", |s| s.len() == 4).await;
    run_b.stop().await;
    assert_eq!(probe_b.texts_to("x"), numbered("x", 2));
    assert_eq!(probe_b.texts_to("y"), numbered("y", 2));
    assert!(hung.sent().is_empty());

    // A process that restarts under its own name takes back what it left at once, without waiting
    // out a long lease.
    queue(&*store, "p", "z", &numbered("z", 2)).await;
    let mut long = config(4, "c");
    long.delivery.lease = Duration::from_secs(3600);
    let c = Engine::new(store.clone(), pack(), long.clone());
    let hung_c = Probe::new("p", Duration::ZERO);
    let _hold_z = hung_c.hold("z");
    c.add_channel(hung_c.clone());
    let run_c = Running::start(&c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    run_c.task.abort();
    let _ = run_c.task.await;
    let c2 = Engine::new(store.clone(), pack(), long);
    let probe_c2 = Probe::new("p", Duration::ZERO);
    c2.add_channel(probe_c2.clone());
    let run_c2 = Running::start(&c2);
    probe_c2.until("the restarted sender takes z back", |s| s.len() == 2).await;
    run_c2.stop().await;
    assert_eq!(probe_c2.texts_to("z"), numbered("z", 2));
}

#[tokio::test]
async fn shutdown_is_bounded_and_leaves_the_rest_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let probe = Probe::new("p", Duration::ZERO);
    let _never = probe.hold("slow");
    queue(&*store, "p", "slow", &numbered("slow", 3)).await;
    let mut cfg = config(4, "a");
    cfg.delivery.lease = Duration::from_secs(3600);
    let engine = Engine::new(store.clone(), pack(), cfg.clone());
    engine.add_channel(probe.clone());
    let run = Running::start(&engine);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The send never finishes: shutdown still returns, after the grace period.
    tokio::time::timeout(Duration::from_secs(10), run.stop()).await.expect("shutdown waits only its grace period");
    assert_eq!(store.outbox_pending().await.unwrap().len(), 3, "nothing is lost");
    // Its leases are released: another sender (whatever its name) takes the chat at once.
    let other = Engine::new(
        store.clone(),
        pack(),
        EngineConfig { delivery: DeliveryConfig { instance: "other".into(), ..cfg.delivery.clone() }, ..cfg },
    );
    let probe2 = Probe::new("p", Duration::ZERO);
    other.add_channel(probe2.clone());
    other.flush().await.unwrap();
    assert_eq!(probe2.texts_to("slow"), numbered("slow", 3));
}

#[tokio::test]
async fn long_replies_and_agent_messages_are_split_before_they_are_queued() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut cfg = config(4, "a");
    cfg.desks = vec!["staff".into()];
    cfg.text_limits.insert("fake".into(), TextLimit { max: 60, measure: chars_len });
    cfg.text_limits.insert("desk:staff".into(), TextLimit { max: 100, measure: chars_len });
    let engine = Engine::new(store.clone(), pack(), cfg);
    let rec = Arc::new(Recorder::new("fake"));
    let desk = Arc::new(Recorder::new("staff"));
    engine.add_channel(rec.clone());
    engine.add_desk(desk.clone());
    let inbound = |id: &str, text: &str| Inbound {
        channel: "fake".into(),
        conversation: "c".into(),
        customer_id: "c".into(),
        customer_name: "C".into(),
        message_id: id.into(),
        content: Content::Text(text.into()),
        at: 0,
        lang_hint: None,
        deleted: None,
    };
    let handled = engine.handle(inbound("1", "my account is locked")).await.unwrap();
    engine.flush().await.unwrap();
    let sent = rec.sent_to("c");
    let whole: Vec<&Reply> = handled.replies.iter().collect();
    assert!(whole.iter().any(|r| r.text.chars().count() > 60), "the answer is longer than the limit: {whole:?}");
    assert!(sent.len() > whole.len(), "split into parts: {sent:?}");
    assert!(sent.iter().all(|r| r.text.chars().count() <= 60));
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(
        squash(&sent.iter().map(|r| r.text.as_str()).collect::<String>()),
        squash(&whole.iter().map(|r| r.text.as_str()).collect::<String>())
    );
    // Choices ride on the last part of their reply only.
    let with_choices: Vec<&Reply> = sent.iter().filter(|r| !r.choices.is_empty()).collect();
    let want: Vec<&Vec<Choice>> = whole.iter().filter(|r| !r.choices.is_empty()).map(|r| &r.choices).collect();
    assert_eq!(with_choices.iter().map(|r| &r.choices).collect::<Vec<_>>(), want);

    // An agent's message longer than one platform message is accepted and split, for the customer
    // and for the desk alike.
    let ticket = engine.handle(inbound("2", "转人工")).await.unwrap().ticket_id.unwrap();
    engine.flush().await.unwrap();
    rec.take();
    desk.take();
    let long: String = (0..40).map(|i| format!("step {i} of the fix. ")).collect();
    engine.agent(&Actor::new("desk:alice", "Alice"), AgentCommand::Reply(ticket, long.clone())).await.unwrap();
    engine.flush().await.unwrap();
    let parts: Vec<String> =
        rec.sent_to("c").into_iter().map(|r| r.text).filter(|t| t.starts_with("step") || t.contains("of the fix")).collect();
    assert!(parts.len() >= long.chars().count() / 60, "{parts:?}");
    assert!(parts.iter().all(|p| p.chars().count() <= 60));
    assert_eq!(squash(&parts.concat()), squash(&long));
    let notes: Vec<String> = desk
        .notices()
        .into_iter()
        .filter_map(|(_, n)| match n {
            switchboard_core::types::DeskNotice::AgentReply { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert!(notes.len() >= long.chars().count() / 100 && notes.iter().all(|t| t.chars().count() <= 100), "{notes:?}");
    assert_eq!(squash(&notes.concat()), squash(&long));
}

#[tokio::test]
async fn at_shutdown_a_busy_chat_finishes_its_send_in_flight_and_takes_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    // Each send takes a while; the chat has far more than one turn's worth queued.
    let probe = Probe::new("p", Duration::from_millis(100));
    queue(&*store, "p", "busy", &numbered("busy", 50)).await;
    let mut cfg = config(4, "a");
    cfg.delivery.shutdown_grace = Duration::from_secs(5);
    let engine = Engine::new(store.clone(), pack(), cfg);
    engine.add_channel(probe.clone());
    let run = Running::start(&engine);
    probe.until("a first reply", |s| !s.is_empty()).await;
    let before = probe.sent().len();
    run.stop().await;
    let after = probe.sent().len();
    // Only the send in flight when shutdown began went out (it was not cut off either).
    assert!(after <= before + 2, "{before} sent before shutdown, {after} after");
    let pending = store.outbox_pending().await.unwrap().len();
    assert_eq!(pending + after, 50, "the rest stays queued, nothing lost or doubled");
}
