//! The behaviour every backend must have. Each scenario gets a fresh database.

mod audit;
mod control;
mod evidence;
mod pins;
mod session;
pub use audit::*;
pub use control::*;
pub use evidence::*;
pub use pins::*;
pub use session::*;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use warden_core::event::{AuditEvent, EventKind, Finding, Outcome, Verdict};
use warden_core::model::Mode;
use warden_core::store::{AgentKey, OperatorRole, OperatorToken, StoreError, TaskGrant};
use warden_store::{StoreOptions, WardenStore, open_warden_store};

use crate::harness::Db;

/// A time with microsecond precision (what both backends keep).
fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, micros * 1000)
        .single()
        .expect("a valid time")
}

pub(crate) fn event(agent: &str) -> AuditEvent {
    let mut e = AuditEvent::begin(EventKind::ToolCall, "mcp", None);
    e.agent = Some(agent.to_owned());
    e.action = Some("crm.get_customer".to_owned());
    e.verdict = Verdict::Allow;
    e.outcome = Outcome::Ok;
    e
}

pub(crate) fn full_event() -> AuditEvent {
    let mut e = event("support-bot");
    e.parent_id = Some("0190aaaa-0000-7000-8000-000000000001".into());
    // Nanoseconds, which the store drops: times are kept to the microsecond.
    e.started_at = Utc
        .timestamp_opt(1_750_000_000, 123_456_789)
        .single()
        .expect("time");
    e.finished_at = Utc
        .timestamp_opt(1_750_000_001, 987_654_321)
        .single()
        .expect("time");
    e.user = Some("alice@example.com".into());
    e.task = Some("task-1".into());
    e.session = Some("sess-1".into());
    e.operator = None;
    e.mode = Some(Mode::Execute);
    e.bundle_hash = "ab".repeat(32);
    e.policies = vec!["p1".into(), "p2".into()];
    e.reason = Some("allowed by p1 — ünïcödé".into());
    e.upstream_latency_us = Some(1234);
    e.args_digest = Some("cd".repeat(32));
    e.result_digest = Some("ef".repeat(32));
    e.approvers = vec!["bob".into()];
    e.findings = vec![Finding {
        kind: "dlp.ssn".into(),
        location: "result".into(),
        count: 2,
        action: "redacted".into(),
    }];
    e
}

fn key(key_id: &str, agent: &str, created: DateTime<Utc>) -> AgentKey {
    AgentKey {
        key_id: key_id.to_owned(),
        agent: agent.to_owned(),
        hash: format!("hash-{key_id}"),
        created_at: created,
        revoked_at: None,
    }
}

async fn append_all(store: &Arc<dyn WardenStore>, events: &[AuditEvent]) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(events.len());
    for e in events {
        seqs.push(store.append(e).await.expect("append"));
    }
    seqs
}

pub async fn appended_event_reads_back_identical(db: Db) {
    let store = db.store;
    let appended = full_event();
    let seq = store.append(&appended).await.expect("append");
    // Read back from its canonical bytes, which keep times to the microsecond.
    let mut e = appended.clone();
    warden_audit::canonical::normalize(&mut e);
    assert_ne!(e, appended, "the event's times have nanoseconds");
    assert_eq!(seq, 0, "the first event is at seq 0");
    assert_eq!(store.event(&e.id).await.expect("event"), Some(e.clone()));
    assert_eq!(store.recent(10).await.expect("recent"), vec![e.clone()]);
    let stored = store.stored_event(&e.id).await.expect("stored_event");
    assert_eq!(stored.map(|s| (s.seq, s.event)), Some((0, e.clone())));
    let chain = store
        .events_by_correlation(&e.correlation_id)
        .await
        .expect("chain");
    assert_eq!(chain.len(), 1);
    assert_eq!(store.event("no-such-id").await.expect("missing"), None);
    assert_eq!(store.event_count().await.expect("count"), 1);
}

