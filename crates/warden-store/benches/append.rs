//! Audit append throughput on SQLite with durable settings (WAL; every event answered only after
//! an `fdatasync` of the WAL that began after its commit; a file in a temp dir), with 1, 16 and
//! 256 concurrent appenders sharing one store (group commit).
//!
//! Run with `cargo bench -p warden-store --bench append`. Prints events/s per level and the
//! writer's average batch size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_core::event::{AuditEvent, EventKind, Outcome, Verdict};
use warden_store::{StoreOptions, WardenStore, open_warden_store};

const APPENDERS: [usize; 3] = [1, 16, 256];

fn event() -> AuditEvent {
    let mut e = AuditEvent::begin(EventKind::ToolCall, "mcp", None);
    e.agent = Some("bench-bot".into());
    e.action = Some("crm.get_customer".into());
    e.bundle_hash = "ab".repeat(32);
    e.verdict = Verdict::Allow;
    e.outcome = Outcome::Ok;
    e.policies = vec!["support-read".into()];
    e.upstream_latency_us = Some(850);
    e.args_digest = Some("cd".repeat(32));
    e.result_digest = Some("ef".repeat(32));
    e
}

/// `total` appends spread over `appenders` tasks; returns the wall time.
async fn append_many(store: &Arc<dyn WardenStore>, appenders: usize, total: u64) -> Duration {
    let per_task = total.div_ceil(appenders as u64);
    let start = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    if let Err(e) = store.append(&event()).await {
                        panic!("append failed: {e}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            panic!("appender failed: {e}");
        }
    }
    start.elapsed()
}

fn bench_append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let mut group = c.benchmark_group("sqlite_durable_append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for appenders in APPENDERS {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = rt
            .block_on(open_warden_store(&url, StoreOptions::default()))
            .expect("opening the bench store");
        group.bench_function(format!("{appenders}_appenders"), |b| {
            b.iter_custom(|iters| rt.block_on(append_many(&store, appenders, iters)));
        });
        report(&rt, &store, appenders);
        rt.block_on(store.close());
    }
    group.finish();
}

/// One timed run of 20k events, printed as events/s, plus the writer's batching.
fn report(rt: &tokio::runtime::Runtime, store: &Arc<dyn WardenStore>, appenders: usize) {
    let before = store.writer_stats();
    let total = 20_000u64;
    let elapsed = rt.block_on(append_many(store, appenders, total));
    let after = store.writer_stats();
    let events = after.events - before.events;
    let commits = (after.commits - before.commits).max(1);
    let syncs = after.syncs - before.syncs;
    println!(
        "sqlite durable, {appenders:>3} appenders: {:>9.0} events/s ({events} events, {commits} commits, {:.1} events/commit, {syncs} WAL syncs)",
        events as f64 / elapsed.as_secs_f64(),
        events as f64 / commits as f64,
    );
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
