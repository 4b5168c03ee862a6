//! Figures for the tamper-evident log at scale; ignored by default (minutes, gigabytes).
//!
//! ```sh
//! cargo test --release -p warden-cli --test audit_scale -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `verify_a_million_events`: appends `WARDEN_SCALE_EVENTS` (default 1,000,000) realistic
//!   events through the store with the checkpointer running (one checkpoint a second), then
//!   times `warden audit verify` (full and `--quick`) and inclusion proofs. With
//!   `WARDEN_SCALE_KEEP=DIR` (an empty directory) the database (and its `checkpoint.pub`) is written to DIR and kept,
//!   to time `warden audit verify` over it again.
//! - `proofs_over_ten_million_leaves`: `WARDEN_SCALE_LEAVES` (default 10,000,000) small
//!   synthetic rows written with SQL, the checkpointer's catch-up over them, then proof times.
//! - `append_to_signed_checkpoint`: how long after an append returns a signed checkpoint covers
//!   it, with the server's one-second checkpoint period, under a steady trickle of appends.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use warden_audit::SigningKey;
use warden_core::event::{AuditEvent, EventKind, Finding, Outcome, Verdict};
use warden_core::model::Mode;
use warden_server::checkpointer::{Checkpointer, prove_event};
use warden_store::{StoreOptions, WardenStore, open_warden_store};

const ORIGIN: &str = "warden.scale/log";

/// The allocator the `warden` binary runs with, so the store's figures here are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tool-call event like the gateway writes (about 900 canonical bytes).
fn event(i: u64) -> AuditEvent {
    let mut e = AuditEvent::begin(EventKind::ToolCall, "mcp", None);
    e.agent = Some("billing-bot".into());
    e.user = Some("alice@example.com".into());
    e.session = Some(format!("session-{}", i % 1013));
    e.action = Some("payments.refund".into());
    e.mode = Some(Mode::Execute);
    e.bundle_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into();
    e.verdict = Verdict::Allow;
    e.policies = vec!["refunds-small".into(), "default-read".into()];
    e.outcome = Outcome::Ok;
    e.upstream_latency_us = Some(1_000 + i % 5_000);
    e.args_digest = Some(format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15));
    e.result_digest = Some(format!("{:064x}", u128::from(i) * 0xc2b2_ae3d_27d4_eb4f));
    e.findings = vec![Finding {
        kind: "dlp.email".into(),
        location: "result".into(),
        count: 1,
        action: "redacted".into(),
    }];
    e
}

fn key() -> SigningKey {
    SigningKey::from_seed(ORIGIN, [5; 32]).expect("a key")
}

/// A store at `url` with the server's checkpointer running on it (one checkpoint a second).
async fn store_with_checkpointer(url: &str) -> (Arc<dyn WardenStore>, Checkpointer) {
    let store = open_warden_store(url, StoreOptions::default())
        .await
        .expect("store");
    let checkpointer = Checkpointer::start(
        store.clone(),
        key(),
        ORIGIN.to_owned(),
        Duration::from_secs(1),
    )
    .await
    .expect("checkpointer");
    (store, checkpointer)
}

