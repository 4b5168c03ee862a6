//! Sessions (what `context.session` shows policies) and shadow-policy differences.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use warden_core::session::{SessionUpdate, ShadowDiff, UNTRUSTED_OUTPUT};
use warden_store::WardenStore;

use crate::harness::Db;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 250_000)
        .single()
        .expect("a valid time")
}

fn call(tool: &str, classes: &[&str], findings: &[&str], secs: i64) -> SessionUpdate {
    SessionUpdate {
        tool: tool.to_owned(),
        classes: classes.iter().map(|c| (*c).to_owned()).collect(),
        findings: findings.iter().map(|f| (*f).to_owned()).collect(),
        at: t(secs),
    }
}

pub async fn a_session_accumulates_tools_classes_and_findings_and_survives_reopen(db: Db) {
    let store = db.store.clone();
    assert_eq!(store.session("bot", "id:s1").await.expect("read"), None);
    store
        .record_session_call(
            "bot",
            "id:s1",
            &call("email.read_inbox", &["internal"], &[UNTRUSTED_OUTPUT], 0),
        )
        .await
        .expect("record");
    store
        .record_session_call(
            "bot",
            "id:s1",
            &call(
                "crm.get_customer",
                &["confidential", "internal"],
                &["injection.role_marker"],
                1,
            ),
        )
        .await
        .expect("record");
    let after = store
        .record_session_call("bot", "id:s1", &call("email.read_inbox", &[], &[], 2))
        .await
        .expect("record");
    assert_eq!(after.calls(), 3);
    assert_eq!(after.tools["email.read_inbox"], 2);
    assert_eq!(after.tools["crm.get_customer"], 1);
    assert_eq!(
        after.classes.iter().map(String::as_str).collect::<Vec<_>>(),
        ["confidential", "internal"]
    );
    assert!(after.untrusted());
    assert_eq!(after.started_at, Some(t(0)));
    assert_eq!(after.updated_at, Some(t(2)));
    // Sessions are per agent: another agent with the same session id starts empty.
    assert_eq!(
        store.session("other-bot", "id:s1").await.expect("read"),
        None
    );
    store.close().await;

    let reopened = db.open_another().await;
    assert_eq!(
        reopened.session("bot", "id:s1").await.expect("read"),
        Some(after)
    );
    reopened.close().await;
}

pub async fn session_counts_add_up_when_two_replicas_record_at_once(db: Db) {
    let a = db.store.clone();
    let b = db.open_another().await;
    let mut tasks = Vec::new();
    for i in 0..20i64 {
        let store: Arc<dyn WardenStore> = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let class = format!("c{}", i % 3);
            store
                .record_session_call("bot", "mcp:m", &call("payments.refund", &[&class], &[], i))
                .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("record");
    }
    let s = a
        .session("bot", "mcp:m")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(s.tools["payments.refund"], 20, "no count is lost");
    assert_eq!(s.classes.len(), 3);
    assert!(!s.untrusted());
    b.close().await;
    a.close().await;
}

fn diff(event: &str, tool: &str, secs: i64) -> ShadowDiff {
    ShadowDiff {
        event_id: event.to_owned(),
        at: t(secs),
        agent: "refund-bot".into(),
        user: Some("carol".into()),
        tool: tool.to_owned(),
        active: "allow".into(),
        active_policies: vec!["finance-refunds".into()],
        shadow: "deny".into(),
        shadow_policies: vec!["no-refunds".into(), "x".into()],
        shadow_error: None,
        active_bundle: "aa".repeat(32),
        shadow_bundle: "bb".repeat(32),
    }
}

pub async fn shadow_differences_round_trip_in_order_and_filter_by_time(db: Db) {
    let store = db.store.clone();
    let first = diff("e1", "payments.refund", 0);
    let mut second = diff("e2", "email.send", 10);
    second.shadow = "error".into();
    second.shadow_policies = Vec::new();
    second.shadow_error = Some("policy p failed".into());
    second.user = None;
    store.insert_shadow_diff(&first).await.expect("insert");
    store.insert_shadow_diff(&second).await.expect("insert");
    assert_eq!(
        store.shadow_diffs(None, 100).await.expect("list"),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        store.shadow_diffs(Some(t(5)), 100).await.expect("list"),
        vec![second]
    );
    assert_eq!(
        store.shadow_diffs(None, 1).await.expect("list"),
        vec![first]
    );
    store.close().await;
}
