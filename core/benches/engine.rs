//! Criterion benchmark of the engine alone, no platform: customer messages handled per second
//! through `Engine::handle` (clean, match, plan, one atomic commit with transcript and outbox), 64
//! customers writing at once, on each store (memory, SQLite in WAL mode, PostgreSQL when
//! `SWITCHBOARD_TEST_PG` or the local test server answers). Delivery is not included: see
//! `bench/e2e` for the whole path through the fake platforms.
//!
//! Run with `cargo bench -p switchboard-core --bench engine`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_core::engine::{Brain, Engine, EngineConfig};
use switchboard_core::pack::Pack;
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{Content, Inbound};
use switchboard_testkit::store_suite;

/// Customers writing at once.
const CONCURRENT: u64 = 64;

const QUESTIONS: &[&str] = &[
    "my account is locked",
    "我的账号被锁了",
    "my transfer is stuck",
    "转账一直在处理中",
    "the money never arrived",
    "how do I close my account",
    "someone stole my account",
    "i didnt get the reset email",
];

fn brain() -> Arc<Brain> {
    let pack = Pack::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../intents/okpay")).expect("the OKPay pack loads");
    Arc::new(Brain::new(pack))
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: Arc<dyn Store>, brain: &Arc<Brain>) {
    let engine = Engine::with_brain(store, brain.clone(), EngineConfig::default());
    let next = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("engine_handle");
    group.throughput(Throughput::Elements(CONCURRENT));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut tasks = Vec::with_capacity(CONCURRENT as usize);
                    for _ in 0..CONCURRENT {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let engine = engine.clone();
                        tasks.push(tokio::spawn(async move {
                            let inbound = Inbound {
                                channel: "bench".into(),
                                // A few messages per customer, as in a conversation.
                                conversation: format!("c{}", n / 4),
                                customer_id: format!("c{}", n / 4),
                                customer_name: "Customer".into(),
                                content: Content::Text(QUESTIONS[(n % QUESTIONS.len() as u64) as usize].into()),
                                message_id: format!("m{n}"),
                                at: 0,
                                lang_hint: None,
                                deleted: None,
                            };
                            engine.handle(inbound).await.expect("handled")
                        }));
                    }
                    for t in tasks {
                        t.await.expect("no panic");
                    }
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let brain = brain();
    bench_store(c, &rt, "memory", Arc::new(MemoryStore::new()), &brain);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sqlite = rt.block_on(SqlStore::open_sqlite(dir.path())).expect("SQLite opens");
    bench_store(c, &rt, "sqlite", Arc::new(sqlite), &brain);
    let pg = rt.block_on(async {
        let url = tokio::time::timeout(Duration::from_secs(5), async {
            let name = format!("switchboard_bench_{}", std::process::id());
            SqlStore::create_database(&store_suite::postgres_base_url(), &name).await
        })
        .await;
        match url {
            Ok(Ok(url)) => SqlStore::connect(&url).await.ok(),
            _ => None,
        }
    });
    match pg {
        Some(pg) => bench_store(c, &rt, "postgres", Arc::new(pg), &brain),
        None => eprintln!("skipping PostgreSQL: no server at {} or {}", store_suite::POSTGRES_ENV, store_suite::DEFAULT_POSTGRES),
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