fn rate(n: u64, d: Duration) -> String {
    format!("{:.0}/s", n as f64 / d.as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes and ~2 GB of disk; run for figures"]
async fn verify_a_million_events() {
    let n = env_u64("WARDEN_SCALE_EVENTS", 1_000_000);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = match std::env::var_os("WARDEN_SCALE_KEEP") {
        Some(keep) => std::path::PathBuf::from(keep),
        None => temp.path().to_owned(),
    };
    std::fs::create_dir_all(&dir).expect("WARDEN_SCALE_KEEP dir");
    let db = dir.join("scale.db");
    let url = format!("sqlite://{}", db.display());
    let (store, checkpointer) = store_with_checkpointer(&url).await;

    let appenders = 256u64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|t| {
            let store: Arc<dyn WardenStore> = store.clone();
            tokio::spawn(async move {
                let mut i = t;
                while i < n {
                    store.append(&event(i)).await.expect("append");
                    i += appenders;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("appender");
    }
    let appended = started.elapsed();
    checkpointer.shutdown().await;
    let log = store.audit_log().expect("audit log");
    let checkpoints = log.checkpoints().await.expect("checkpoints").len();
    eprintln!(
        "appended {n} events in {appended:.1?} ({}) with 256 appenders and the checkpointer \
         running; {checkpoints} checkpoints",
        rate(n, appended)
    );

    let ids: Vec<String> = {
        let stored = store.events_range(0, 2).await.expect("events");
        let last = store.events_range(n - 1, n).await.expect("events");
        stored.into_iter().chain(last).map(|s| s.event.id).collect()
    };
    let mut took = Vec::new();
    for id in &ids {
        let at = Instant::now();
        prove_event(log, id).await.expect("proof");
        took.push(at.elapsed());
    }
    eprintln!("inclusion proof through the store at size {n}: {took:?}");
    store.close().await;

    let key_file = dir.join("checkpoint.pub");
    std::fs::write(&key_file, key().verifier().to_string()).expect("pub");
    for quick in [false, true] {
        let mut cmd = Command::new(common::WARDEN);
        cmd.args(["audit", "verify", "--db", &url, "--key"])
            .arg(&key_file);
        if quick {
            cmd.arg("--quick");
        }
        let at = Instant::now();
        let out = cmd.output().expect("run verify");
        let elapsed = at.elapsed();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "warden audit verify{} over {n} events: {elapsed:.2?} ({})",
            if quick { " --quick" } else { "" },
            rate(n, elapsed)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes and ~4 GB of disk; run for figures"]
async fn proofs_over_ten_million_leaves() {
    let n = env_u64("WARDEN_SCALE_LEAVES", 10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leaves.db").display());
    // Migrate, then fill `events` with small rows behind the store's back.
    let store = open_warden_store(&url, StoreOptions::default())
        .await
        .expect("store");
    store.close().await;
    let started = Instant::now();
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("raw");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PRAGMA synchronous = OFF;
         BEGIN;
         WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s WHERE x + 1 < {n})
         INSERT INTO events (seq, id, correlation_id, kind, started_at, finished_at, verdict,
                             outcome, body, canonical, leaf_hash)
         SELECT x, 'e' || x, 'c', 'tool_call', '2025-01-01T00:00:00.000000Z',
                '2025-01-01T00:00:00.000000Z', 'allow', 'ok', '{{}}', x'00', randomblob(32)
         FROM s;
         COMMIT;"
    )))
    .execute(&mut c)
    .await
    .expect("fill");
    let _ = c.close().await;
    eprintln!("wrote {n} synthetic rows in {:.1?}", started.elapsed());

    let store = open_warden_store(&url, StoreOptions::default())
        .await
        .expect("store");
    let at = Instant::now();
    let checkpointer = Checkpointer::start(
        store.clone(),
        key(),
        ORIGIN.to_owned(),
        Duration::from_secs(3600),
    )
    .await
    .expect("checkpointer");
    let signed = checkpointer.checkpoint_now().await.expect("sign");
    assert_eq!(signed, Some(n));
    eprintln!(
        "checkpointer caught up with {n} leaves (read, hash, store subtrees, sign) in {:.1?}",
        at.elapsed()
    );
    checkpointer.shutdown().await;
    let at = Instant::now();
    let resumed = Checkpointer::start(
        store.clone(),
        key(),
        ORIGIN.to_owned(),
        Duration::from_secs(3600),
    )
    .await
    .expect("resume");
    eprintln!("resuming at size {n} took {:.1?}", at.elapsed());
    resumed.shutdown().await;

    let log = store.audit_log().expect("audit log");
    let mut took = Vec::new();
    for k in 0..200u64 {
        let seq = (k * 7_919_993) % n;
        let at = Instant::now();
        let proof = prove_event(log, &format!("e{seq}")).await.expect("proof");
        took.push(at.elapsed());
        assert_eq!(proof.index, seq);
    }
    took.sort();
    eprintln!(
        "inclusion proof through the store at size {n} (200 events): median {:.2?}, p99 {:.2?}, \
         max {:.2?}",
        took[100], took[197], took[199]
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "half a minute; run for figures"]
async fn append_to_signed_checkpoint() {
    let rounds = env_u64("WARDEN_SCALE_ROUNDS", 30);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("latency.db").display());
    let (store, checkpointer) = store_with_checkpointer(&url).await;
    let log = store.audit_log().expect("audit log");
    let mut waits = Vec::new();
    for i in 0..rounds {
        // Appends land at every phase of the checkpoint period.
        tokio::time::sleep(Duration::from_millis(37 * (i % 29))).await;
        let seq = store.append(&event(i)).await.expect("append");
        let appended = Instant::now();
        loop {
            let covered = log
                .latest_checkpoint()
                .await
                .expect("checkpoint")
                .is_some_and(|c| c.size > seq);
            if covered {
                break;
            }
            assert!(
                appended.elapsed() < Duration::from_secs(30),
                "event {seq} was never covered by a checkpoint"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        waits.push(appended.elapsed());
    }
    checkpointer.shutdown().await;
    store.close().await;
    waits.sort_unstable();
    let ms = |p: f64| {
        let i = ((waits.len() - 1) as f64 * p).round() as usize;
        waits[i].as_secs_f64() * 1e3
    };
    eprintln!(
        "append to signed checkpoint over {rounds} appends (1 s period, polled every 2 ms): \
         p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(0.5),
        ms(0.9),
        ms(1.0)
    );
}
