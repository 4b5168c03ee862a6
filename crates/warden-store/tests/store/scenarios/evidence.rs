//! The evidence vault's records and legal holds, policy bundles by hash, and linked events.

use chrono::{DateTime, Duration, TimeZone, Utc};
use warden_core::store::{Artifact, EvidenceRecord, LegalHold, StoreError};

use crate::harness::Db;
use crate::scenarios::event;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 250_000)
        .single()
        .expect("a valid time")
}

fn record(
    event_id: &str,
    artifact: Artifact,
    class: &str,
    agent: &str,
    expires: Option<i64>,
) -> EvidenceRecord {
    EvidenceRecord {
        event_id: event_id.to_owned(),
        artifact,
        class: class.to_owned(),
        agent: Some(agent.to_owned()),
        created_at: t(0),
        expires_at: expires.map(t),
        key_id: "0011223344556677".into(),
        wrapped_key: vec![1, 2, 3, 4],
        ciphertext: format!("sealed {event_id} {}", artifact.as_str()).into_bytes(),
        shredded_at: None,
    }
}

fn hold(id: &str, scope: &str) -> LegalHold {
    LegalHold {
        id: id.to_owned(),
        scope: scope.to_owned(),
        reason: "litigation".into(),
        operator: "auditor@example.com".into(),
        created_at: t(5),
    }
}

pub async fn evidence_records_round_trip_one_per_event_and_artifact(db: Db) {
    let s = &db.store;
    let args = record("e1", Artifact::Arguments, "regulated", "bot", Some(100));
    let result = record("e1", Artifact::Result, "internal", "bot", None);
    s.put_evidence(&result).await.expect("put result");
    s.put_evidence(&args).await.expect("put arguments");
    assert_eq!(
        s.evidence("e1", Artifact::Arguments).await.expect("read"),
        Some(args.clone())
    );
    assert_eq!(
        s.evidence("e1", Artifact::Approval).await.expect("read"),
        None
    );
    assert_eq!(
        s.evidence_of_event("e1").await.expect("read all"),
        vec![args.clone(), result],
        "records of an event come back by artifact"
    );
    let again = s.put_evidence(&args).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        s.evidence_key_ids().await.expect("key ids"),
        vec!["0011223344556677".to_owned()]
    );
}

pub async fn shredding_destroys_expired_keys_and_spares_held_and_unexpired_records(db: Db) {
    let s = &db.store;
    let expired = record("e1", Artifact::Result, "regulated", "bot", Some(10));
    let later = record("e1", Artifact::Arguments, "internal", "bot", Some(1000));
    let forever = record("e2", Artifact::Result, "internal", "bot", None);
    let held_by_event = record("e3", Artifact::Result, "regulated", "bot", Some(10));
    let held_by_agent = record("e4", Artifact::Result, "regulated", "other-bot", Some(10));
    for r in [&expired, &later, &forever, &held_by_event, &held_by_agent] {
        s.put_evidence(r).await.expect("put");
    }
    s.insert_hold(&hold("h1", "event:e3"))
        .await
        .expect("hold event");
    s.insert_hold(&hold("h2", "agent:other-bot"))
        .await
        .expect("hold agent");
    assert_eq!(s.holds().await.expect("holds").len(), 2);

    let now = t(20);
    assert_eq!(s.held_expired(now).await.expect("held"), 2);
    assert_eq!(s.shred_expired(now).await.expect("shred"), 1);
    let shredded = s
        .evidence("e1", Artifact::Result)
        .await
        .expect("read")
        .expect("row kept");
    assert_eq!(shredded.shredded_at, Some(now));
    assert!(shredded.wrapped_key.is_empty() && shredded.ciphertext.is_empty());
    assert_eq!(
        shredded.class, "regulated",
        "the row still says what was erased"
    );
    for (id, artifact) in [
        ("e1", Artifact::Arguments),
        ("e2", Artifact::Result),
        ("e3", Artifact::Result),
        ("e4", Artifact::Result),
    ] {
        let r = s.evidence(id, artifact).await.expect("read").expect("row");
        assert!(
            r.shredded_at.is_none() && !r.wrapped_key.is_empty(),
            "{id} must be kept"
        );
    }
    assert_eq!(
        s.shred_expired(now).await.expect("shred again"),
        0,
        "shredding is idempotent"
    );

    // Releasing the holds lets the next run shred what they kept.
    assert!(s.remove_hold("h1").await.expect("release"));
    assert!(!s.remove_hold("h1").await.expect("release twice"));
    assert_eq!(s.shred_expired(t(30)).await.expect("shred"), 1);
    assert!(
        s.evidence("e3", Artifact::Result)
            .await
            .expect("read")
            .expect("row")
            .shredded_at
            .is_some()
    );
    assert_eq!(s.evidence_key_ids().await.expect("ids").len(), 1);
}

