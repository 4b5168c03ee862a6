//! The store test suite, run against SQLite (a temp file) and PostgreSQL (a fresh schema per
//! test; `WARDEN_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
//! PostgreSQL must be reachable: these tests fail, never skip, without it.

mod harness;
mod scenarios;

use harness::{Kind, run};
use warden_store::StoreOptions;

/// One `#[tokio::test]` per backend and scenario.
macro_rules! suite {
    ($backend:ident, $kind:expr, [$($scenario:ident $(($options:expr))?),* $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $scenario() {
                    #[allow(unused_mut, unused_assignments)]
                    let mut options = StoreOptions::default();
                    $(options = $options;)?
                    run($kind, options, scenarios::$scenario).await;
                }
            )*
        }
    };
}

fn batch_of_16() -> StoreOptions {
    StoreOptions {
        batch_max: 16,
        ..StoreOptions::default()
    }
}

macro_rules! both_backends {
    ($($rest:tt)*) => {
        suite!(sqlite, Kind::Sqlite, [$($rest)*]);
        suite!(postgres, Kind::Postgres, [$($rest)*]);
    };
}

both_backends!(
    appended_event_reads_back_identical,
    concurrent_appends_get_contiguous_distinct_seqs,
    events_appended_together_share_disk_syncs,
    batch_max_bounds_a_transaction(batch_of_16()),
    recent_returns_newest_first,
    correlated_events_and_ranges_read_in_log_order,
    a_duplicate_event_fails_alone,
    a_revoked_key_is_found_but_marked_revoked,
    rotate_keeps_the_new_key_and_revokes_the_old_ones,
    a_duplicate_key_hash_is_a_conflict,
    a_task_grant_round_trips_with_its_tools_and_expiry,
    an_operator_token_round_trips_with_its_role,
    append_after_the_writer_stopped_fails_fast,
    two_writers_share_one_contiguous_log,
    // Action control.
    a_pause_holds_across_reopen,
    the_switch_version_moves_on_every_change,
    an_approval_round_trips_with_its_arguments,
    two_approvers_racing_with_n1_approve_exactly_once,
    n2_needs_two_distinct_approvers,
    one_approver_cannot_vote_twice,
    a_deny_vote_denies,
    an_approved_request_executes_exactly_once,
    pending_approvals_of_a_paused_agent_are_cancelled,
    an_event_can_be_undone_once,
    a_failed_undo_claim_is_taken_over_by_exactly_one_retry,
    usage_adds_up_atomically_under_concurrency,
    // Sessions and shadow policies.
    a_session_accumulates_tools_classes_and_findings_and_survives_reopen,
    session_counts_add_up_when_two_replicas_record_at_once,
    shadow_differences_round_trip_in_order_and_filter_by_time,
    // The tamper-evident log.
    appended_events_carry_their_canonical_bytes_and_leaf_hash,
    leaf_hashes_read_back_in_log_order,
    checkpoints_and_subtrees_round_trip_and_the_first_write_wins,
    rows_from_before_the_merkle_log_are_backfilled,
    the_log_reader_sees_rows_as_stored,
    a_leaf_scan_gives_every_row_once_in_order_hashed,
    // The evidence vault.
    evidence_records_round_trip_one_per_event_and_artifact,
    shredding_destroys_expired_keys_and_spares_held_and_unexpired_records,
    a_hold_scope_must_name_an_agent_or_an_event,
    bundle_policies_are_kept_by_hash_and_the_first_write_wins,
    child_events_are_found_by_parent_in_log_order,
    a_call_commits_its_event_result_and_session_count_together_or_not_at_all,
    write_ahead_evidence_is_committed_when_its_put_returns,
    // Tool pinning.
    the_first_pin_of_a_tool_wins_and_survives_reopen,
    a_changed_definition_is_approved_once_and_becomes_the_pin,
    a_change_that_went_away_is_cleared,
);

