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
//! The writer commits each batch under `BEGIN IMMEDIATE` (the database write lock) with direct
//! SQLite calls on a connection of its own ([`commit`]). The writer remembers the next `seq`, and reads it from the table inside that transaction when it
//! does not know it or when its insert collides with a `seq` another process (say, a second
//! Warden on the same file) took, so two processes sharing the file still produce a contiguous
//! log.

mod audit;
mod commit;
mod control;
mod evidence;
mod pins;
mod session;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use warden_core::event::AuditEvent;
use warden_core::session::SessionCall;
use warden_core::store::{
    AgentKey, AuditLogStore, CallWrites, CredentialStore, EventLog, EvidenceRecord, OperatorRole,
    OperatorToken, StoreError, TaskGrant,
};

use crate::codec::{
    EventRow, EventSource, event_from_source, parse_opt_time, parse_time, stored_event,
    stored_events, time_text,
};
use crate::error::{corrupt, db_error, migration_error, seq_from_db, seq_to_db};
use crate::log_sync::{LogSync, WalFileSync};
use crate::writer::{BatchSink, SyncMode, Writer, WriterStats};
use crate::{Backend, StoreOptions, StoredEvent, WardenStore};
use commit::WriterConnection;

const EVENT_COLUMN_NAMES: &str = "seq, id, correlation_id, parent_id, kind, started_at, \
     finished_at, agent, \"user\", task, action, verdict, outcome, canonical, leaf_hash";

/// The SQLite store.
pub struct SqliteStore {
    /// Reads and credential writes.
    pool: SqlitePool,
    /// Commits the audit events and the per-call writes, on its own connection (see
    /// [`commit`]), so readers can never starve audit commits.
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
        let (connection, log_sync) = if is_memory(url) {
            (WriterConnection::Pool(pool.clone()), None)
        } else {
            let file = connect.get_filename();
            let log_sync: Arc<dyn LogSync> = Arc::new(WalFileSync::new(file));
            let own = commit::open_writer_connection(file, options)?;
            (WriterConnection::Own(own), Some(log_sync))
        };
        let sink = SqliteSink {
            connection,
            sync: SyncMode::Durable,
            log_sync,
            next_seq: None,
        };
        let writer = Writer::spawn_dedicated(sink, options.batch_max)?;
        Ok(Self { pool, writer })
    }

    /// Events of one request chain, in log order.
    pub async fn events_by_correlation(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events WHERE correlation_id = ? ORDER BY seq",
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
        let rows = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events WHERE seq >= ? AND seq < ? ORDER BY seq",
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
        let row = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading event {id}")))?;
        row.as_ref().map(stored_event).transpose()
    }

    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Stop the writer (committing what it holds) and close the connections.
    pub async fn close(&self) {
        self.writer.stop().await;
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
    connection: WriterConnection,
    /// The `synchronous` level last set on the writer connection (opened at `FULL`).
    sync: SyncMode,
    /// Syncs the WAL file apart from commits (none for an in-memory database).
    log_sync: Option<Arc<dyn LogSync>>,
    /// The `seq` after the last event this sink committed; read from the table when unknown
    /// (at start, and after any failed commit, in case another process wrote to the log).
    next_seq: Option<i64>,
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
    /// Commit `rows` at `sync`; return the first event's `seq` (`None` if there is no event and
    /// the next `seq` was not known) and the number of events.
    async fn commit_rows(
        &mut self,
        rows: &[SqliteWrite],
        sync: SyncMode,
        next_seq: Option<i64>,
    ) -> Result<(Option<i64>, i64), StoreError> {
        let set_level = self.sync != sync;
        let commit = |conn: &rusqlite::Connection| {
            if set_level {
                commit::set_sync(conn, sync)?;
            }
            // The level is now set, whatever the commit does.
            Ok(commit::commit_rows(conn, rows, next_seq))
        };
        let committed = match &self.connection {
            WriterConnection::Own(conn) => commit(conn),
            WriterConnection::Pool(pool) => commit::with_pool_connection(pool, commit).await,
        }?;
        self.sync = sync;
        committed
    }
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
        let rows = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events ORDER BY seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading recent events"))?;
        rows.iter().map(event_from_source).collect()
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

    #[tokio::test]
    async fn a_file_database_is_durable() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let url = format!("sqlite://{}", dir.path().join("new.db").display());
        let store = SqliteStore::open(&url, &StoreOptions::default()).await?;
        for pool in [&store.pool] {
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