pub async fn a_hold_scope_must_name_an_agent_or_an_event(db: Db) {
    let bad = db.store.insert_hold(&hold("h1", "everything")).await;
    assert!(matches!(bad, Err(StoreError::Conflict(_))), "{bad:?}");
    let empty = db.store.insert_hold(&hold("h2", "agent:")).await;
    assert!(empty.is_err());
    assert!(db.store.holds().await.expect("holds").is_empty());
}

pub async fn bundle_policies_are_kept_by_hash_and_the_first_write_wins(db: Db) {
    let s = &db.store;
    assert_eq!(s.bundle_policies("h").await.expect("read"), None);
    s.put_bundle_policies("h", "[1]").await.expect("put");
    s.put_bundle_policies("h", "[2]").await.expect("put again");
    assert_eq!(
        s.bundle_policies("h").await.expect("read").as_deref(),
        Some("[1]")
    );
}

pub async fn child_events_are_found_by_parent_in_log_order(db: Db) {
    let s = &db.store;
    let parent = event("bot");
    s.append(&parent).await.expect("append");
    let mut first = event("bot");
    first.parent_id = Some(parent.id.clone());
    let unrelated = event("bot");
    let mut second = event("bot");
    second.parent_id = Some(parent.id.clone());
    second.started_at = first.started_at - Duration::seconds(5);
    for e in [&first, &unrelated, &second] {
        s.append(e).await.expect("append");
    }
    let children = s.child_events(&parent.id).await.expect("children");
    let ids: Vec<&str> = children.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [first.id.as_str(), second.id.as_str()]);
    assert!(s.child_events(&first.id).await.expect("none").is_empty());
}

fn counted(agent: &str, session: &str, tool: &str) -> warden_core::session::SessionCall {
    warden_core::session::SessionCall {
        agent: agent.to_owned(),
        session: session.to_owned(),
        update: warden_core::session::SessionUpdate {
            tool: tool.to_owned(),
            classes: vec!["internal".into()],
            findings: Vec::new(),
            at: t(1),
        },
    }
}

pub async fn a_call_commits_its_event_result_and_session_count_together_or_not_at_all(db: Db) {
    use warden_core::store::CallWrites;
    let s = db.store;
    let first = event("bot");
    let writes = CallWrites {
        evidence: vec![record(&first.id, Artifact::Result, "internal", "bot", None)],
        session: Some(counted("bot", "id:s1", "crm.get_customer")),
    };
    s.append_call(&first, writes).await.expect("commit");
    assert!(s.event(&first.id).await.expect("read").is_some());
    assert!(
        s.evidence(&first.id, Artifact::Result)
            .await
            .expect("read")
            .is_some()
    );
    let session = s
        .session("bot", "id:s1")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(session.calls(), 1);

    // A second call whose result record collides fails whole: no event, no count. Its
    // neighbours in the same group commit are not dragged down with it.
    let (clash, neighbour) = (event("bot"), event("bot"));
    let clashing = CallWrites {
        evidence: vec![record(&first.id, Artifact::Result, "internal", "bot", None)],
        session: Some(counted("bot", "id:s1", "crm.get_customer")),
    };
    let fine = CallWrites {
        evidence: vec![record(
            &neighbour.id,
            Artifact::Result,
            "internal",
            "bot",
            None,
        )],
        session: Some(counted("bot", "id:s2", "crm.get_customer")),
    };
    let (failed, ok) = tokio::join!(
        s.append_call(&clash, clashing),
        s.append_call(&neighbour, fine)
    );
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    ok.expect("the neighbour commits");
    assert_eq!(s.event(&clash.id).await.expect("read"), None);
    let session = s
        .session("bot", "id:s1")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(session.calls(), 1, "the failed call was not counted");
    assert!(s.event(&neighbour.id).await.expect("read").is_some());
    assert!(
        s.evidence(&neighbour.id, Artifact::Result)
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        s.session("bot", "id:s2")
            .await
            .expect("read")
            .map(|s| s.calls()),
        Some(1)
    );
}

pub async fn write_ahead_evidence_is_committed_when_its_put_returns(db: Db) {
    let args = record("e9", Artifact::Arguments, "internal", "bot", None);
    db.store.put_evidence_ahead(&args).await.expect("put");
    let other = db.open_another().await;
    assert_eq!(
        other
            .evidence("e9", Artifact::Arguments)
            .await
            .expect("read"),
        Some(args.clone()),
        "another connection sees it at once"
    );
    let again = db.store.put_evidence_ahead(&args).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}
