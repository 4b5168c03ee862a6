//! The SQLite writer's commits, made with direct SQLite calls on the writer's own thread.
//!
//! Through sqlx every statement is a round trip to the driver's worker thread; a call's batch
//! (begin, events, evidence, commit) took four, each two thread wake-ups, and on a small
//! virtual machine the wake-ups cost more than the inserts. The writer is a single thread
//! that does nothing but commit, so it may block: it opens its own connection to the file with
//! `rusqlite` (which links the same SQLite library as sqlx, so both see one set of file locks)
//! and runs the whole batch in one go. An in-memory database exists only inside the pool's one
//! connection; the writer borrows that connection's handle for each batch instead, through
//! sqlx's `lock_handle`, which is the driver's own way to make direct SQLite calls.

use std::path::Path;
use std::sync::LazyLock;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};
use sqlx::SqlitePool;
use warden_core::session::SessionCall;
use warden_core::store::{EvidenceRecord, StoreError};

use super::EVENT_COLUMN_NAMES;
use crate::StoreOptions;
use crate::codec::{EventRow, time_text};
use crate::error::db_error;
use crate::evidence::EVIDENCE_COLUMNS;
use crate::session::marks;
use crate::writer::SyncMode;

/// The inserts, built once: every event and evidence record of the log runs one of them.
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events ({EVENT_COLUMN_NAMES}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    )
});
static INSERT_EVIDENCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO evidence ({EVIDENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    )
});

/// The connection the writer commits with.
pub(super) enum WriterConnection {
    /// A file database: the writer's own connection.
    Own(Connection),
    /// An in-memory database: the pool's one connection, borrowed for each batch.
    Pool(SqlitePool),
}

/// Open the writer's connection to the database file at `path`, configured as the pool's are
/// (busy timeout, foreign keys, secure delete) with a larger page cache. The database must
/// exist and be migrated.
pub(super) fn open_writer_connection(
    path: &Path,
    options: &StoreOptions,
) -> Result<Connection, StoreError> {
    let fail = |e: rusqlite::Error| {
        StoreError::Database(format!(
            "opening the SQLite writer connection to {}: {e}",
            path.display()
        ))
    };
    // No mutex: the connection moves to the writer's thread and is used by it alone.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    conn.busy_timeout(options.busy_timeout).map_err(fail)?;
    for (pragma, value) in [
        ("foreign_keys", "ON"),
        ("secure_delete", "ON"),
        ("cache_size", "-16384"),
        ("synchronous", "FULL"),
    ] {
        conn.pragma_update(None, pragma, value).map_err(fail)?;
    }
    Ok(conn)
}

/// Set `conn`'s `synchronous` level.
pub(super) fn set_sync(conn: &Connection, sync: SyncMode) -> Result<(), StoreError> {
    let level = match sync {
        SyncMode::Durable => "FULL",
        SyncMode::Deferred => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level)
        .map_err(|e| sql_error(e, "setting the writer's synchronous level"))
}

/// Run `f` on the pool's connection, locked out of the driver's worker for the duration.
pub(super) async fn with_pool_connection<T>(
    pool: &SqlitePool,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut pooled = pool
        .acquire()
        .await
        .map_err(|e| db_error(e, "taking the writer connection"))?;
    let mut handle = pooled
        .lock_handle()
        .await
        .map_err(|e| db_error(e, "locking the writer connection"))?;
    // SAFETY: the handle stays valid and is used by no one else while `handle` is held, which
    // outlives `conn`; `from_handle` does not close it when `conn` is dropped.
    let conn = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(|e| sql_error(e, "borrowing the writer connection"))?;
    let result = f(&conn);
    drop(conn);
    drop(handle);
    result
}

