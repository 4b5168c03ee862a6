//! Events for tests: one with every field set, a deterministic series, and a proptest strategy.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use warden_core::event::{AuditEvent, EventKind, Finding, Outcome, Verdict};
use warden_core::model::Mode;

pub fn time(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .expect("valid test time")
}

/// An event with every optional field present and every list non-empty.
pub fn full_event() -> AuditEvent {
    AuditEvent {
        id: "0190f5c6-7d7e-7a3b-9c1d-2e3f4a5b6c7d".into(),
        correlation_id: "0190f5c6-7d7e-7a3b-9c1d-000000000001".into(),
        parent_id: Some("0190f5c6-7d7e-7a3b-9c1d-000000000000".into()),
        kind: EventKind::ToolCall,
        started_at: time(1_735_787_045_123_456),
        finished_at: time(1_735_787_045_223_456),
        channel: "mcp".into(),
        agent: Some("billing-bot".into()),
        user: Some("alice@example.com".into()),
        task: Some("task-42".into()),
        session: Some("sess-7".into()),
        operator: Some("ops".into()),
        action: Some("payments.refund".into()),
        mode: Some(Mode::Execute),
        bundle_hash: "b3f1c2".into(),
        verdict: Verdict::Allow,
        policies: vec!["refunds-small".into(), "default".into()],
        reason: Some("within limit".into()),
        outcome: Outcome::Ok,
        upstream_latency_us: Some(1234),
        args_digest: Some("aa".repeat(32)),
        result_digest: Some("bb".repeat(32)),
        approvers: vec!["bob".into()],
        findings: vec![Finding {
            kind: "dlp.ssn".into(),
            location: "result".into(),
            count: 2,
            action: "redacted".into(),
        }],
    }
}

/// The `i`-th event of a deterministic log: distinct ids, varied fields.
pub fn series_event(i: u64) -> AuditEvent {
    let mut e = full_event();
    e.id = format!("0190f5c6-7d7e-7a3b-9c1d-{i:012x}");
    e.correlation_id = format!("corr-{}", i / 3);
    e.started_at = time(1_735_787_045_000_000 + i as i64 * 1_000);
    e.finished_at = time(1_735_787_045_000_500 + i as i64 * 1_000);
    e.outcome = [Outcome::Ok, Outcome::Denied, Outcome::Failed][(i % 3) as usize];
    e.verdict = [Verdict::Allow, Verdict::Deny, Verdict::None][(i % 3) as usize];
    e.upstream_latency_us = i.is_multiple_of(2).then_some(i * 7);
    e.findings.truncate((i % 2) as usize);
    e
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._@-]{0,12}",
        proptest::collection::vec(any::<char>(), 0..10).prop_map(String::from_iter),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(text(), 0..3)
}

/// Any time from year 0001 to 9999, with nanoseconds.
fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_135_596_800i64..253_402_300_799, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| Utc.timestamp_opt(secs, nanos).single().expect("in range"))
}

fn finding() -> impl Strategy<Value = Finding> {
    (text(), text(), any::<u32>(), text()).prop_map(|(kind, location, count, action)| Finding {
        kind,
        location,
        count,
        action,
    })
}

pub fn arb_event() -> impl Strategy<Value = AuditEvent> {
    let ids = (text(), text(), opt_text(), any_time(), any_time(), text());
    let who = (
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
    );
    let what = (
        prop_oneof![
            Just(EventKind::ToolCall),
            Just(EventKind::AuthFailure),
            Just(EventKind::Admin)
        ],
        proptest::option::of(prop_oneof![
            Just(Mode::ReadOnly),
            Just(Mode::Suggest),
            Just(Mode::Sandbox),
            Just(Mode::Execute)
        ]),
        text(),
        prop_oneof![
            Just(Verdict::Allow),
            Just(Verdict::Deny),
            Just(Verdict::None)
        ],
        texts(),
        opt_text(),
    );
    let how = (
        prop_oneof![
            Just(Outcome::Ok),
            Just(Outcome::ToolError),
            Just(Outcome::Denied),
            Just(Outcome::Rejected),
            Just(Outcome::Failed),
            Just(Outcome::Proposed),
            Just(Outcome::Pending)
        ],
        proptest::option::of(any::<u64>()),
        opt_text(),
        opt_text(),
        texts(),
        proptest::collection::vec(finding(), 0..3),
    );
    (ids, who, what, how).prop_map(|(ids, who, what, how)| {
        let (id, correlation_id, parent_id, started_at, finished_at, channel) = ids;
        let (agent, user, task, session, operator, action) = who;
        let (kind, mode, bundle_hash, verdict, policies, reason) = what;
        let (outcome, upstream_latency_us, args_digest, result_digest, approvers, findings) = how;
        AuditEvent {
            id,
            correlation_id,
            parent_id,
            kind,
            started_at,
            finished_at,
            channel,
            agent,
            user,
            task,
            session,
            operator,
            action,
            mode,
            bundle_hash,
            verdict,
            policies,
            reason,
            outcome,
            upstream_latency_us,
            args_digest,
            result_digest,
            approvers,
            findings,
        }
    })
}