pub async fn concurrent_appends_get_contiguous_distinct_seqs(db: Db) {
    let store = db.store;
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let e = event(&format!("agent-{}", i % 7));
                let seq = store.append(&e).await.expect("append");
                (seq, e.id)
            })
        })
        .collect();
    let mut by_seq = HashMap::new();
    for task in tasks {
        let (seq, id) = task.await.expect("append task");
        assert!(by_seq.insert(seq, id).is_none(), "seq {seq} given twice");
    }
    let seqs: BTreeSet<u64> = by_seq.keys().copied().collect();
    assert_eq!(
        seqs,
        (0..1000).collect::<BTreeSet<u64>>(),
        "seqs are 0..1000"
    );
    assert_eq!(store.event_count().await.expect("count"), 1000);
    let stored = store.events_range(0, 1000).await.expect("range");
    assert_eq!(stored.len(), 1000, "every acknowledged event is committed");
    for s in stored {
        assert_eq!(
            by_seq.get(&s.seq),
            Some(&s.event.id),
            "seq {} holds its event",
            s.seq
        );
    }
    let stats = store.writer_stats();
    assert_eq!(stats.events, 1000);
    assert!(
        stats.commits < 1000,
        "appends were grouped ({} commits)",
        stats.commits
    );
}

pub async fn events_appended_together_share_disk_syncs(db: Db) {
    let store = db.store;
    store.append(&event("warm-up")).await.expect("append");
    let before = store.writer_stats();
    // join_all polls every append once before yielding, so all of them are queued at once. Keep
    // under Tokio's cooperative budget (128 operations per poll), past which the channel makes
    // the test task yield early.
    let events: Vec<AuditEvent> = (0..100).map(|_| event("batch")).collect();
    let seqs = futures::future::join_all(events.iter().map(|e| store.append(e))).await;
    let mut seqs: Vec<u64> = seqs.into_iter().map(|r| r.expect("append")).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=100).collect::<Vec<u64>>(),
        "contiguous after the warm-up"
    );
    let after = store.writer_stats();
    assert_eq!(after.events - before.events, 100);
    // What group commit saves is waits for the disk. SQLite's writer commits whatever is queued
    // without waiting for the disk (fast, so on a busy machine it may take several small
    // batches) and one sync of the WAL then covers every commit before it; PostgreSQL's writer,
    // a task of this runtime, sees all 100 at once and syncs each commit.
    if after.syncs > 0 {
        assert!(
            after.syncs - before.syncs <= 50,
            "100 events appended together took {} syncs of the log",
            after.syncs - before.syncs
        );
    } else {
        assert!(
            after.commits - before.commits <= 50,
            "100 events appended together took {} transactions",
            after.commits - before.commits
        );
        assert!(
            after.largest_batch >= 2,
            "largest batch {}",
            after.largest_batch
        );
    }
}

pub async fn batch_max_bounds_a_transaction(db: Db) {
    let store = db.store;
    let events: Vec<AuditEvent> = (0..100).map(|_| event("batch")).collect();
    let seqs = futures::future::join_all(events.iter().map(|e| store.append(e))).await;
    assert!(seqs.iter().all(Result::is_ok));
    let stats = store.writer_stats();
    assert!(stats.largest_batch <= 16, "batch_max = 16 in this scenario");
    assert!(stats.commits >= 7, "100 events in batches of at most 16");
    assert_eq!(stats.events, 100);
}

pub async fn recent_returns_newest_first(db: Db) {
    let store = db.store;
    let events: Vec<AuditEvent> = (0..5).map(|i| event(&format!("a{i}"))).collect();
    append_all(&store, &events).await;
    let ids = |v: Vec<AuditEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let recent = store.recent(3).await.expect("recent");
    assert_eq!(
        ids(recent),
        vec![
            events[4].id.clone(),
            events[3].id.clone(),
            events[2].id.clone()
        ]
    );
    assert_eq!(store.recent(100).await.expect("recent").len(), 5);
    assert!(store.recent(0).await.expect("recent").is_empty());
}

