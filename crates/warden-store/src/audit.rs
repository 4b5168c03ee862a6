//! The audit log's Merkle side, shared by both backends, and [`LogReader`]: a read-only view of
//! a database for offline verification (`warden audit verify`), which neither migrates the
//! schema nor starts a writer.
//!
//! Rows are returned as stored, not judged: a verifier must see a missing leaf hash, a short
//! hash or an edited column exactly as it is, and decide for itself.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};
use warden_core::event::{AuditEvent, EventKind, Outcome, Verdict};
use warden_core::store::{LogHash, LogLeaf, StoreError};

use crate::codec::{event_from_body, hash_from_db, parse_time};
use crate::error::{corrupt, db_error, seq_from_db, seq_to_db};
use crate::leaf_scan::{self, LeafScan};
use crate::{Backend, backend_of};

/// Leaf hashes of `from <= seq < to` from `(seq, leaf_hash)` rows in seq order.
pub(crate) fn leaf_hashes_from_rows(
    from: u64,
    to: u64,
    rows: Vec<(i64, Option<Vec<u8>>)>,
) -> Result<Vec<LogHash>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for ((seq, hash), want) in rows.into_iter().zip(from..) {
        let got = seq_from_db(seq)?;
        if got != want {
            return Err(corrupt(
                format_args!("the event log at seq {want}"),
                format_args!("the next stored event has seq {got}: seqs are not contiguous"),
            ));
        }
        let hash = hash.ok_or_else(|| {
            corrupt(
                format_args!("event {seq}"),
                "it has no leaf hash (stored before the Merkle log; run the server once to fill it)",
            )
        })?;
        out.push(hash_from_db(
            &hash,
            format_args!("the leaf hash of event {seq}"),
        )?);
    }
    let want = to - from;
    if (out.len() as u64) < want {
        return Err(StoreError::NotFound(format!(
            "leaf hashes [{from}, {to}) (the log has only {} events from {from})",
            out.len()
        )));
    }
    Ok(out)
}

/// A `(seq, canonical, leaf_hash)` row of `events`.
pub(crate) type LeafRow = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// A `(seq, canonical, leaf_hash)` row as a [`LogLeaf`].
pub(crate) fn leaf_from_row(row: LeafRow) -> Result<LogLeaf, StoreError> {
    let (seq, canonical, hash) = row;
    let (Some(canonical), Some(hash)) = (canonical, hash) else {
        return Err(corrupt(
            format_args!("event {seq}"),
            "it has no canonical bytes or leaf hash",
        ));
    };
    Ok(LogLeaf {
        seq: seq_from_db(seq)?,
        leaf_hash: hash_from_db(&hash, format_args!("the leaf hash of event {seq}"))?,
        canonical,
    })
}

/// Subtree hashes from `(idx, hash)` rows: the contiguous run starting at `from`.
pub(crate) fn subtrees_from_rows(
    level: u32,
    from: u64,
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<Vec<LogHash>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for ((idx, hash), want) in rows.into_iter().zip(from..) {
        if seq_from_db(idx)? != want {
            break;
        }
        out.push(hash_from_db(
            &hash,
            format_args!("subtree hash (level {level}, index {idx})"),
        )?);
    }
    Ok(out)
}

/// One `events` row as stored, for a verifier.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The `seq` column (negative only if the table was tampered with).
    pub seq: i64,
    /// The `canonical` column.
    pub canonical: Option<Vec<u8>>,
    /// The `leaf_hash` column, any length.
    pub leaf_hash: Option<Vec<u8>>,
    /// The event as the JSON `body` column tells it, or why it does not decode; `None` where
    /// the row has no JSON copy (rows written since events stopped keeping one).
    pub body: Option<Result<AuditEvent, String>>,
    /// The event as the row's indexed columns tell it: the indexed columns (id, kind, times,
    /// agent, outcome, ...) laid over the event the row's JSON copy tells, else its canonical
    /// bytes; `Ok(None)` when there is nothing to lay them over (no JSON copy and canonical
    /// bytes that do not decode, which a verifier reports as such); or why they do not make an
    /// event.
    pub columns: Result<Option<AuditEvent>, String>,
}

