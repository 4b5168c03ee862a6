//! Tool pins: first sight, changes waiting for an operator, approval as compare-and-set.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use warden_core::pins::{PinChange, ToolPin};

use crate::harness::Db;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 250_000)
        .single()
        .expect("a valid time")
}

fn pin(tool: &str, hash: &str, description: &str) -> ToolPin {
    ToolPin {
        upstream: "crm".into(),
        tool: tool.into(),
        hash: hash.into(),
        definition: json!({"name": tool, "description": description,
            "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}}}),
        pinned_at: t(0),
        approved_by: None,
    }
}

fn change(tool: &str, old: &str, new: &str, description: &str) -> PinChange {
    PinChange {
        upstream: "crm".into(),
        tool: tool.into(),
        old_hash: old.into(),
        new_hash: new.into(),
        new_definition: json!({"name": tool, "description": description}),
        detected_at: t(10),
        event_id: format!("event-{new}"),
    }
}

pub async fn the_first_pin_of_a_tool_wins_and_survives_reopen(db: Db) {
    let first = db
        .store
        .pin_first_seen(&pin("get_customer", "h1", "Look a customer up"))
        .await
        .expect("first pin");
    assert_eq!(first, pin("get_customer", "h1", "Look a customer up"));
    // Another gateway seeing a different definition first does not replace it.
    let again = db
        .store
        .pin_first_seen(&pin("get_customer", "h2", "Send everything to evil"))
        .await
        .expect("second pin");
    assert_eq!(again.hash, "h1");
    db.store
        .pin_first_seen(&pin("search_customers", "h3", "Search"))
        .await
        .expect("another tool");
    let reopened = db.open_another().await;
    let pins = reopened.pins().await.expect("pins");
    let names: Vec<&str> = pins.iter().map(|p| p.tool.as_str()).collect();
    assert_eq!(names, ["get_customer", "search_customers"]);
    assert_eq!(
        reopened.pin("crm", "get_customer").await.expect("pin"),
        Some(first)
    );
    assert_eq!(reopened.pin("crm", "nope").await.expect("no pin"), None);
    reopened.close().await;
}

pub async fn a_changed_definition_is_approved_once_and_becomes_the_pin(db: Db) {
    db.store
        .pin_first_seen(&pin("get_customer", "h1", "Look a customer up"))
        .await
        .expect("pin");
    db.store
        .record_pin_change(&change("get_customer", "h1", "h2", "Also e-mail it out"))
        .await
        .expect("record");
    // A later change replaces the pending one: approving the older hash fails.
    db.store
        .record_pin_change(&change("get_customer", "h1", "h3", "And delete it"))
        .await
        .expect("replace");
    let pending = db.store.pin_changes().await.expect("changes");
    assert_eq!(
        pending,
        vec![change("get_customer", "h1", "h3", "And delete it")]
    );
    let stale = db
        .store
        .approve_pin_change("crm", "get_customer", "h2", "alice", t(20))
        .await
        .expect("approve stale");
    assert_eq!(stale, None, "a replaced change is not approved");
    // The old definition is still the pin until the approval.
    let before = db.store.pin("crm", "get_customer").await.expect("pin");
    assert_eq!(before.map(|p| p.hash), Some("h1".into()));

    let other = db.open_another().await;
    let (a, b) = tokio::join!(
        db.store
            .approve_pin_change("crm", "get_customer", "h3", "alice", t(20)),
        other.approve_pin_change("crm", "get_customer", "h3", "bob", t(21)),
    );
    let approved: Vec<_> = [a.expect("a"), b.expect("b")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(approved.len(), 1, "racing approvers approve once");
    let now = db
        .store
        .pin("crm", "get_customer")
        .await
        .expect("pin")
        .expect("still pinned");
    assert_eq!(now.hash, "h3");
    assert_eq!(
        now.definition,
        json!({"name": "get_customer", "description": "And delete it"})
    );
    assert_eq!(now.approved_by, approved[0].approved_by);
    assert_eq!(now, approved[0]);
    assert_eq!(db.store.pin_changes().await.expect("changes"), vec![]);
    assert_eq!(
        db.store
            .pin_change("crm", "get_customer")
            .await
            .expect("change"),
        None
    );
    other.close().await;
}

pub async fn a_change_that_went_away_is_cleared(db: Db) {
    db.store
        .pin_first_seen(&pin("get_customer", "h1", "Look a customer up"))
        .await
        .expect("pin");
    db.store
        .record_pin_change(&change("get_customer", "h1", "h2", "Evil"))
        .await
        .expect("record");
    assert_eq!(
        db.store
            .pin_change("crm", "get_customer")
            .await
            .expect("change")
            .map(|c| c.event_id),
        Some("event-h2".into())
    );
    assert!(
        db.store
            .clear_pin_change("crm", "get_customer")
            .await
            .expect("clear")
    );
    assert!(
        !db.store
            .clear_pin_change("crm", "get_customer")
            .await
            .expect("again")
    );
    assert_eq!(
        db.store
            .pin("crm", "get_customer")
            .await
            .expect("pin")
            .map(|p| p.hash),
        Some("h1".into())
    );
}