pub async fn correlated_events_and_ranges_read_in_log_order(db: Db) {
    let store = db.store;
    let first = event("a");
    let mut second = event("a");
    second.correlation_id = first.correlation_id.clone();
    second.parent_id = Some(first.id.clone());
    append_all(
        &store,
        &[first.clone(), event("b"), second.clone(), event("c")],
    )
    .await;
    let chain = store
        .events_by_correlation(&first.correlation_id)
        .await
        .expect("chain");
    let chain: Vec<(u64, String)> = chain.into_iter().map(|s| (s.seq, s.event.id)).collect();
    assert_eq!(chain, vec![(0, first.id), (2, second.id)]);
    let range = store.events_range(1, 3).await.expect("range");
    assert_eq!(range.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(store.events_range(4, 10).await.expect("range").is_empty());
    assert_eq!(
        store.events_range(0, u64::MAX).await.expect("range").len(),
        4
    );
}

pub async fn a_duplicate_event_fails_alone(db: Db) {
    let store = db.store;
    let original = event("a");
    store.append(&original).await.expect("append");
    let (fresh1, fresh2) = (event("b"), event("c"));
    let (a, dup, b) = tokio::join!(
        store.append(&fresh1),
        store.append(&original),
        store.append(&fresh2)
    );
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "duplicate id: {dup:?}"
    );
    let mut seqs = vec![
        a.expect("first neighbour commits"),
        b.expect("second neighbour commits"),
    ];
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2], "no gap where the duplicate was refused");
    assert_eq!(store.event_count().await.expect("count"), 3);
}

pub async fn a_revoked_key_is_found_but_marked_revoked(db: Db) {
    let store = db.store;
    let mut k = key("k1", "support-bot", at(0, 1));
    store.insert_agent_key(&k).await.expect("insert");
    assert_eq!(
        store.agent_key_by_hash("hash-k1").await.expect("lookup"),
        Some(k.clone())
    );
    let n = store
        .revoke_agent_keys("support-bot", None, at(60, 250_001))
        .await
        .expect("revoke");
    assert_eq!(n, 1);
    k.revoked_at = Some(at(60, 250_001));
    assert_eq!(
        store.agent_key_by_hash("hash-k1").await.expect("lookup"),
        Some(k.clone())
    );
    assert_eq!(store.agent_keys().await.expect("list"), vec![k]);
    assert_eq!(
        store.agent_key_by_hash("hash-none").await.expect("lookup"),
        None
    );
    let again = store
        .revoke_agent_keys("support-bot", None, at(99, 0))
        .await
        .expect("revoke");
    assert_eq!(again, 0, "a revoked key is not revoked again");
}

pub async fn rotate_keeps_the_new_key_and_revokes_the_old_ones(db: Db) {
    let store = db.store;
    let mut old_revoked = key("k0", "bot", at(0, 0));
    old_revoked.revoked_at = Some(at(5, 0));
    let keys = [
        old_revoked.clone(),
        key("k1", "bot", at(10, 0)),
        key("k2", "bot", at(20, 0)),
        key("k3", "bot", at(30, 0)),
        key("other", "other-bot", at(40, 0)),
    ];
    for k in &keys {
        store.insert_agent_key(k).await.expect("insert");
    }
    let now = at(100, 7);
    let n = store
        .revoke_agent_keys("bot", Some("k3"), now)
        .await
        .expect("revoke");
    assert_eq!(n, 2, "k1 and k2");
    let listed = store.agent_keys().await.expect("list");
    let revoked: HashMap<String, Option<DateTime<Utc>>> = listed
        .into_iter()
        .map(|k| (k.key_id, k.revoked_at))
        .collect();
    assert_eq!(
        revoked["k0"],
        Some(at(5, 0)),
        "an already revoked key keeps its time"
    );
    assert_eq!(revoked["k1"], Some(now));
    assert_eq!(revoked["k2"], Some(now));
    assert_eq!(revoked["k3"], None, "the new key stays live");
    assert_eq!(revoked["other"], None, "other agents are untouched");
}

pub async fn a_duplicate_key_hash_is_a_conflict(db: Db) {
    let store = db.store;
    store
        .insert_agent_key(&key("k1", "bot", at(0, 0)))
        .await
        .expect("insert");
    let mut clash = key("k2", "bot", at(1, 0));
    clash.hash = "hash-k1".into();
    let err = store.insert_agent_key(&clash).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "got {err:?}");
}

