//! The SQLite backend: one file in WAL mode with `synchronous = FULL`.
//!
//! The one exception is the writer's write-ahead batches (evidence that an audit event will
//! follow, see [`crate::writer`]): they commit with `synchronous = NORMAL`, which in WAL mode
//! writes the log without syncing it. Such a commit survives a crash of the process; the next
//! `FULL` commit syncs the log file, and with it every frame written before, so it survives a
//! crash of the machine from then on. Only the writer's own connection ever switches, and only
//! between transactions (SQLite refuses it inside one).
//!
//! Event batches are written under `BEGIN IMMEDIATE` (the database write lock), and `seq` is read
//! from the table inside that transaction, so two processes sharing the file (say, the server
//! and the CLI) still produce a contiguous log.

mod audit;
mod control;
mod evidence;
mod pins;
mod session;

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};
use warden_core::event::AuditEvent;
use warden_core::session::SessionCall;
use warden_core::store::{
    AgentKey, AuditLogStore, CallWrites, CredentialStore, EventLog, OperatorRole, OperatorToken,
    StoreError, TaskGrant,
};

use crate::codec::{
    EventRow, event_from_body, parse_opt_time, parse_time, stored_event, stored_events, time_text,
};
use crate::error::{corrupt, db_error, migration_error, seq_from_db, seq_to_db};
use crate::writer::{BatchSink, SyncMode, Writer, WriterStats};
use crate::{Backend, StoreOptions, StoredEvent, WardenStore};

/// Columns bound per event row by the batch insert.
const EVENT_COLUMNS: usize = 16;
/// Rows per INSERT statement: a batch is split greedily into these sizes, so that only a few
/// distinct statements exist and each stays prepared in the connection's cache (the largest is
/// 16 × 64 binds, well under SQLite's 32766).
const CHUNK_LENS: [usize; 4] = [64, 16, 4, 1];

const INSERT_EVENTS_HEAD: &str = "INSERT INTO events (seq, id, correlation_id, parent_id, kind, \
     started_at, finished_at, agent, \"user\", task, action, verdict, outcome, body, canonical, \
     leaf_hash) VALUES ";

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
        let writer_pool = if is_memory(url) {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(|e| db_error(e, "opening the SQLite writer connection"))?
        };
        let sink = SqliteSink {
            pool: writer_pool.clone(),
            sync: SyncMode::Durable,
        };
        let writer = Writer::spawn(sink, options.batch_max);
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

    async fn commit(&mut self, rows: &[SqliteWrite], sync: SyncMode) -> Result<u64, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| db_error(e, "taking the writer connection"))?;
        self.set_sync(&mut conn, sync).await?;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(e, "starting the event transaction"))?;
        let events: Vec<&EventRow> = rows.iter().filter_map(SqliteWrite::event).collect();
        let first = if events.is_empty() {
            0
        } else {
            insert_event_batch(&mut tx, &events).await?
        };
        for row in rows {
            match row {
                SqliteWrite::Event(_) => {}
                SqliteWrite::Call(call) => {
                    let writes = &call.1;
                    for record in &writes.evidence {
                        evidence::insert_evidence(&mut tx, record).await?;
                    }
                    if let Some(session_call) = &writes.session {
                        session::write_session_call(&mut tx, session_call).await?;
                    }
                }
                SqliteWrite::Evidence(record) | SqliteWrite::EvidenceAhead(record) => {
                    evidence::insert_evidence(&mut tx, record).await?
                }
                SqliteWrite::SessionCall(call) => {
                    session::write_session_call(&mut tx, call).await?
                }
            }
        }
        tx.commit()
            .await
            .map_err(|e| db_error(e, "committing events"))?;
        seq_from_db(first)
    }
}

/// Insert `events` after the last committed one; return the first one's `seq`.
async fn insert_event_batch(
    tx: &mut SqliteConnection,
    events: &[&EventRow],
) -> Result<i64, StoreError> {
    let first: i64 = sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(e, "reading the next seq"))?;
    let mut seq = first;
    let mut rest = events;
    while !rest.is_empty() {
        let n = chunk_len(rest.len());
        let (chunk, tail) = rest.split_at(n);
        insert_events(tx, seq, chunk).await?;
        seq += n as i64;
        rest = tail;
    }
    Ok(first)
}

async fn insert_events(
    tx: &mut SqliteConnection,
    first: i64,
    rows: &[&EventRow],
) -> Result<(), StoreError> {
    let mut query = sqlx::query(AssertSqlSafe(insert_events_sql(rows.len())));
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

/// The largest chunk size that fits in `remaining` rows.
fn chunk_len(remaining: usize) -> usize {
    CHUNK_LENS
        .into_iter()
        .find(|&n| n <= remaining)
        .unwrap_or(remaining)
}

/// `INSERT ... VALUES (?, ...), (?, ...)` for `rows` rows.
fn insert_events_sql(rows: usize) -> String {
    let tuple = format!("({})", vec!["?"; EVENT_COLUMNS].join(", "));
    let mut sql = String::with_capacity(INSERT_EVENTS_HEAD.len() + rows * (tuple.len() + 2));
    sql.push_str(INSERT_EVENTS_HEAD);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&tuple);
    }
    sql
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
    fn insert_sql_has_one_tuple_per_row() {
        let sql = insert_events_sql(3);
        assert_eq!(sql.matches('?').count(), 3 * EVENT_COLUMNS);
        assert_eq!(sql.matches("), (").count(), 2);
    }

    #[test]
    fn batches_split_into_few_statement_shapes() {
        let split = |mut n: usize| {
            let mut lens = Vec::new();
            while n > 0 {
                lens.push(chunk_len(n));
                n -= chunk_len(n);
            }
            lens
        };
        assert_eq!(split(1), vec![1]);
        assert_eq!(split(150), vec![64, 64, 16, 4, 1, 1]);
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
