//! The SQLite backend: one file in WAL mode.
//!
//! Reads and the few writes outside the writer (keys, tasks, checkpoints) use
//! `synchronous = FULL`: each such commit syncs the WAL. The writer's own connection commits with
//! `synchronous = NORMAL`, which in WAL mode writes the log without syncing it (the commit
//! survives a crash of the process at once), and its waiters are answered from the sync stage
//! ([`crate::log_sync`]) once an `fdatasync` of the WAL file that began after the commit has
//! returned: then the commit survives a crash of the machine too. Write-ahead batches (evidence
//! that an audit event will follow, see [`crate::writer`]) are answered without waiting for it.
//!
//! A batch of events alone is one `INSERT` statement, atomic by itself; a batch with other
//! writes (evidence, session counts) runs under `BEGIN IMMEDIATE` (the database write lock). The
//! writer remembers the next `seq`, and reads it from the table inside that transaction when it
//! does not know it or when its insert collides with a `seq` another process (say, a second
//! Warden on the same file) took, so two processes sharing the file still produce a contiguous
//! log.

mod audit;
mod control;
mod evidence;
mod pins;
mod session;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};
use warden_core::event::AuditEvent;
use warden_core::session::SessionCall;
use warden_core::store::{
    AgentKey, AuditLogStore, CallWrites, CredentialStore, EventLog, EvidenceRecord, OperatorRole,
    OperatorToken, StoreError, TaskGrant,
};

use crate::codec::{
    EventRow, event_from_body, parse_opt_time, parse_time, stored_event, stored_events, time_text,
};
use crate::error::{corrupt, db_error, migration_error, seq_from_db, seq_to_db};
use crate::log_sync::{LogSync, WalFileSync};
use crate::writer::{BatchSink, SyncMode, Writer, WriterStats};
use crate::{Backend, StoreOptions, StoredEvent, WardenStore};

/// Columns bound per event row by the batch insert.
const EVENT_COLUMNS: usize = 16;
/// Row slots of the multi-row INSERT statements (events, evidence): a batch of n rows takes the
/// smallest statement with at least n slots (the slots it leaves unbound are NULL and skipped),
/// so that one statement, one round trip to the driver's thread, inserts the whole batch, and
/// only a few statement shapes exist, each prepared once in the connection's cache. The largest
/// event statement is 16 × 256 binds, well under SQLite's 32766; a larger batch takes several.
const EVENT_SLOTS: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
/// The most rows one INSERT statement takes.
const MAX_SLOTS: usize = EVENT_SLOTS[EVENT_SLOTS.len() - 1];

const EVENT_COLUMN_NAMES: &str = "seq, id, correlation_id, parent_id, kind, started_at, \
     finished_at, agent, \"user\", task, action, verdict, outcome, body, canonical, leaf_hash";

/// The SQLite store.
pub struct SqliteStore {
    /// Reads and credential writes.
    pool: SqlitePool,
    /// The writer task's own connection, so readers can never starve audit commits (the same
    /// pool as `pool` for an in-memory database, which has a single connection).
    writer_pool: SqlitePool,
    writer: Writer<SqliteWrite>,
}

/// What the SQLite writer commits. SQLite has one write lock per database, so the per-call
/// writes (the evidence records sealed around the upstream call, the session update) join the
/// event batches' transactions instead of each waiting for the lock and paying its own fsync.
// Events are nearly every row the writer sees: they stay inline (no allocation per event), the
// rare rows are boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SqliteWrite {
    Event(EventRow),
    /// An event with the writes of its call, committed in the same transaction.
    Call(Box<(EventRow, CallWrites)>),
    Evidence(Box<warden_core::store::EvidenceRecord>),
    /// Evidence an audit event will follow (see [`EvidenceStore::put_evidence_ahead`]).
    ///
    /// [`EvidenceStore::put_evidence_ahead`]: warden_core::store::EvidenceStore::put_evidence_ahead
    EvidenceAhead(Box<warden_core::store::EvidenceRecord>),
    SessionCall(Box<SessionCall>),
}