/// One `checkpoints` row as stored.
#[derive(Debug, Clone)]
pub struct RawCheckpoint {
    pub size: i64,
    pub root: Vec<u8>,
    /// The signed note (the authority; `size` and `root` are copies).
    pub note: String,
    /// The compact range blob (32-byte hashes concatenated).
    pub nodes: Vec<u8>,
    pub created_at: String,
}

#[derive(Clone)]
enum ReaderPool {
    /// The pool, and the database file (which [`LogReader::scan_leaves`] opens itself).
    Sqlite(SqlitePool, PathBuf),
    Postgres(PgPool),
}

/// A read-only view of a Warden database's audit log. Clones share one connection pool, so a
/// verifier can read the next rows on one task while it checks the last ones on another.
#[derive(Clone)]
pub struct LogReader {
    pool: ReaderPool,
    read_only: bool,
}

/// What [`LogReader::leaf_records`] puts in the fields it does not read.
const NOT_READ: &str = "not read (only the Merkle leaf was read)";

const RECORD_COLUMNS: &str = "seq, canonical, leaf_hash, body, id, correlation_id, parent_id, \
     kind, started_at, finished_at, agent, \"user\", task, action, verdict, outcome";

/// Positions in [`RECORD_COLUMNS`]: rows are read by position, since a lookup by name searches
/// the column names for every value of every row.
mod col {
    pub const SEQ: usize = 0;
    pub const CANONICAL: usize = 1;
    pub const LEAF_HASH: usize = 2;
    pub const BODY: usize = 3;
    pub const ID: usize = 4;
    pub const CORRELATION_ID: usize = 5;
    pub const PARENT_ID: usize = 6;
    pub const KIND: usize = 7;
    pub const STARTED_AT: usize = 8;
    pub const FINISHED_AT: usize = 9;
    pub const AGENT: usize = 10;
    pub const USER: usize = 11;
    pub const TASK: usize = 12;
    pub const ACTION: usize = 13;
    pub const VERDICT: usize = 14;
    pub const OUTCOME: usize = 15;
}

