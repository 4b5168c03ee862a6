//! The PostgreSQL backend, shared by any number of gateway replicas.
//!
//! Each event batch takes `LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE` (which conflicts with
//! itself and with other writers' inserts, but not with readers), reads the next `seq` from the
//! table and inserts the batch with one `UNNEST` statement. Replicas therefore append one batch
//! at a time and the log stays contiguous.

mod audit;
mod control;
mod evidence;
mod pins;
mod session;

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use warden_core::event::AuditEvent;
use warden_core::store::{
    AgentKey, AuditLogStore, CallWrites, CredentialStore, EventLog, OperatorRole, OperatorToken,
    StoreError, TaskGrant,
};

use crate::codec::{EventRow, EventSource, event_from_source, micros, stored_event, stored_events};
use crate::error::{corrupt, db_error, migration_error, seq_from_db, seq_to_db};
use crate::writer::{BatchSink, SyncMode, Writer, WriterStats};
use crate::{Backend, StoreOptions, StoredEvent, WardenStore};

const INSERT_EVENTS: &str = "INSERT INTO events (seq, id, correlation_id, parent_id, kind, \
     started_at, finished_at, agent, \"user\", task, action, verdict, outcome, canonical, \
     leaf_hash) \
     SELECT $1 + t.n - 1, t.id, t.correlation_id, t.parent_id, t.kind, t.started_at, \
     t.finished_at, t.agent, t.usr, t.task, t.action, t.verdict, t.outcome, t.canonical, \
     t.leaf_hash \
     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], \
     $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::text[], $14::bytea[], $15::bytea[]) WITH ORDINALITY AS t(id, correlation_id, \
     parent_id, kind, started_at, finished_at, agent, usr, task, action, verdict, outcome, \
     canonical, leaf_hash, n)";

/// The PostgreSQL store.
pub struct PostgresStore {
    /// Reads and credential writes.
    pool: PgPool,
    /// The writer task's own connection, so readers can never starve audit commits.
    writer_pool: PgPool,
    writer: Writer<PgWrite>,
}

impl PostgresStore {
    /// Connect to `url`, migrate the database and start the writer.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| db_error(e, "parsing the PostgreSQL URL"))?;
        Self::open_with(connect, options).await
    }

    /// Like [`open`](Self::open), with connect options built by the caller (for example with
    /// `.options([("search_path", "my_schema")])` to use a schema other than `public`).
    pub async fn open_with(
        connect: PgConnectOptions,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|e| db_error(e, "connecting to PostgreSQL"))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(migration_error)?;
        let writer_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| db_error(e, "opening the PostgreSQL writer connection"))?;
        let sink = PgSink {
            pool: writer_pool.clone(),
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
        let rows = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events WHERE correlation_id = $1 ORDER BY seq",
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
            "SELECT seq, canonical, body FROM events WHERE seq >= $1 AND seq < $2 ORDER BY seq",
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
            "SELECT seq, canonical, body FROM events WHERE id = $1",
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
        self.writer_pool.close().await;
        self.pool.close().await;
    }
}

/// Writes event batches for the writer task.
struct PgSink {
    pool: PgPool,
}

/// What the PostgreSQL writer commits: an event, alone or with the writes of its call.
// Plain events are most rows: they stay inline (no allocation per event), calls are boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum PgWrite {
    Event(EventRow),
    Call(Box<(EventRow, CallWrites)>),
}

impl PgWrite {
    fn event(&self) -> &EventRow {
        match self {
            Self::Event(event) => event,
            Self::Call(call) => &call.0,
        }
    }
}

/// A batch of rows as one array per column, for `UNNEST`.
#[derive(Default)]
struct Columns {
    id: Vec<String>,
    correlation_id: Vec<String>,
    parent_id: Vec<Option<String>>,
    kind: Vec<String>,
    started_at: Vec<DateTime<Utc>>,
    finished_at: Vec<DateTime<Utc>>,
    agent: Vec<Option<String>>,
    user: Vec<Option<String>>,
    task: Vec<Option<String>>,
    action: Vec<Option<String>>,
    verdict: Vec<String>,
    outcome: Vec<String>,
    canonical: Vec<Vec<u8>>,
    leaf_hash: Vec<Vec<u8>>,
}