impl SqliteWrite {
    /// The evidence records this write stores.
    fn evidence(&self) -> &[EvidenceRecord] {
        match self {
            Self::Call(call) => &call.1.evidence,
            Self::Evidence(record) | Self::EvidenceAhead(record) => std::slice::from_ref(record),
            Self::Event(_) | Self::SessionCall(_) => &[],
        }
    }

    /// The session count this write records.
    fn session(&self) -> Option<&SessionCall> {
        match self {
            Self::Call(call) => call.1.session.as_ref(),
            Self::SessionCall(call) => Some(call),
            Self::Event(_) | Self::Evidence(_) | Self::EvidenceAhead(_) => None,
        }
    }

    fn event(&self) -> Option<&EventRow> {
        match self {
            Self::Event(event) => Some(event),
            Self::Call(call) => Some(&call.0),
            Self::Evidence(_) | Self::EvidenceAhead(_) | Self::SessionCall(_) => None,
        }
    }
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url`, migrate it and start the writer.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| db_error(e, "parsing the SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            // Shredded evidence is overwritten in the file, not just unlinked.
            .pragma("secure_delete", "ON");
        let pool = pool_options(url, options)
            .connect_with(connect.clone())
            .await
            .map_err(|e| db_error(e, "opening the SQLite database"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(migration_error)?;
        let (writer_pool, log_sync) = if is_memory(url) {
            (pool.clone(), None)
        } else {
            let log_sync: Arc<dyn LogSync> = Arc::new(WalFileSync::new(connect.get_filename()));
            let writer_pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                // Only the writer uses it, and a failed commit says so: no ping before each batch.
                .test_before_acquire(false)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.pragma("cache_size", "-16384"))
                .await
                .map_err(|e| db_error(e, "opening the SQLite writer connection"))?;
            (writer_pool, Some(log_sync))
        };
        let sink = SqliteSink {
            pool: writer_pool.clone(),
            sync: SyncMode::Durable,
            log_sync,
            next_seq: None,
        };
        let writer = Writer::spawn_dedicated(sink, options.batch_max)?;
        Ok(Self {
            pool,
            writer_pool,
            writer,
        })
    }

    /// Events of one request chain, in log order.
    pub async fn events_by_correlation(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT seq, body FROM events WHERE correlation_id = ? ORDER BY seq",
        )
        .bind(correlation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading events by correlation id"))?;
        stored_events(rows)
    }

    /// The number of committed events (the next `seq`).
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        let next: i64 = sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error(e, "counting events"))?;
        seq_from_db(next)
    }

    /// Events with `from_seq <= seq < to_seq`, in log order.
    pub async fn events_range(
        &self,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT seq, body FROM events WHERE seq >= ? AND seq < ? ORDER BY seq",
        )
        .bind(seq_to_db(from_seq)?)
        .bind(seq_to_db(to_seq.min(i64::MAX as u64))?)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading a range of events"))?;
        stored_events(rows)
    }

    /// One event with its `seq`.
    pub async fn stored_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let row = sqlx::query_as::<_, (i64, String)>("SELECT seq, body FROM events WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, format_args!("reading event {id}")))?;
        row.map(|(seq, body)| stored_event(seq, &body)).transpose()
    }

    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Stop the writer (committing what it holds) and close the connections.
    pub async fn close(&self) {
        self.writer.stop().await;
        self.writer_pool.close().await;
        self.pool.close().await;
    }
}

fn pool_options(url: &str, options: &StoreOptions) -> SqlitePoolOptions {
    let base = SqlitePoolOptions::new().acquire_timeout(options.acquire_timeout);
    if is_memory(url) {
        // An in-memory database lives as long as its connection: keep exactly one, forever.
        base.max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        base.max_connections(options.max_connections.max(1))
    }
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Writes event batches for the writer task.
struct SqliteSink {
    pool: SqlitePool,
    /// The `synchronous` level last set on the writer connection. A connection the pool opens
    /// anew starts at `FULL` whatever this says, which errs on the durable side.
    sync: SyncMode,
    /// Syncs the WAL file apart from commits (none for an in-memory database).
    log_sync: Option<Arc<dyn LogSync>>,
    /// The `seq` after the last event this sink committed; read from the table when unknown
    /// (at start, and after any failed commit, in case another process wrote to the log).
    next_seq: Option<i64>,
}

impl SqliteSink {
    /// Set the writer connection's `synchronous` level for the next commit.
    async fn set_sync(
        &mut self,
        conn: &mut SqliteConnection,
        sync: SyncMode,
    ) -> Result<(), StoreError> {
        if self.sync == sync {
            return Ok(());
        }
        let pragma = match sync {
            SyncMode::Durable => "PRAGMA synchronous = FULL",
            SyncMode::Deferred => "PRAGMA synchronous = NORMAL",
        };
        sqlx::query(pragma)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error(e, "setting the writer's synchronous level"))?;
        self.sync = sync;
        Ok(())
    }
}

impl BatchSink for SqliteSink {
    type Row = SqliteWrite;

    fn is_event(row: &SqliteWrite) -> bool {
        row.event().is_some()
    }

    fn is_write_ahead(row: &SqliteWrite) -> bool {
        matches!(row, SqliteWrite::EvidenceAhead(_))
    }

    fn log_sync(&self) -> Option<Arc<dyn LogSync>> {
        self.log_sync.clone()
    }

    async fn commit(&mut self, rows: &[SqliteWrite], sync: SyncMode) -> Result<u64, StoreError> {
        let cached = self.next_seq.take();
        let (first, events) = match self.commit_rows(rows, sync, cached).await {
            // Another store on the same file (a second Warden) moved the log on: nothing was
            // committed; take the next seq from the table this time.
            Err(StoreError::Conflict(_)) if cached.is_some() => {
                self.commit_rows(rows, sync, None).await?
            }
            other => other?,
        };
        self.next_seq = first.map(|first| first + events);
        seq_from_db(first.unwrap_or(0))
    }
}

impl SqliteSink {
    /// Commit `rows`; return the first event's `seq` (`None` if there is no event and the next
    /// `seq` was not known) and the number of events.
    async fn commit_rows(
        &mut self,
        rows: &[SqliteWrite],
        sync: SyncMode,
        next_seq: Option<i64>,
    ) -> Result<(Option<i64>, i64), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| db_error(e, "taking the writer connection"))?;
        self.set_sync(&mut conn, sync).await?;
        let events: Vec<&EventRow> = rows.iter().filter_map(SqliteWrite::event).collect();
        let records: Vec<&EvidenceRecord> = rows.iter().flat_map(SqliteWrite::evidence).collect();
        let sessions: Vec<&SessionCall> = rows.iter().filter_map(SqliteWrite::session).collect();
        let count = events.len() as i64;
        // What one statement can insert needs no explicit transaction: the statement is atomic
        // and commits by itself.
        if sessions.is_empty() {
            match (next_seq, events.len(), records.len()) {
                (Some(first), 1..=MAX_SLOTS, 0) => {
                    insert_events(&mut conn, first, &events).await?;
                    return Ok((Some(first), count));
                }
                (_, 0, 1..=MAX_SLOTS) => {
                    evidence::insert_evidence(&mut conn, &records).await?;
                    return Ok((next_seq, 0));
                }
                _ => {}
            }
        }
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(e, "starting the event transaction"))?;
        let first = match (next_seq, events.is_empty()) {
            (Some(next), _) => Some(next),
            (None, true) => None,
            (None, false) => Some(next_seq_in(&mut tx).await?),
        };
        if let Some(first) = first {
            insert_event_batch(&mut tx, first, &events).await?;
        }
        if !records.is_empty() {
            evidence::insert_evidence(&mut tx, &records).await?;
        }
        for call in sessions {
            session::write_session_call(&mut tx, call).await?;
        }
        tx.commit()
            .await
            .map_err(|e| db_error(e, "committing events"))?;
        Ok((first, count))
    }
}

/// The `seq` after the last committed event.
async fn next_seq_in(tx: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(e, "reading the next seq"))
}

/// Insert `events` with the `seq`s from `first` on.
async fn insert_event_batch(
    tx: &mut SqliteConnection,
    first: i64,
    events: &[&EventRow],
) -> Result<(), StoreError> {
    for (seq, chunk) in (first..).step_by(MAX_SLOTS).zip(events.chunks(MAX_SLOTS)) {
        insert_events(tx, seq, chunk).await?;
    }
    Ok(())
}

async fn insert_events(
    tx: &mut SqliteConnection,
    first: i64,
    rows: &[&EventRow],
) -> Result<(), StoreError> {
    let sql = padded_insert_sql(
        "events",
        EVENT_COLUMN_NAMES,
        EVENT_COLUMNS,
        slots_for(rows.len()),
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (seq, row) in (first..).zip(rows) {
        query = query
            .bind(seq)
            .bind(row.id.as_str())
            .bind(row.correlation_id.as_str())
            .bind(row.parent_id.as_deref())
            .bind(row.kind.as_str())
            .bind(time_text(row.started_at))
            .bind(time_text(row.finished_at))
            .bind(row.agent.as_deref())
            .bind(row.user.as_deref())
            .bind(row.task.as_deref())
            .bind(row.action.as_deref())
            .bind(row.verdict.as_str())
            .bind(row.outcome.as_str())
            .bind(row.body.as_str())
            .bind(row.canonical.as_slice())
            .bind(row.leaf_hash.as_slice());
    }
    query
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, "inserting events"))?;
    Ok(())
}

/// The statement size for `rows` rows (at most [`MAX_SLOTS`]).
fn slots_for(rows: usize) -> usize {
    EVENT_SLOTS
        .into_iter()
        .find(|&n| n >= rows)
        .unwrap_or(MAX_SLOTS)
}

/// `INSERT INTO table (columns) SELECT column1, ... FROM (VALUES (?, ...), ...) WHERE column1 IS
/// NOT NULL` with `slots` rows of `width` parameters: rows whose first column is left unbound
/// (NULL) are not inserted. Every table it serves has a NOT NULL first column.
fn padded_insert_sql(table: &str, columns: &str, width: usize, slots: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    let values = vec![tuple; slots].join(", ");
    let picked = (1..=width)
        .map(|i| format!("column{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} ({columns}) SELECT {picked} FROM (VALUES {values}) \
         WHERE column1 IS NOT NULL"
    )
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        let row = EventRow::from_event(event)?;
        self.writer.append(SqliteWrite::Event(row)).await
    }

    async fn append_call(&self, event: &AuditEvent, writes: CallWrites) -> Result<u64, StoreError> {
        let row = EventRow::from_event(event)?;
        if writes.is_empty() {
            return self.writer.append(SqliteWrite::Event(row)).await;
        }
        self.writer
            .append(SqliteWrite::Call(Box::new((row, writes))))
            .await
    }

    async fn recent(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT seq, body FROM events ORDER BY seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading recent events"))?;
        rows.iter()
            .map(|(seq, body)| event_from_body(*seq, body))
            .collect()
    }

    async fn event(&self, id: &str) -> Result<Option<AuditEvent>, StoreError> {
        Ok(self.stored_event(id).await?.map(|s| s.event))
    }

    fn audit_log(&self) -> Option<&dyn AuditLogStore> {
        Some(self)
    }
}

type KeyRow = (String, String, String, String, Option<String>);
type TokenRow = (String, String, String, String, String, Option<String>);
type TaskRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

const KEY_COLUMNS: &str = "key_id, agent, hash, created_at, revoked_at";
const TOKEN_COLUMNS: &str = "token_id, name, role, hash, created_at, revoked_at";
const TASK_COLUMNS: &str =
    "task_id, agent, hash, tools, max_class, purpose, \"user\", created_at, expires_at";

fn agent_key(row: KeyRow) -> Result<AgentKey, StoreError> {
    let (key_id, agent, hash, created_at, revoked_at) = row;
    Ok(AgentKey {
        created_at: parse_time(&created_at, "agent key created_at")?,
        revoked_at: parse_opt_time(revoked_at.as_deref(), "agent key revoked_at")?,
        key_id,
        agent,
        hash,
    })
}

fn operator_token(row: TokenRow) -> Result<OperatorToken, StoreError> {
    let (token_id, name, role, hash, created_at, revoked_at) = row;
    Ok(OperatorToken {
        role: OperatorRole::from_str(&role).map_err(|e| corrupt("operator token role", e))?,
        created_at: parse_time(&created_at, "operator token created_at")?,
        revoked_at: parse_opt_time(revoked_at.as_deref(), "operator token revoked_at")?,
        token_id,
        name,
        hash,
    })
}

fn task_grant(row: TaskRow) -> Result<TaskGrant, StoreError> {
    let (task_id, agent, hash, tools, max_class, purpose, user, created_at, expires_at) = row;
    Ok(TaskGrant {
        tools: serde_json::from_str(&tools)
            .map_err(|e| corrupt(format_args!("tools of task {task_id}"), e))?,
        created_at: parse_time(&created_at, "task created_at")?,
        expires_at: parse_time(&expires_at, "task expires_at")?,
        task_id,
        agent,
        hash,
        max_class,
        purpose,
        user,
    })
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn insert_agent_key(&self, key: &AgentKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_keys (key_id, agent, hash, created_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(key.key_id.as_str())
        .bind(key.agent.as_str())
        .bind(key.hash.as_str())
        .bind(time_text(key.created_at))
        .bind(key.revoked_at.map(time_text))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("inserting agent key {}", key.key_id)))?;
        Ok(())
    }

