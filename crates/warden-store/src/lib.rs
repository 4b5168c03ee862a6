//! Warden's persistence: the audit log, the credentials (agent keys, operator tokens, task
//! grants) and the action-control state (kill switches, approval requests and votes, undo links,
//! usage counters), in SQLite (one file, the embedded default) or PostgreSQL (shared by many
//! gateway replicas), behind the [`warden_core::store`] traits.
//!
//! # Invariants
//!
//! - **Committed before acknowledged.** [`EventLog::append`](warden_core::store::EventLog::append)
//!   returns `Ok(seq)` only after the transaction holding the event has committed and is on disk
//!   (SQLite: WAL mode, and an `fdatasync` of the WAL after the commit; PostgreSQL: a synced
//!   commit). Any failure returns an error, so the caller can refuse
//!   the call it was auditing (fail closed). If the writer task is gone, `append` returns
//!   [`StoreError::WriterStopped`] at once; it never hangs on a dead writer.
//! - **Contiguous sequence numbers.** Every committed event has a `seq`: 0, 1, 2, ... with no
//!   gaps and no reuse, in commit order. `seq` is the primary key: in PostgreSQL it is assigned
//!   inside the writing transaction from the table itself, under a table lock; the SQLite writer
//!   remembers the next one and, when it does not know it or its insert collides with a `seq`
//!   another process took, reads it from the table under `BEGIN IMMEDIATE`. So it stays
//!   contiguous with several writers (processes or replicas) on one database. It is the Merkle
//!   leaf index of the audit log.
//! - **Group commit.** Each store has one writer task (on SQLite, on a thread of its own).
//!   `append` queues the event; the writer takes one, drains whatever else is queued (up to
//!   [`StoreOptions::batch_max`]), writes them in one transaction and commits once, then answers
//!   every waiter (on SQLite, once a sync of the WAL that began after the commit returns). A failed commit answers every waiter
//!   of that batch with an error; if the failure is a uniqueness conflict (say, a duplicate event
//!   id), the events are retried one by one so only the offender fails.
//! - **Control decisions are atomic across replicas.** A vote locks its approval request for the
//!   whole decision (`SELECT ... FOR UPDATE` in PostgreSQL, `BEGIN IMMEDIATE` in SQLite), so
//!   racing approvers approve once; status moves are compare-and-set updates; undo claims and
//!   usage additions are single `INSERT ... ON CONFLICT` statements. Every switch change bumps a
//!   version in the same transaction, for replicas to poll.
//! - The log holds each event as its canonical bytes (`canonical`, the Merkle leaf's data), which
//!   reads decode, plus indexed copies of the fields queries filter on: digests of arguments and
//!   results, never raw payloads. Rows written before events stopped keeping a JSON copy of
//!   themselves (`body`) still have it, and rows older than `canonical` are read from it. Times
//!   are kept to the microsecond (RFC 3339 text in SQLite, `timestamptz` in PostgreSQL); finer
//!   digits are truncated.
//!
//! Queries are built at run time (`sqlx::query`), so building never needs a database; the schema
//! comes from the migrations embedded at compile time and run by [`open`].

pub mod audit;
mod codec;
mod control;
mod error;
mod evidence;
pub mod leaf_scan;
mod log_sync;
mod pins;
mod postgres;
mod session;
mod sqlite;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use warden_core::event::AuditEvent;
pub use warden_core::store::StoreError;
use warden_core::store::{AuditLogStore, Store};

pub use audit::{LogReader, RawCheckpoint, RawRecord};
pub use leaf_scan::{LeafChunk, LeafScan, ScanResult, ScannedLeaf};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
/// Connect options for [`PostgresStore::open_with`].
pub use sqlx::postgres::PgConnectOptions;
pub use writer::WriterStats;

/// How a store is opened. Build with `StoreOptions { batch_max: 64, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The most events the writer puts in one transaction (at least 1).
    pub batch_max: usize,
    /// Size of the connection pool for reads and credential writes. The audit writer has one
    /// more connection of its own. In-memory SQLite always uses a single connection.
    pub max_connections: u32,
    /// How long a statement waits for another SQLite writer's lock before failing.
    pub busy_timeout: Duration,
    /// How long an operation waits for a free pooled connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            batch_max: 1024,
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// An event with its position in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the log, from 0; the Merkle leaf index.
    pub seq: u64,
    pub event: AuditEvent,
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// [`Store`] plus what Warden's own tools (CLI, audit, server lifecycle) need beyond the traits
/// the gateway uses. Both [`SqliteStore`] and [`PostgresStore`] implement it; an
/// `Arc<dyn WardenStore>` coerces to `Arc<dyn Store>`.
#[async_trait]
pub trait WardenStore: Store + AuditLogStore {
    fn backend(&self) -> Backend;
    /// Events of one request chain, in log order.
    async fn events_by_correlation(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The number of committed events, which is also the next `seq` (the Merkle tree size).
    async fn event_count(&self) -> Result<u64, StoreError>;
    /// Events with `from_seq <= seq < to_seq`, in log order.
    async fn events_range(
        &self,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// One event with its `seq`, by event id.
    async fn stored_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError>;
    /// Counters of the group-commit writer.
    fn writer_stats(&self) -> WriterStats;
    /// Stop the writer (events already queued are committed and answered; later appends fail
    /// with [`StoreError::WriterStopped`]) and close the connections. Idempotent.
    async fn close(&self);
}

/// Open the store at `url`, run its migrations and start its writer.
///
/// `sqlite://path` (or `sqlite:path`) opens or creates a file; `sqlite::memory:` a private
/// in-memory database (for tests); `postgres://` or `postgresql://` a PostgreSQL database.
/// Must be called inside a Tokio runtime (the writer is a task on it).
pub async fn open(url: &str, options: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = open_warden_store(url, options).await?;
    Ok(store)
}

/// [`open`], keeping the [`WardenStore`] extras.
pub async fn open_warden_store(
    url: &str,
    options: StoreOptions,
) -> Result<Arc<dyn WardenStore>, StoreError> {
    match backend_of(url)? {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::open(url, &options).await?)),
        Backend::Postgres => Ok(Arc::new(PostgresStore::open(url, &options).await?)),
    }
}

/// The backend a URL names, by its scheme.
pub fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        // Never echo the URL: it may hold a password.
        _ => Err(StoreError::Database(format!(
            "unsupported database URL scheme `{scheme}` (expected sqlite:, postgres: or postgresql:)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(backend_of("sqlite://warden.db").ok(), Some(Backend::Sqlite));
        assert_eq!(backend_of("sqlite::memory:").ok(), Some(Backend::Sqlite));
        assert_eq!(
            backend_of("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            backend_of("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(backend_of("mysql://u:secret@h/db").is_err());
    }

    #[test]
    fn unsupported_url_error_hides_the_password() {
        let err = backend_of("mysql://u:secret@h/db")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| !e.contains("secret")));
    }
}
