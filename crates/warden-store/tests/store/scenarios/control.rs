//! Action-control state: kill switches, approvals and votes, undo links, usage counters.
//! Races run as separate tasks on two stores (two connection pools, like two replicas) over one
//! database.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use warden_core::store::{
    Approval, ApprovalKind, ApprovalStatus, CancelScope, StoreError, Switch, Usage, Vote,
    VoteOutcome,
};
use warden_store::WardenStore;

use crate::harness::Db;

/// A time with microsecond precision (what both backends keep).
fn t(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, micros * 1000)
        .single()
        .expect("a valid time")
}

fn switch(scope: &str, paused: bool, by: &str, at: DateTime<Utc>) -> Switch {
    Switch {
        scope: scope.to_owned(),
        paused,
        reason: paused.then(|| format!("paused by {by}")),
        by: by.to_owned(),
        at,
    }
}

/// A pending request that needs `required` approvers, requested at `t(secs)` for an hour.
fn request(id: &str, agent: &str, tool: &str, required: u32, secs: i64) -> Approval {
    Approval {
        id: id.to_owned(),
        kind: ApprovalKind::Approval,
        event_id: format!("event-of-{id}"),
        agent: agent.to_owned(),
        user: Some("alice@example.com".into()),
        task: Some("task-1".into()),
        session: Some("sess-1".into()),
        tool: tool.to_owned(),
        args_hash: "ab".repeat(32),
        args: json!({"customer_id": 42}),
        required_role: Some("approver".into()),
        required_count: required,
        policies: vec!["refunds-need-approval".into()],
        status: ApprovalStatus::Pending,
        requested_at: t(secs, 0),
        expires_at: t(secs + 3600, 0),
        decided_at: None,
        result_event_id: None,
    }
}

fn ballot(id: &str, approver: &str, approve: bool, secs: i64) -> Vote {
    Vote {
        approval_id: id.to_owned(),
        approver: approver.to_owned(),
        approve,
        reason: Some(format!("{approver} decided")),
        at: t(secs, 500),
    }
}

async fn status_of(store: &Arc<dyn WardenStore>, id: &str) -> ApprovalStatus {
    store
        .approval(id)
        .await
        .expect("read approval")
        .expect("approval exists")
        .status
}

pub async fn a_pause_holds_across_reopen(db: Db) {
    let global = switch(Switch::GLOBAL, true, "alice", t(0, 123_456));
    let bot = switch(&Switch::agent_scope("bot"), false, "bob", t(1, 7));
    db.store.set_switch(&global).await.expect("pause");
    db.store.set_switch(&bot).await.expect("switch");
    let held = request("held", "bot", "payments.refund", 1, 0);
    db.store.insert_approval(&held).await.expect("insert");
    db.store.close().await;

    let reopened = db.open_another().await;
    assert_eq!(
        reopened.switches().await.expect("switches"),
        vec![bot, global],
        "ordered by scope"
    );
    assert_eq!(reopened.switch_version().await.expect("version"), 2);
    assert_eq!(
        reopened.approval("held").await.expect("approval"),
        Some(held)
    );
    reopened.close().await;
}

pub async fn the_switch_version_moves_on_every_change(db: Db) {
    let store = db.store.clone();
    assert_eq!(store.switch_version().await.expect("version"), 0);
    assert!(store.switches().await.expect("switches").is_empty());

    let paused = switch(Switch::GLOBAL, true, "alice", t(0, 1));
    store.set_switch(&paused).await.expect("pause");
    assert_eq!(store.switch_version().await.expect("version"), 1);
    let lifted = switch(Switch::GLOBAL, false, "bob", t(5, 2));
    store.set_switch(&lifted).await.expect("lift");
    assert_eq!(store.switch_version().await.expect("version"), 2);
    assert_eq!(
        store.switches().await.expect("switches"),
        vec![lifted.clone()],
        "one row per scope, replaced"
    );
    store.set_switch(&lifted).await.expect("repeat");
    assert_eq!(
        store.switch_version().await.expect("version"),
        3,
        "even a repeat moves the version"
    );

    // Changes from two replicas at once: every one counts.
    let other = db.open_another().await;
    let stores = [store.clone(), other.clone()];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = stores[i % 2].clone();
            let s = switch(
                &Switch::upstream_scope(&format!("up{}", i % 5)),
                i % 3 == 0,
                "ops",
                t(10 + i as i64, 0),
            );
            tokio::spawn(async move { store.set_switch(&s).await.expect("set") })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(other.switch_version().await.expect("version"), 23);
    let scopes: Vec<String> = other
        .switches()
        .await
        .expect("switches")
        .into_iter()
        .map(|s| s.scope)
        .collect();
    assert_eq!(
        scopes,
        vec![
            "global",
            "upstream:up0",
            "upstream:up1",
            "upstream:up2",
            "upstream:up3",
            "upstream:up4"
        ]
    );
    other.close().await;
}