    async fn agent_key_by_hash(&self, hash: &str) -> Result<Option<AgentKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM agent_keys WHERE hash = ?");
        let row = sqlx::query_as::<_, KeyRow>(AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "looking up an agent key"))?;
        row.map(agent_key).transpose()
    }

    async fn agent_keys(&self) -> Result<Vec<AgentKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM agent_keys ORDER BY created_at, key_id");
        let rows = sqlx::query_as::<_, KeyRow>(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing agent keys"))?;
        rows.into_iter().map(agent_key).collect()
    }

    async fn revoke_agent_keys(
        &self,
        agent: &str,
        keep: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE agent_keys SET revoked_at = ? \
             WHERE agent = ? AND revoked_at IS NULL AND key_id IS NOT ?",
        )
        .bind(time_text(at))
        .bind(agent)
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("revoking the keys of agent {agent}")))?;
        Ok(done.rows_affected())
    }

    async fn insert_operator_token(&self, token: &OperatorToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO operator_tokens (token_id, name, role, hash, created_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token.token_id.as_str())
        .bind(token.name.as_str())
        .bind(token.role.as_str())
        .bind(token.hash.as_str())
        .bind(time_text(token.created_at))
        .bind(token.revoked_at.map(time_text))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            db_error(
                e,
                format_args!("inserting operator token {}", token.token_id),
            )
        })?;
        Ok(())
    }

    async fn operator_token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<OperatorToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM operator_tokens WHERE hash = ?");
        let row = sqlx::query_as::<_, TokenRow>(AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "looking up an operator token"))?;
        row.map(operator_token).transpose()
    }

    async fn operator_tokens(&self) -> Result<Vec<OperatorToken>, StoreError> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM operator_tokens ORDER BY created_at, token_id");
        let rows = sqlx::query_as::<_, TokenRow>(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing operator tokens"))?;
        rows.into_iter().map(operator_token).collect()
    }

    async fn insert_task(&self, task: &TaskGrant) -> Result<(), StoreError> {
        let tools = serde_json::to_string(&task.tools)
            .map_err(|e| StoreError::Database(format!("encoding task tools: {e}")))?;
        sqlx::query(
            "INSERT INTO tasks (task_id, agent, hash, tools, max_class, purpose, \"user\", \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(task.task_id.as_str())
        .bind(task.agent.as_str())
        .bind(task.hash.as_str())
        .bind(tools)
        .bind(task.max_class.as_deref())
        .bind(task.purpose.as_deref())
        .bind(task.user.as_deref())
        .bind(time_text(task.created_at))
        .bind(time_text(task.expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("inserting task {}", task.task_id)))?;
        Ok(())
    }

    async fn task_by_hash(&self, hash: &str) -> Result<Option<TaskGrant>, StoreError> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE hash = ?");
        let row = sqlx::query_as::<_, TaskRow>(AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "looking up a task"))?;
        row.map(task_grant).transpose()
    }
}