pub async fn a_task_grant_round_trips_with_its_tools_and_expiry(db: Db) {
    let store = db.store;
    let full = TaskGrant {
        task_id: "t1".into(),
        agent: "support-bot".into(),
        hash: "task-hash-1".into(),
        tools: vec!["crm.get_customer".into(), "crm.update_customer".into()],
        max_class: Some("confidential".into()),
        purpose: Some("ticket #42".into()),
        user: Some("alice@example.com".into()),
        created_at: at(0, 123_456),
        expires_at: at(900, 654_321),
    };
    let bare = TaskGrant {
        task_id: "t2".into(),
        hash: "task-hash-2".into(),
        tools: vec![],
        max_class: None,
        purpose: None,
        user: None,
        ..full.clone()
    };
    store.insert_task(&full).await.expect("insert");
    store.insert_task(&bare).await.expect("insert");
    assert_eq!(
        store.task_by_hash("task-hash-1").await.expect("lookup"),
        Some(full)
    );
    assert_eq!(
        store.task_by_hash("task-hash-2").await.expect("lookup"),
        Some(bare)
    );
    assert_eq!(store.task_by_hash("nope").await.expect("lookup"), None);
}

pub async fn an_operator_token_round_trips_with_its_role(db: Db) {
    let store = db.store;
    let roles = [
        OperatorRole::Viewer,
        OperatorRole::Auditor,
        OperatorRole::Approver,
        OperatorRole::Admin,
    ];
    let mut tokens = Vec::new();
    for (i, role) in roles.into_iter().enumerate() {
        let t = OperatorToken {
            token_id: format!("op{i}"),
            name: format!("person{i}@example.com"),
            role,
            hash: format!("op-hash-{i}"),
            created_at: at(i as i64, 999_999),
            revoked_at: (i == 0).then(|| at(500, 1)),
        };
        store.insert_operator_token(&t).await.expect("insert");
        tokens.push(t);
    }
    for t in &tokens {
        let found = store.operator_token_by_hash(&t.hash).await.expect("lookup");
        assert_eq!(found.as_ref(), Some(t));
    }
    assert_eq!(store.operator_tokens().await.expect("list"), tokens);
    assert_eq!(
        store.operator_token_by_hash("nope").await.expect("lookup"),
        None
    );
}

pub async fn append_after_the_writer_stopped_fails_fast(db: Db) {
    let store = db.store;
    store.append(&event("a")).await.expect("append");
    store.close().await;
    let late = tokio::time::timeout(Duration::from_secs(5), store.append(&event("b"))).await;
    match late {
        Ok(Err(StoreError::WriterStopped)) => {}
        Ok(other) => panic!("expected WriterStopped, got {other:?}"),
        Err(_) => panic!("append hung after the writer stopped"),
    }
}

pub async fn two_writers_share_one_contiguous_log(db: Db) {
    let other = db.open_another().await;
    let stores = [db.store.clone(), other.clone()];
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move { store.append(&event("two")).await.expect("append") })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for task in tasks {
        assert!(
            seqs.insert(task.await.expect("task")),
            "a seq was given twice"
        );
    }
    assert_eq!(seqs, (0..400).collect::<BTreeSet<u64>>());
    assert_eq!(db.store.event_count().await.expect("count"), 400);
    other.close().await;
}

/// SQLite only: the file keeps what was committed, and a new store continues the sequence.
pub async fn reopening_keeps_every_event_and_continues_the_seq(db: Db) {
    let events: Vec<AuditEvent> = (0..50).map(|i| event(&format!("p{i}"))).collect();
    let seqs = futures::future::join_all(events.iter().map(|e| db.store.append(e))).await;
    assert!(seqs.iter().all(Result::is_ok));
    db.store
        .insert_agent_key(&key("k1", "bot", at(1, 2)))
        .await
        .expect("insert");
    db.store.close().await;

    let reopened = open_warden_store(&db.url, StoreOptions::default())
        .await
        .expect("reopen");
    assert_eq!(reopened.event_count().await.expect("count"), 50);
    let stored = reopened.events_range(0, 50).await.expect("range");
    let ids: BTreeSet<String> = stored.into_iter().map(|s| s.event.id).collect();
    assert_eq!(
        ids,
        events.iter().map(|e| e.id.clone()).collect::<BTreeSet<_>>()
    );
    assert_eq!(reopened.append(&event("after")).await.expect("append"), 50);
    assert_eq!(reopened.agent_keys().await.expect("keys").len(), 1);
    reopened.close().await;
}