impl LogReader {
    /// Open `url` (`sqlite://FILE` or `postgres://...`) without migrating or writing. SQLite is
    /// opened read-only; if that is impossible (a WAL that needs recovery after a crash needs
    /// write access), it is opened read-write without creating anything, and
    /// [`LogReader::read_only`] says so. PostgreSQL sessions run with
    /// `default_transaction_read_only = on`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        match backend_of(url)? {
            Backend::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(|e| db_error(e, "parsing the SQLite URL"))?
                    .create_if_missing(false);
                let file = connect.get_filename().to_owned();
                let read_only = connect.clone().read_only(true);
                match Self::sqlite(read_only).await {
                    Ok(pool) => Ok(Self {
                        pool: ReaderPool::Sqlite(pool, file),
                        read_only: true,
                    }),
                    Err(_) => Ok(Self {
                        pool: ReaderPool::Sqlite(Self::sqlite(connect).await?, file),
                        read_only: false,
                    }),
                }
            }
            Backend::Postgres => {
                let connect = PgConnectOptions::from_str(url)
                    .map_err(|e| db_error(e, "parsing the PostgreSQL URL"))?
                    .options([("default_transaction_read_only", "on")]);
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(connect)
                    .await
                    .map_err(|e| db_error(e, "connecting to PostgreSQL"))?;
                Ok(Self {
                    pool: ReaderPool::Postgres(pool),
                    read_only: true,
                })
            }
        }
    }

    async fn sqlite(connect: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect)
            .await
            .map_err(|e| db_error(e, "opening the SQLite database"))?;
        // Opening is lazy about the WAL; make sure the log can actually be read.
        sqlx::query("SELECT count(*) FROM checkpoints")
            .fetch_one(&pool)
            .await
            .map_err(|e| db_error(e, "reading the SQLite database"))?;
        Ok(pool)
    }

    /// Whether the database was opened read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Up to `limit` event rows with `seq >= from`, in seq order, with only what the Merkle log
    /// covers: `seq`, `canonical` and `leaf_hash` (`body` is `None` and `columns` says it was not
    /// read).
    /// Much cheaper to read than [`LogReader::records`]: nothing is decoded.
    pub async fn leaf_records(&self, from: u64, limit: u32) -> Result<Vec<RawRecord>, StoreError> {
        const SQLITE: &str =
            "SELECT seq, canonical, leaf_hash FROM events WHERE seq >= ? ORDER BY seq LIMIT ?";
        const PG: &str =
            "SELECT seq, canonical, leaf_hash FROM events WHERE seq >= $1 ORDER BY seq LIMIT $2";
        let from = seq_to_db(from)?;
        let limit = i64::from(limit);
        let rows: Vec<LeafRow> = match &self.pool {
            ReaderPool::Sqlite(pool, _) => {
                sqlx::query_as(SQLITE)
                    .bind(from)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
            ReaderPool::Postgres(pool) => {
                sqlx::query_as(PG)
                    .bind(from)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
        }
        .map_err(|e| db_error(e, "reading events"))?;
        Ok(rows
            .into_iter()
            .map(|(seq, canonical, leaf_hash)| RawRecord {
                seq,
                canonical,
                leaf_hash,
                body: None,
                columns: Err(NOT_READ.into()),
            })
            .collect())
    }

    /// Every event row with `from <= seq < end`, in seq order, with only what the Merkle log
    /// covers, each row's canonical bytes already hashed (see [`crate::leaf_scan`]). The
    /// readers run on threads (SQLite) or a task (PostgreSQL) of their own, a few chunks ahead
    /// of the receiver, and stop when it is dropped; an error ends the scan.
    pub fn scan_leaves(&self, from: u64, end: u64) -> LeafScan {
        match &self.pool {
            ReaderPool::Sqlite(_, file) => leaf_scan::scan_sqlite(file, self.read_only, from, end),
            ReaderPool::Postgres(pool) => leaf_scan::scan_postgres(pool.clone(), from, end),
        }
    }

    /// Up to `limit` event rows with `seq >= from`, in seq order.
    pub async fn records(&self, from: u64, limit: u32) -> Result<Vec<RawRecord>, StoreError> {
        let from = seq_to_db(from)?;
        let limit = i64::from(limit);
        match &self.pool {
            ReaderPool::Sqlite(pool, _) => {
                let sql = format!(
                    "SELECT {RECORD_COLUMNS} FROM events WHERE seq >= ? ORDER BY seq LIMIT ?"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(from)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| db_error(e, "reading events"))?;
                rows.iter().map(sqlite_record).collect()
            }
            ReaderPool::Postgres(pool) => {
                let sql = format!(
                    "SELECT {RECORD_COLUMNS} FROM events WHERE seq >= $1 ORDER BY seq LIMIT $2"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(from)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| db_error(e, "reading events"))?;
                rows.iter().map(pg_record).collect()
            }
        }
    }

    /// `max(seq) + 1`, or 0 for an empty log: where a verifier stops reading.
    pub async fn log_end(&self) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT coalesce(max(seq) + 1, 0) FROM events";
        let n: i64 = match &self.pool {
            ReaderPool::Sqlite(pool, _) => sqlx::query_scalar(SQL).fetch_one(pool).await,
            ReaderPool::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
        }
        .map_err(|e| db_error(e, "reading the log's size"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The number of event rows (not `max(seq) + 1`: a verifier counts what is there).
    pub async fn row_count(&self) -> Result<u64, StoreError> {
        let n: i64 = match &self.pool {
            ReaderPool::Sqlite(pool, _) => {
                sqlx::query_scalar("SELECT count(*) FROM events")
                    .fetch_one(pool)
                    .await
            }
            ReaderPool::Postgres(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM events")
                    .fetch_one(pool)
                    .await
            }
        }
        .map_err(|e| db_error(e, "counting events"))?;
        seq_from_db(n)
    }

    /// Stored subtree hashes at `level` with `from <= index < to`, as `(index, hash)` in index
    /// order: not trusted, a verifier authenticates them against a signed root.
    pub async fn subtree_hashes(
        &self,
        level: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        const SQLITE: &str = "SELECT idx, hash FROM audit_nodes WHERE level = ? AND idx >= ? \
             AND idx < ? ORDER BY idx";
        const PG: &str = "SELECT idx, hash FROM audit_nodes WHERE level = $1 AND idx >= $2 \
             AND idx < $3 ORDER BY idx";
        let (level, from, to) = (i64::from(level), seq_to_db(from)?, seq_to_db(to)?);
        match &self.pool {
            ReaderPool::Sqlite(pool, _) => {
                sqlx::query_as(SQLITE)
                    .bind(level)
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await
            }
            ReaderPool::Postgres(pool) => {
                sqlx::query_as(PG)
                    .bind(i32::try_from(level).unwrap_or(i32::MAX))
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await
            }
        }
        .map_err(|e| db_error(e, "reading subtree hashes"))
    }

    /// Every stored checkpoint, smallest size first.
    pub async fn checkpoints(&self) -> Result<Vec<RawCheckpoint>, StoreError> {
        const SQL: &str =
            "SELECT size, root, note, nodes, created_at FROM checkpoints ORDER BY size";
        match &self.pool {
            ReaderPool::Sqlite(pool, _) => {
                let rows = sqlx::query_as::<_, (i64, Vec<u8>, String, Vec<u8>, String)>(SQL)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| db_error(e, "reading checkpoints"))?;
                Ok(rows
                    .into_iter()
                    .map(|(size, root, note, nodes, created_at)| RawCheckpoint {
                        size,
                        root,
                        note,
                        nodes,
                        created_at,
                    })
                    .collect())
            }
            ReaderPool::Postgres(pool) => {
                let rows = sqlx::query_as::<_, (i64, Vec<u8>, String, Vec<u8>, DateTime<Utc>)>(SQL)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| db_error(e, "reading checkpoints"))?;
                Ok(rows
                    .into_iter()
                    .map(|(size, root, note, nodes, created_at)| RawCheckpoint {
                        size,
                        root,
                        note,
                        nodes,
                        created_at: crate::codec::time_text(created_at),
                    })
                    .collect())
            }
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            ReaderPool::Sqlite(pool, _) => pool.close().await,
            ReaderPool::Postgres(pool) => pool.close().await,
        }
    }
}

/// The indexed columns of an `events` row, each as text (times in RFC 3339).
struct Columns {
    id: String,
    correlation_id: String,
    parent_id: Option<String>,
    kind: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    agent: Option<String>,
    user: Option<String>,
    task: Option<String>,
    action: Option<String>,
    verdict: String,
    outcome: String,
}

/// The event the row tells beside its indexed columns: its JSON copy if it has one, else the
/// fields of its canonical bytes if they parse. Their canonical form is not checked here: a
/// verifier compares the re-encoded columns with the bytes, and decodes them strictly to name
/// any difference.
fn event_beside_columns(
    body: Option<&Result<AuditEvent, String>>,
    canonical: Option<&[u8]>,
) -> Result<Option<AuditEvent>, String> {
    match body {
        Some(body) => body.clone().map(Some),
        None => Ok(canonical.and_then(|c| warden_audit::canonical::decode_fields(c).ok())),
    }
}

/// `base` with the indexed columns laid over it.
fn event_from_columns(base: Option<AuditEvent>, c: Columns) -> Result<Option<AuditEvent>, String> {
    let Some(mut event) = base else {
        return Ok(None);
    };
    event.kind = enum_from_text::<EventKind>("kind", &c.kind)?;
    event.verdict = enum_from_text::<Verdict>("verdict", &c.verdict)?;
    event.outcome = enum_from_text::<Outcome>("outcome", &c.outcome)?;
    event.id = c.id;
    event.correlation_id = c.correlation_id;
    event.parent_id = c.parent_id;
    event.started_at = c.started_at;
    event.finished_at = c.finished_at;
    event.agent = c.agent;
    event.user = c.user;
    event.task = c.task;
    event.action = c.action;
    Ok(Some(event))
}

fn enum_from_text<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("column `{column}` holds {text:?}, which is not a known value"))
}