/// Commit `rows` in one transaction: the events with `seq`s from `next_seq` on (read from the
/// table when unknown), their evidence records and session counts. Returns the first event's
/// `seq` (`None` if there is no event and it was not known) and the number of events. Nothing
/// is committed on error; a `seq` another process took is a [`StoreError::Conflict`].
pub(super) fn commit_rows(
    conn: &Connection,
    rows: &[super::SqliteWrite],
    next_seq: Option<i64>,
) -> Result<(Option<i64>, i64), StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(|e| sql_error(e, "starting the event transaction"))?;
    let events = rows.iter().filter_map(super::SqliteWrite::event);
    let count = rows.iter().filter(|r| r.event().is_some()).count() as i64;
    let first = match (next_seq, count) {
        (Some(next), _) => Some(next),
        (None, 0) => None,
        (None, _) => Some(next_seq_in(&tx)?),
    };
    if let Some(first) = first {
        for (seq, event) in (first..).zip(events) {
            insert_event(&tx, seq, event)?;
        }
    }
    for record in rows.iter().flat_map(super::SqliteWrite::evidence) {
        insert_evidence(&tx, record)?;
    }
    for call in rows.iter().filter_map(super::SqliteWrite::session) {
        write_session_call(&tx, call)?;
    }
    tx.commit().map_err(|e| sql_error(e, "committing events"))?;
    Ok((first, count))
}

/// The `seq` after the last committed event.
fn next_seq_in(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT coalesce(max(seq) + 1, 0) FROM events")
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(|e| sql_error(e, "reading the next seq"))
}

fn insert_event(conn: &Connection, seq: i64, row: &EventRow) -> Result<(), StoreError> {
    conn.prepare_cached(&INSERT_EVENT)
        .and_then(|mut s| {
            s.execute(params![
                seq,
                row.id,
                row.correlation_id,
                row.parent_id,
                row.kind,
                time_text(row.started_at),
                time_text(row.finished_at),
                row.agent,
                row.user,
                row.task,
                row.action,
                row.verdict,
                row.outcome,
                row.canonical,
                row.leaf_hash.as_slice(),
            ])
        })
        .map_err(|e| sql_error(e, format_args!("inserting event {}", row.id)))?;
    Ok(())
}

fn insert_evidence(conn: &Connection, r: &EvidenceRecord) -> Result<(), StoreError> {
    let shredded = r.shredded_at.is_some();
    conn.prepare_cached(&INSERT_EVIDENCE)
        .and_then(|mut s| {
            s.execute(params![
                r.event_id,
                r.artifact.as_str(),
                r.class,
                r.agent,
                time_text(r.created_at),
                r.expires_at.map(time_text),
                r.key_id,
                (!shredded).then_some(r.wrapped_key.as_slice()),
                (!shredded).then_some(r.ciphertext.as_slice()),
                r.shredded_at.map(time_text),
            ])
        })
        .map_err(|e| sql_error(e, crate::evidence::storing(r)))?;
    Ok(())
}