#[async_trait]
impl WardenStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn events_by_correlation(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        SqliteStore::events_by_correlation(self, correlation_id).await
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        SqliteStore::event_count(self).await
    }

    async fn events_range(
        &self,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        SqliteStore::events_range(self, from_seq, to_seq).await
    }

    async fn stored_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        SqliteStore::stored_event(self, id).await
    }

    fn writer_stats(&self) -> WriterStats {
        SqliteStore::writer_stats(self)
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_has_one_tuple_per_slot() {
        let sql = padded_insert_sql("events", EVENT_COLUMN_NAMES, EVENT_COLUMNS, 4);
        assert_eq!(sql.matches('?').count(), 4 * EVENT_COLUMNS);
        assert_eq!(sql.matches("), (").count(), 3);
    }

    #[test]
    fn a_batch_takes_the_smallest_statement_that_holds_it() {
        assert_eq!(slots_for(1), 1);
        assert_eq!(slots_for(3), 4);
        assert_eq!(slots_for(150), 256);
        assert_eq!(slots_for(256), 256);
        assert_eq!(slots_for(1000), 256);
    }

    #[tokio::test]
    async fn unbound_slots_insert_nothing() -> Result<(), StoreError> {
        let store = SqliteStore::open("sqlite::memory:", &StoreOptions::default()).await?;
        let rows = (0..3)
            .map(|_| {
                let event = AuditEvent::begin(warden_core::event::EventKind::ToolCall, "mcp", None);
                EventRow::from_event(&event)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<&EventRow> = rows.iter().collect();
        assert_eq!(slots_for(rows.len()), 4);
        let mut conn = store
            .writer_pool
            .acquire()
            .await
            .map_err(|e| db_error(e, "taking a connection"))?;
        insert_events(&mut conn, 0, &rows).await?;
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM events ORDER BY seq")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_error(e, "reading seqs"))?;
        assert_eq!(
            seqs,
            vec![0, 1, 2],
            "three events from a statement of four slots"
        );
        drop(conn);
        store.close().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_file_database_is_durable() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let url = format!("sqlite://{}", dir.path().join("new.db").display());
        let store = SqliteStore::open(&url, &StoreOptions::default()).await?;
        for pool in [&store.pool, &store.writer_pool] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .map_err(|e| db_error(e, "journal_mode"))?;
            assert_eq!(mode, "wal");
            for (pragma, want) in [
                ("PRAGMA synchronous", 2), // FULL
                ("PRAGMA foreign_keys", 1),
                ("PRAGMA busy_timeout", 5000),
            ] {
                let got: i64 = sqlx::query_scalar(pragma)
                    .fetch_one(pool)
                    .await
                    .map_err(|e| db_error(e, pragma))?;
                assert_eq!(got, want, "{pragma}");
            }
        }
        // The writer commits without syncing and answers after a sync of the WAL file.
        let event = AuditEvent::begin(warden_core::event::EventKind::ToolCall, "mcp", None);
        store.append(&event).await?;
        let stats = store.writer_stats();
        assert_eq!(stats.events, 1);
        assert!(stats.syncs >= 1, "answered after a sync: {stats:?}");
        assert!(dir.path().join("new.db-wal").exists());
        store.close().await;
        Ok(())
    }

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_memory("sqlite::memory:"));
        assert!(is_memory("sqlite://file:x?mode=memory"));
        assert!(!is_memory("sqlite://warden.db"));
    }
}