suite!(
    sqlite_only,
    Kind::Sqlite,
    [reopening_keeps_every_event_and_continues_the_seq]
);

#[tokio::test]
async fn an_in_memory_sqlite_store_works() {
    let store = warden_store::open("sqlite::memory:", StoreOptions::default())
        .await
        .expect("open in-memory store");
    let e =
        warden_core::event::AuditEvent::begin(warden_core::event::EventKind::Admin, "cli", None);
    assert_eq!(store.append(&e).await.expect("append"), 0);
    let mut e = e;
    warden_audit::canonical::normalize(&mut e);
    assert_eq!(store.event(&e.id).await.expect("read"), Some(e));
}

#[tokio::test]
async fn an_unknown_scheme_is_refused() {
    let err = warden_store::open("mysql://u:pw@h/db", StoreOptions::default())
        .await
        .err();
    assert!(matches!(
        err,
        Some(warden_core::store::StoreError::Database(_))
    ));
}

/// A SQLite database from before events stopped keeping a JSON copy: its rows (with the copy,
/// and one from before the Merkle log, with nothing else) survive the table's rebuild and read
/// back; new rows keep no copy.
#[tokio::test]
async fn sqlite_rows_with_a_json_copy_survive_the_migration_that_drops_it() {
    use std::str::FromStr;

    use sqlx::migrate::Migrator;
    use warden_core::event::{AuditEvent, EventKind};

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut before = Migrator::new(folder).await.expect("the migrations");
    let last = before
        .migrations
        .iter()
        .position(|m| m.description.contains("events body optional"))
        .expect("the migration under test");
    before.migrations = before.migrations[..last].to_vec().into();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .expect("url")
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
    before.run(&pool).await.expect("the earlier migrations");
    let old: Vec<AuditEvent> = (0..2)
        .map(|_| AuditEvent::begin(EventKind::Admin, "cli", None))
        .collect();
    for (seq, e) in old.iter().enumerate() {
        let canonical = warden_audit::canonical::canonical_bytes(e);
        sqlx::query(
            "INSERT INTO events (seq, id, correlation_id, kind, started_at, finished_at, \
             verdict, outcome, body, canonical, leaf_hash) \
             VALUES (?, ?, ?, 'admin', '2025-01-01T00:00:00.000000Z', \
             '2025-01-01T00:00:00.000000Z', 'none', 'failed', ?, ?, ?)",
        )
        .bind(seq as i64)
        .bind(&e.id)
        .bind(&e.correlation_id)
        .bind(serde_json::to_string(e).expect("json"))
        // The first row predates the Merkle log: only its JSON copy tells the event.
        .bind((seq == 1).then(|| canonical.clone()))
        .bind((seq == 1).then(|| warden_audit::merkle::leaf_hash(&canonical).to_vec()))
        .execute(&pool)
        .await
        .expect("an old row");
    }
    pool.close().await;

    let store = warden_store::open_warden_store(&url, StoreOptions::default())
        .await
        .expect("open and migrate");
    for e in &old {
        let mut want = e.clone();
        if e.id == old[1].id {
            warden_audit::canonical::normalize(&mut want);
        }
        assert_eq!(store.event(&e.id).await.expect("read"), Some(want));
    }
    let new = AuditEvent::begin(EventKind::Admin, "cli", None);
    assert_eq!(store.append(&new).await.expect("append"), 2);
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&url).await.expect("reopen");
    let bodies: Vec<Option<String>> = sqlx::query_scalar("SELECT body FROM events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("bodies");
    assert!(bodies[0].is_some() && bodies[1].is_some(), "{bodies:?}");
    assert_eq!(bodies[2], None, "a new row keeps no JSON copy");
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .fetch_all(&pool)
            .await
            .expect("indexes");
    assert_eq!(
        indexes,
        [
            "events_agent",
            "events_correlation",
            "events_parent",
            "events_started_at"
        ]
    );
    pool.close().await;
}