impl Columns {
    fn of<'a>(rows: impl Iterator<Item = &'a EventRow>) -> Self {
        let mut c = Self::default();
        for r in rows {
            c.id.push(r.id.clone());
            c.correlation_id.push(r.correlation_id.clone());
            c.parent_id.push(r.parent_id.clone());
            c.kind.push(r.kind.clone());
            c.started_at.push(r.started_at);
            c.finished_at.push(r.finished_at);
            c.agent.push(r.agent.clone());
            c.user.push(r.user.clone());
            c.task.push(r.task.clone());
            c.action.push(r.action.clone());
            c.verdict.push(r.verdict.clone());
            c.outcome.push(r.outcome.clone());
            c.canonical.push(r.canonical.clone());
            c.leaf_hash.push(r.leaf_hash.to_vec());
        }
        c
    }
}

impl BatchSink for PgSink {
    type Row = PgWrite;

    // PostgreSQL syncs every commit (`synchronous_commit`), write-ahead or not: no row here is
    // write-ahead, so every batch is `SyncMode::Durable`.
    async fn commit(&mut self, rows: &[PgWrite], _sync: SyncMode) -> Result<u64, StoreError> {
        let c = Columns::of(rows.iter().map(PgWrite::event));
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_error(e, "starting the event transaction"))?;
        sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(e, "locking the events table"))?;
        let first: i64 = sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db_error(e, "reading the next seq"))?;
        sqlx::query(INSERT_EVENTS)
            .bind(first)
            .bind(c.id)
            .bind(c.correlation_id)
            .bind(c.parent_id)
            .bind(c.kind)
            .bind(c.started_at)
            .bind(c.finished_at)
            .bind(c.agent)
            .bind(c.user)
            .bind(c.task)
            .bind(c.action)
            .bind(c.verdict)
            .bind(c.outcome)
            .bind(c.canonical)
            .bind(c.leaf_hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(e, "inserting events"))?;
        for row in rows {
            if let PgWrite::Call(call) = row {
                let writes = &call.1;
                for record in &writes.evidence {
                    evidence::insert_evidence(&mut tx, record).await?;
                }
                if let Some(session_call) = &writes.session {
                    session::write_session_call(&mut tx, session_call).await?;
                }
            }
        }
        tx.commit()
            .await
            .map_err(|e| db_error(e, "committing events"))?;
        seq_from_db(first)
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn append(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        self.writer
            .append(PgWrite::Event(EventRow::from_event(event)?))
            .await
    }

    async fn append_call(&self, event: &AuditEvent, writes: CallWrites) -> Result<u64, StoreError> {
        let row = EventRow::from_event(event)?;
        if writes.is_empty() {
            return self.writer.append(PgWrite::Event(row)).await;
        }
        self.writer
            .append(PgWrite::Call(Box::new((row, writes))))
            .await
    }

    async fn recent(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events ORDER BY seq DESC LIMIT $1",
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

type KeyRow = (String, String, String, DateTime<Utc>, Option<DateTime<Utc>>);
type TokenRow = (
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);
type TaskRow = (
    String,
    String,
    String,
    Vec<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

const SELECT_KEYS: &str = "SELECT key_id, agent, hash, created_at, revoked_at FROM agent_keys";
const SELECT_TOKENS: &str =
    "SELECT token_id, name, role, hash, created_at, revoked_at FROM operator_tokens";

fn agent_key(row: KeyRow) -> AgentKey {
    let (key_id, agent, hash, created_at, revoked_at) = row;
    AgentKey {
        key_id,
        agent,
        hash,
        created_at,
        revoked_at,
    }
}

fn operator_token(row: TokenRow) -> Result<OperatorToken, StoreError> {
    let (token_id, name, role, hash, created_at, revoked_at) = row;
    Ok(OperatorToken {
        role: OperatorRole::from_str(&role).map_err(|e| corrupt("operator token role", e))?,
        token_id,
        name,
        hash,
        created_at,
        revoked_at,
    })
}

fn task_grant(row: TaskRow) -> TaskGrant {
    let (task_id, agent, hash, tools, max_class, purpose, user, created_at, expires_at) = row;
    TaskGrant {
        task_id,
        agent,
        hash,
        tools,
        max_class,
        purpose,
        user,
        created_at,
        expires_at,
    }
}

#[async_trait]
impl CredentialStore for PostgresStore {
    async fn insert_agent_key(&self, key: &AgentKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_keys (key_id, agent, hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key.key_id.as_str())
        .bind(key.agent.as_str())
        .bind(key.hash.as_str())
        .bind(micros(key.created_at))
        .bind(key.revoked_at.map(micros))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("inserting agent key {}", key.key_id)))?;
        Ok(())
    }

    async fn agent_key_by_hash(&self, hash: &str) -> Result<Option<AgentKey>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_KEYS} WHERE hash = $1"));
        let row = sqlx::query_as::<_, KeyRow>(sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "looking up an agent key"))?;
        Ok(row.map(agent_key))
    }

    async fn agent_keys(&self) -> Result<Vec<AgentKey>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_KEYS} ORDER BY created_at, key_id"));
        let rows = sqlx::query_as::<_, KeyRow>(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing agent keys"))?;
        Ok(rows.into_iter().map(agent_key).collect())
    }

    async fn revoke_agent_keys(
        &self,
        agent: &str,
        keep: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE agent_keys SET revoked_at = $1 \
             WHERE agent = $2 AND revoked_at IS NULL AND key_id IS DISTINCT FROM $3",
        )
        .bind(micros(at))
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
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.token_id.as_str())
        .bind(token.name.as_str())
        .bind(token.role.as_str())
        .bind(token.hash.as_str())
        .bind(micros(token.created_at))
        .bind(token.revoked_at.map(micros))
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
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_TOKENS} WHERE hash = $1"));
        let row = sqlx::query_as::<_, TokenRow>(sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "looking up an operator token"))?;
        row.map(operator_token).transpose()
    }

    async fn operator_tokens(&self) -> Result<Vec<OperatorToken>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("{SELECT_TOKENS} ORDER BY created_at, token_id"));
        let rows = sqlx::query_as::<_, TokenRow>(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing operator tokens"))?;
        rows.into_iter().map(operator_token).collect()
    }

    async fn insert_task(&self, task: &TaskGrant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tasks (task_id, agent, hash, tools, max_class, purpose, \"user\", \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(task.task_id.as_str())
        .bind(task.agent.as_str())
        .bind(task.hash.as_str())
        .bind(task.tools.as_slice())
        .bind(task.max_class.as_deref())
        .bind(task.purpose.as_deref())
        .bind(task.user.as_deref())
        .bind(micros(task.created_at))
        .bind(micros(task.expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("inserting task {}", task.task_id)))?;
        Ok(())
    }

    async fn task_by_hash(&self, hash: &str) -> Result<Option<TaskGrant>, StoreError> {
        let row = sqlx::query_as::<_, TaskRow>(
            "SELECT task_id, agent, hash, tools, max_class, purpose, \"user\", created_at, \
             expires_at FROM tasks WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, "looking up a task"))?;
        Ok(row.map(task_grant))
    }
}

#[async_trait]
impl WardenStore for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn events_by_correlation(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        PostgresStore::events_by_correlation(self, correlation_id).await
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        PostgresStore::event_count(self).await
    }

    async fn events_range(
        &self,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        PostgresStore::events_range(self, from_seq, to_seq).await
    }

    async fn stored_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        PostgresStore::stored_event(self, id).await
    }

    fn writer_stats(&self) -> WriterStats {
        PostgresStore::writer_stats(self)
    }

    async fn close(&self) {
        PostgresStore::close(self).await;
    }
}