/// The `body` column decoded, if the row has one.
fn json_copy(seq: i64, body: Option<String>) -> Option<Result<AuditEvent, String>> {
    body.map(|b| event_from_body(seq, &b).map_err(|e| e.to_string()))
}

fn sqlite_record(row: &sqlx::sqlite::SqliteRow) -> Result<RawRecord, StoreError> {
    let get = |e: sqlx::Error| db_error(e, "decoding an event row");
    let seq: i64 = row.try_get(col::SEQ).map_err(get)?;
    let canonical: Option<Vec<u8>> = row.try_get(col::CANONICAL).map_err(get)?;
    let body = json_copy(seq, row.try_get(col::BODY).map_err(get)?);
    let base = event_beside_columns(body.as_ref(), canonical.as_deref());
    let started: String = row.try_get(col::STARTED_AT).map_err(get)?;
    let finished: String = row.try_get(col::FINISHED_AT).map_err(get)?;
    let columns = match (
        parse_time(&started, "started_at"),
        parse_time(&finished, "finished_at"),
    ) {
        (Ok(started_at), Ok(finished_at)) => Ok(Columns {
            id: row.try_get(col::ID).map_err(get)?,
            correlation_id: row.try_get(col::CORRELATION_ID).map_err(get)?,
            parent_id: row.try_get(col::PARENT_ID).map_err(get)?,
            kind: row.try_get(col::KIND).map_err(get)?,
            started_at,
            finished_at,
            agent: row.try_get(col::AGENT).map_err(get)?,
            user: row.try_get(col::USER).map_err(get)?,
            task: row.try_get(col::TASK).map_err(get)?,
            action: row.try_get(col::ACTION).map_err(get)?,
            verdict: row.try_get(col::VERDICT).map_err(get)?,
            outcome: row.try_get(col::OUTCOME).map_err(get)?,
        }),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    };
    Ok(RawRecord {
        seq,
        canonical,
        leaf_hash: row.try_get(col::LEAF_HASH).map_err(get)?,
        columns: columns.and_then(|c| event_from_columns(base?, c)),
        body,
    })
}