pub async fn an_approval_round_trips_with_its_arguments(db: Db) {
    let store = db.store;
    let mut full = request("a1", "support-bot", "payments.refund", 2, 0);
    full.args = json!({
        "customer": {"id": 42, "name": "Zoë — ünïcödé"},
        "amount": 1234.5,
        "big": u64::MAX,
        "negative": -7,
        "tags": ["a", "b"],
        "nested": [[1], [2, [3, null]]],
        "empty": {},
        "flag": true
    });
    full.requested_at = t(0, 123_456);
    full.expires_at = t(900, 654_321);
    let bare = Approval {
        id: "a2".into(),
        kind: ApprovalKind::Proposal,
        user: None,
        task: None,
        session: None,
        args: json!(null),
        required_role: None,
        required_count: 1,
        policies: vec![],
        requested_at: t(10, 0),
        ..full.clone()
    };
    let done = Approval {
        id: "a3".into(),
        status: ApprovalStatus::Executed,
        requested_at: t(5, 0),
        decided_at: Some(t(6, 999_999)),
        result_event_id: Some("result-event".into()),
        ..full.clone()
    };
    for a in [&full, &bare, &done] {
        store.insert_approval(a).await.expect("insert");
    }
    assert_eq!(
        store.approval("a1").await.expect("read"),
        Some(full.clone())
    );
    assert_eq!(
        store.approval("a2").await.expect("read"),
        Some(bare.clone())
    );
    assert_eq!(
        store.approval("a3").await.expect("read"),
        Some(done.clone())
    );
    assert_eq!(store.approval("nope").await.expect("read"), None);
    assert_eq!(
        store.approvals(None).await.expect("list"),
        vec![bare.clone(), done.clone(), full.clone()],
        "newest first"
    );
    assert_eq!(
        store
            .approvals(Some(ApprovalStatus::Pending))
            .await
            .expect("list"),
        vec![bare, full]
    );
    assert_eq!(
        store
            .approvals(Some(ApprovalStatus::Executed))
            .await
            .expect("list"),
        vec![done]
    );
    assert!(
        store
            .approvals(Some(ApprovalStatus::Denied))
            .await
            .expect("list")
            .is_empty()
    );
    assert!(store.votes("a1").await.expect("votes").is_empty());

    let dup = store
        .insert_approval(&request("a1", "x", "y.z", 1, 0))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "got {dup:?}");

    // Compare-and-set: the first caller wins, a stale `from` loses, and the lifecycle holds.
    let expired = store
        .transition_approval("a1", ApprovalStatus::Pending, ApprovalStatus::Expired, None)
        .await
        .expect("expire");
    assert!(expired);
    let again = store
        .transition_approval("a1", ApprovalStatus::Pending, ApprovalStatus::Expired, None)
        .await
        .expect("expire again");
    assert!(!again, "already expired");
    let a1 = store.approval("a1").await.expect("read").expect("exists");
    assert_eq!(a1.status, ApprovalStatus::Expired);
    assert!(a1.decided_at.is_some(), "expiry is a decision time");
    let back = store
        .transition_approval("a1", ApprovalStatus::Expired, ApprovalStatus::Pending, None)
        .await;
    assert!(matches!(back, Err(StoreError::Conflict(_))), "got {back:?}");
    let missing = store
        .transition_approval(
            "nope",
            ApprovalStatus::Pending,
            ApprovalStatus::Cancelled,
            None,
        )
        .await
        .expect("no such request");
    assert!(!missing);
}