fn write_session_call(conn: &Connection, call: &SessionCall) -> Result<(), StoreError> {
    let SessionCall {
        agent,
        session,
        update,
    } = call;
    let fail = |e| {
        sql_error(
            e,
            format_args!("recording a call in session `{session}` of agent `{agent}`"),
        )
    };
    let at = time_text(update.at);
    conn.prepare_cached(
        "INSERT INTO sessions (agent, session, started_at, updated_at) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (agent, session) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![agent, session, at]))
    .map_err(fail)?;
    conn.prepare_cached(
        "INSERT INTO session_tools (agent, session, tool, calls) VALUES (?1, ?2, ?3, 1) \
         ON CONFLICT (agent, session, tool) DO UPDATE SET calls = session_tools.calls + 1",
    )
    .and_then(|mut s| s.execute(params![agent, session, update.tool]))
    .map_err(fail)?;
    let mut mark = conn
        .prepare_cached(
            "INSERT INTO session_marks (agent, session, kind, name) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
        )
        .map_err(fail)?;
    for (kind, name) in marks(update) {
        mark.execute(params![agent, session, kind, name])
            .map_err(fail)?;
    }
    Ok(())
}

/// A SQLite error, with what we were doing. Uniqueness violations become `Conflict`.
fn sql_error(err: rusqlite::Error, context: impl std::fmt::Display) -> StoreError {
    let unique = matches!(
        &err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == ErrorCode::ConstraintViolation
                && matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
    );
    if unique {
        StoreError::Conflict(format!("{context}: {err}"))
    } else {
        StoreError::Database(format!("{context}: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use warden_core::event::{AuditEvent, EventKind};
    use warden_core::store::Artifact;

    use super::*;
    use crate::sqlite::{SqliteStore, SqliteWrite};

    /// A migrated database file and the writer's connection to it.
    async fn migrated() -> Result<(tempfile::TempDir, Connection), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let path = dir.path().join("w.db");
        let options = StoreOptions::default();
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()), &options).await?;
        store.close().await;
        let conn = open_writer_connection(&path, &options)?;
        Ok((dir, conn))
    }

    fn event_row() -> Result<EventRow, StoreError> {
        EventRow::from_event(&AuditEvent::begin(EventKind::ToolCall, "mcp", None))
    }

    fn evidence_of(event: &EventRow) -> EvidenceRecord {
        EvidenceRecord {
            event_id: event.id.clone(),
            artifact: Artifact::Result,
            class: "internal".into(),
            agent: Some("bot".into()),
            created_at: Utc::now(),
            expires_at: None,
            key_id: "k1".into(),
            wrapped_key: vec![1; 40],
            ciphertext: vec![2; 64],
            shredded_at: None,
        }
    }

    fn call(event: EventRow) -> SqliteWrite {
        let evidence = evidence_of(&event);
        SqliteWrite::Call(Box::new((
            event,
            warden_core::store::CallWrites {
                evidence: vec![evidence],
                session: None,
            },
        )))
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(-1)
    }

    #[tokio::test]
    async fn the_writer_connection_waits_for_locks_and_starts_durable() -> Result<(), StoreError> {
        let (_dir, conn) = migrated().await?;
        let pragma = |name: &str| -> i64 {
            conn.pragma_query_value(None, name, |r| r.get(0))
                .unwrap_or(-1)
        };
        assert_eq!(pragma("busy_timeout"), 5000);
        assert_eq!(pragma("foreign_keys"), 1);
        assert_eq!(pragma("secure_delete"), 1);
        assert_eq!(pragma("synchronous"), 2, "FULL");
        set_sync(&conn, SyncMode::Deferred)?;
        assert_eq!(pragma("synchronous"), 1, "NORMAL");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(|e| sql_error(e, "journal_mode"))?;
        assert_eq!(mode, "wal");
        Ok(())
    }

    #[tokio::test]
    async fn events_take_contiguous_seqs_after_the_last_one_in_the_table() -> Result<(), StoreError>
    {
        let (_dir, conn) = migrated().await?;
        let rows = vec![SqliteWrite::Event(event_row()?), call(event_row()?)];
        assert_eq!(commit_rows(&conn, &rows, None)?, (Some(0), 2));
        let more = vec![SqliteWrite::Event(event_row()?)];
        assert_eq!(commit_rows(&conn, &more, None)?, (Some(2), 1));
        assert_eq!(count(&conn, "events"), 3);
        assert_eq!(count(&conn, "evidence"), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_seq_taken_elsewhere_is_a_conflict_and_nothing_of_the_batch_commits()
    -> Result<(), StoreError> {
        let (_dir, conn) = migrated().await?;
        commit_rows(&conn, &[call(event_row()?)], Some(0))?;
        // A writer that still believes seq 0 is free: its event and evidence both roll back.
        let stale = commit_rows(&conn, &[call(event_row()?)], Some(0));
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
        assert_eq!(count(&conn, "events"), 1);
        assert_eq!(count(&conn, "evidence"), 1);
        Ok(())
    }
}