fn pg_record(row: &sqlx::postgres::PgRow) -> Result<RawRecord, StoreError> {
    let get = |e: sqlx::Error| db_error(e, "decoding an event row");
    let seq: i64 = row.try_get(col::SEQ).map_err(get)?;
    let canonical: Option<Vec<u8>> = row.try_get(col::CANONICAL).map_err(get)?;
    let body = json_copy(seq, row.try_get(col::BODY).map_err(get)?);
    let base = event_beside_columns(body.as_ref(), canonical.as_deref());
    let columns = Columns {
        id: row.try_get(col::ID).map_err(get)?,
        correlation_id: row.try_get(col::CORRELATION_ID).map_err(get)?,
        parent_id: row.try_get(col::PARENT_ID).map_err(get)?,
        kind: row.try_get(col::KIND).map_err(get)?,
        started_at: row.try_get(col::STARTED_AT).map_err(get)?,
        finished_at: row.try_get(col::FINISHED_AT).map_err(get)?,
        agent: row.try_get(col::AGENT).map_err(get)?,
        user: row.try_get(col::USER).map_err(get)?,
        task: row.try_get(col::TASK).map_err(get)?,
        action: row.try_get(col::ACTION).map_err(get)?,
        verdict: row.try_get(col::VERDICT).map_err(get)?,
        outcome: row.try_get(col::OUTCOME).map_err(get)?,
    };
    Ok(RawRecord {
        seq,
        canonical,
        leaf_hash: row.try_get(col::LEAF_HASH).map_err(get)?,
        columns: base.and_then(|base| event_from_columns(base, columns)),
        body,
    })
}