pub async fn two_approvers_racing_with_n1_approve_exactly_once(db: Db) {
    let other = db.open_another().await;
    for round in 0..20 {
        let id = format!("race-{round}");
        db.store
            .insert_approval(&request(&id, "bot", "payments.refund", 1, 0))
            .await
            .expect("insert");
        let racers: Vec<_> = [("alice", db.store.clone()), ("bob", other.clone())]
            .into_iter()
            .map(|(approver, store)| {
                let v = ballot(&id, approver, true, 10);
                tokio::spawn(async move { store.cast_vote(&v, 1).await.expect("vote") })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            outcomes.push(racer.await.expect("racer"));
        }
        let approved = outcomes
            .iter()
            .filter(|o| **o == VoteOutcome::Approved)
            .count();
        let late = outcomes
            .iter()
            .filter(|o| **o == VoteOutcome::NotPending(ApprovalStatus::Approved))
            .count();
        assert_eq!(
            (approved, late),
            (1, 1),
            "round {round}: one approves, the other finds it approved: {outcomes:?}"
        );
        let a = db.store.approval(&id).await.expect("read").expect("exists");
        assert_eq!(a.status, ApprovalStatus::Approved);
        assert_eq!(a.decided_at, Some(t(10, 500)));
        assert_eq!(db.store.votes(&id).await.expect("votes").len(), 1);
    }
    other.close().await;
}

pub async fn n2_needs_two_distinct_approvers(db: Db) {
    let store = db.store;
    store
        .insert_approval(&request("n2", "bot", "payments.refund", 2, 0))
        .await
        .expect("insert");
    let alice = ballot("n2", "alice", true, 10);
    assert_eq!(
        store.cast_vote(&alice, 2).await.expect("vote"),
        VoteOutcome::Recorded { approvals: 1 }
    );
    let a = store.approval("n2").await.expect("read").expect("exists");
    assert_eq!((a.status, a.decided_at), (ApprovalStatus::Pending, None));
    let bob = ballot("n2", "bob", true, 20);
    assert_eq!(
        store.cast_vote(&bob, 2).await.expect("vote"),
        VoteOutcome::Approved
    );
    let a = store.approval("n2").await.expect("read").expect("exists");
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(a.decided_at, Some(bob.at), "decided by the second approver");
    assert_eq!(
        store
            .cast_vote(&ballot("n2", "carol", true, 30), 2)
            .await
            .expect("vote"),
        VoteOutcome::NotPending(ApprovalStatus::Approved)
    );
    assert_eq!(store.votes("n2").await.expect("votes"), vec![alice, bob]);
}

pub async fn one_approver_cannot_vote_twice(db: Db) {
    let store = db.store.clone();
    store
        .insert_approval(&request("twice", "bot", "payments.refund", 2, 0))
        .await
        .expect("insert");
    let first = ballot("twice", "alice", true, 10);
    assert_eq!(
        store.cast_vote(&first, 2).await.expect("vote"),
        VoteOutcome::Recorded { approvals: 1 }
    );
    for approve in [true, false] {
        assert_eq!(
            store
                .cast_vote(&ballot("twice", "alice", approve, 11), 2)
                .await
                .expect("vote"),
            VoteOutcome::AlreadyVoted,
            "a second vote (approve: {approve}) is refused"
        );
    }
    assert_eq!(status_of(&store, "twice").await, ApprovalStatus::Pending);
    assert_eq!(store.votes("twice").await.expect("votes"), vec![first]);

    // The same approver racing themselves on two replicas is still one vote.
    let other = db.open_another().await;
    store
        .insert_approval(&request("self-race", "bot", "payments.refund", 2, 0))
        .await
        .expect("insert");
    let tasks: Vec<_> = [store.clone(), other.clone()]
        .into_iter()
        .map(|s| {
            let v = ballot("self-race", "bob", true, 12);
            tokio::spawn(async move { s.cast_vote(&v, 2).await.expect("vote") })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task"));
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        vec![
            VoteOutcome::AlreadyVoted,
            VoteOutcome::Recorded { approvals: 1 }
        ]
    );
    assert_eq!(
        status_of(&store, "self-race").await,
        ApprovalStatus::Pending
    );
    other.close().await;
}

pub async fn a_deny_vote_denies(db: Db) {
    let store = db.store;
    store
        .insert_approval(&request("d", "bot", "payments.refund", 2, 0))
        .await
        .expect("insert");
    assert_eq!(
        store
            .cast_vote(&ballot("d", "alice", true, 10), 2)
            .await
            .expect("vote"),
        VoteOutcome::Recorded { approvals: 1 }
    );
    let deny = ballot("d", "bob", false, 20);
    assert_eq!(
        store.cast_vote(&deny, 2).await.expect("vote"),
        VoteOutcome::Denied
    );
    let a = store.approval("d").await.expect("read").expect("exists");
    assert_eq!(a.status, ApprovalStatus::Denied);
    assert_eq!(a.decided_at, Some(deny.at));
    assert_eq!(
        store
            .cast_vote(&ballot("d", "carol", true, 30), 2)
            .await
            .expect("vote"),
        VoteOutcome::NotPending(ApprovalStatus::Denied)
    );
    let votes = store.votes("d").await.expect("votes");
    assert_eq!(votes.len(), 2);
    assert_eq!(votes[1], deny, "the deny vote is kept with its reason");

    // A vote after the deadline is refused and marks the request expired.
    store
        .insert_approval(&request("late", "bot", "payments.refund", 1, 0))
        .await
        .expect("insert");
    assert_eq!(
        store
            .cast_vote(&ballot("late", "alice", true, 3600), 1)
            .await
            .expect("vote"),
        VoteOutcome::NotPending(ApprovalStatus::Expired)
    );
    let late = store.approval("late").await.expect("read").expect("exists");
    assert_eq!(late.status, ApprovalStatus::Expired);
    assert!(store.votes("late").await.expect("votes").is_empty());

    let missing = store.cast_vote(&ballot("nope", "alice", true, 1), 1).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "got {missing:?}"
    );
}

pub async fn an_approved_request_executes_exactly_once(db: Db) {
    let store = db.store.clone();
    store
        .insert_approval(&request("x", "bot", "payments.refund", 1, 0))
        .await
        .expect("insert");
    let early = store
        .transition_approval("x", ApprovalStatus::Pending, ApprovalStatus::Executed, None)
        .await;
    assert!(
        matches!(early, Err(StoreError::Conflict(_))),
        "a pending request cannot execute: {early:?}"
    );
    assert_eq!(
        store
            .cast_vote(&ballot("x", "alice", true, 10), 1)
            .await
            .expect("vote"),
        VoteOutcome::Approved
    );
    let other = db.open_another().await;
    let stores = [store.clone(), other.clone()];
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                let result = format!("result-{i}");
                let won = store
                    .transition_approval(
                        "x",
                        ApprovalStatus::Approved,
                        ApprovalStatus::Executed,
                        Some(&result),
                    )
                    .await
                    .expect("transition");
                won.then_some(result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(result) = task.await.expect("task") {
            winners.push(result);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one executor: {winners:?}");
    let a = store.approval("x").await.expect("read").expect("exists");
    assert_eq!(a.status, ApprovalStatus::Executed);
    assert_eq!(a.result_event_id, winners.pop());
    assert_eq!(a.decided_at, Some(t(10, 500)), "the decision time is kept");
    other.close().await;
}

pub async fn pending_approvals_of_a_paused_agent_are_cancelled(db: Db) {
    let store = db.store;
    let requests = [
        request("bot-1", "bot", "crm.get_customer", 1, 0),
        request("bot-2", "bot", "crm.update_customer", 1, 1),
        request("bot-approved", "bot", "crm.get_customer", 1, 2),
        request("other-crm", "other", "crm.get_customer", 1, 3),
        request("other-my_crm", "other", "my_crm.get", 1, 4),
        request("other-myXcrm", "other", "myXcrm.get", 1, 5),
        request("other-crm_archive", "other", "crm_archive.get", 1, 6),
    ];
    for r in &requests {
        store.insert_approval(r).await.expect("insert");
    }
    assert_eq!(
        store
            .cast_vote(&ballot("bot-approved", "alice", true, 10), 1)
            .await
            .expect("vote"),
        VoteOutcome::Approved
    );

    let pause = switch(&Switch::agent_scope("bot"), true, "ops", t(20, 0));
    store.set_switch(&pause).await.expect("pause");
    let n = store
        .cancel_pending_approvals(CancelScope::Agent("bot".into()))
        .await
        .expect("cancel");
    assert_eq!(n, 2, "the bot's two pending requests");
    for id in ["bot-1", "bot-2"] {
        let a = store.approval(id).await.expect("read").expect("exists");
        assert_eq!(a.status, ApprovalStatus::Cancelled, "{id}");
        assert!(a.decided_at.is_some(), "{id} has a decision time");
    }
    assert_eq!(
        status_of(&store, "bot-approved").await,
        ApprovalStatus::Approved,
        "only pending requests are cancelled"
    );

    // An upstream is a tool-name prefix, matched literally (`_` is not a wildcard).
    let n = store
        .cancel_pending_approvals(CancelScope::Upstream("my_crm".into()))
        .await
        .expect("cancel");
    assert_eq!(n, 1);
    assert_eq!(
        status_of(&store, "other-my_crm").await,
        ApprovalStatus::Cancelled
    );
    assert_eq!(
        status_of(&store, "other-myXcrm").await,
        ApprovalStatus::Pending
    );
    let n = store
        .cancel_pending_approvals(CancelScope::Upstream("crm".into()))
        .await
        .expect("cancel");
    assert_eq!(n, 1, "crm.* but not crm_archive.*");
    assert_eq!(
        status_of(&store, "other-crm").await,
        ApprovalStatus::Cancelled
    );

    let n = store
        .cancel_pending_approvals(CancelScope::All)
        .await
        .expect("cancel");
    assert_eq!(n, 2, "myXcrm and crm_archive");
    assert!(
        store
            .approvals(Some(ApprovalStatus::Pending))
            .await
            .expect("list")
            .is_empty()
    );
    let n = store
        .cancel_pending_approvals(CancelScope::All)
        .await
        .expect("cancel");
    assert_eq!(n, 0);
}

pub async fn an_event_can_be_undone_once(db: Db) {
    let other = db.open_another().await;
    let stores = [db.store.clone(), other.clone()];
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                let undo = format!("undo-{i}");
                let won = store.claim_undo("evt-1", &undo).await.expect("claim");
                won.then_some(undo)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(undo) = task.await.expect("task") {
            winners.push(undo);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one undo: {winners:?}");
    assert_eq!(
        db.store.undo_of("evt-1").await.expect("undo_of"),
        winners.pop()
    );
    assert!(
        !db.store
            .claim_undo("evt-1", "undo-late")
            .await
            .expect("claim"),
        "already undone"
    );
    assert_eq!(db.store.undo_of("evt-2").await.expect("undo_of"), None);
    assert!(db.store.claim_undo("evt-2", "undo-2").await.expect("claim"));
    assert_eq!(
        other.undo_of("evt-2").await.expect("undo_of").as_deref(),
        Some("undo-2")
    );
    other.close().await;
}

pub async fn a_failed_undo_claim_is_taken_over_by_exactly_one_retry(db: Db) {
    let other = db.open_another().await;
    assert!(
        db.store
            .claim_undo("evt-9", "undo-denied")
            .await
            .expect("claim")
    );
    let stores = [db.store.clone(), other.clone()];
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                let undo = format!("retry-{i}");
                let won = store
                    .reclaim_undo("evt-9", "undo-denied", &undo)
                    .await
                    .expect("reclaim");
                won.then_some(undo)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(undo) = task.await.expect("task") {
            winners.push(undo);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one retry: {winners:?}");
    assert_eq!(
        other.undo_of("evt-9").await.expect("undo_of"),
        winners.pop()
    );
    assert!(
        !db.store
            .reclaim_undo("evt-9", "undo-denied", "retry-late")
            .await
            .expect("reclaim"),
        "the stale claim is gone"
    );
    assert!(
        !db.store
            .reclaim_undo("evt-none", "x", "y")
            .await
            .expect("reclaim"),
        "nothing to take over"
    );
    other.close().await;
}

pub async fn usage_adds_up_atomically_under_concurrency(db: Db) {
    let window = t(60, 0);
    let other = db.open_another().await;
    let stores = [db.store.clone(), other.clone()];
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                store
                    .add_usage("agent:bot:calls", window, 1, 0.25)
                    .await
                    .expect("add usage")
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let totals = task.await.expect("task");
        assert_eq!(
            totals.amount,
            totals.count as f64 * 0.25,
            "each addition returns the totals it produced"
        );
        assert!(
            seen.insert(totals.count),
            "total {} seen twice",
            totals.count
        );
    }
    assert_eq!(seen, (1..=100).collect::<BTreeSet<i64>>());
    assert_eq!(
        db.store
            .usage("agent:bot:calls", window)
            .await
            .expect("usage"),
        Usage {
            count: 100,
            amount: 25.0
        }
    );

    // Windows and keys are separate counters; unknown ones are zero.
    let next = window + Duration::seconds(60);
    assert_eq!(
        other
            .add_usage("agent:bot:calls", next, 3, 1.5)
            .await
            .expect("add"),
        Usage {
            count: 3,
            amount: 1.5
        }
    );
    assert_eq!(
        db.store
            .usage("agent:bot:spend", window)
            .await
            .expect("usage"),
        Usage::default()
    );
    let nan = db.store.add_usage("k", window, 1, f64::NAN).await;
    assert!(nan.is_err(), "a NaN amount is refused: {nan:?}");

    // Pruning removes windows that start before the cutoff, and only those.
    assert_eq!(db.store.prune_usage(next).await.expect("prune"), 1);
    assert_eq!(
        db.store
            .usage("agent:bot:calls", window)
            .await
            .expect("usage"),
        Usage::default()
    );
    assert_eq!(
        db.store
            .usage("agent:bot:calls", next)
            .await
            .expect("usage")
            .count,
        3
    );
    other.close().await;
}
