//! [`SessionStore`] on PostgreSQL: one transaction of upserts per recorded call, so replicas
//! recording calls of one session at once never lose a count.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use warden_core::session::{SessionCall, SessionState, SessionStore, SessionUpdate, ShadowDiff};
use warden_core::store::StoreError;

use super::PostgresStore;
use crate::codec::micros;
use crate::error::db_error;
use crate::session::{marks, policies_from_db, policies_text, session_from_rows};

type DiffRow = (
    String,
    DateTime<Utc>,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
);

/// Count one call in its session on `conn`, inside the caller's transaction (each count is an
/// upsert, so replicas recording calls of one session at once never lose one).
pub(super) async fn write_session_call(
    conn: &mut PgConnection,
    call: &SessionCall,
) -> Result<(), StoreError> {
    let SessionCall {
        agent,
        session,
        update,
    } = call;
    let what = || format!("recording a call in session `{session}` of agent `{agent}`");
    let at = micros(update.at);
    sqlx::query(
        "INSERT INTO sessions (agent, session, started_at, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (agent, session) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(agent)
    .bind(session)
    .bind(at)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error(e, what()))?;
    sqlx::query(
        "INSERT INTO session_tools (agent, session, tool, calls) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (agent, session, tool) DO UPDATE SET calls = session_tools.calls + 1",
    )
    .bind(agent)
    .bind(session)
    .bind(&update.tool)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error(e, what()))?;
    for (kind, name) in marks(update) {
        sqlx::query(
            "INSERT INTO session_marks (agent, session, kind, name) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(agent)
        .bind(session)
        .bind(kind)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error(e, what()))?;
    }
    Ok(())
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn session(
        &self,
        agent: &str,
        session: &str,
    ) -> Result<Option<SessionState>, StoreError> {
        let what = || format!("reading session `{session}` of agent `{agent}`");
        let head = sqlx::query_as::<_, (DateTime<Utc>, DateTime<Utc>)>(
            "SELECT started_at, updated_at FROM sessions WHERE agent = $1 AND session = $2",
        )
        .bind(agent)
        .bind(session)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, what()))?;
        let Some((started, updated)) = head else {
            return Ok(None);
        };
        let tools = sqlx::query_as::<_, (String, i64)>(
            "SELECT tool, calls FROM session_tools WHERE agent = $1 AND session = $2",
        )
        .bind(agent)
        .bind(session)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, what()))?;
        let marks = sqlx::query_as::<_, (String, String)>(
            "SELECT kind, name FROM session_marks WHERE agent = $1 AND session = $2",
        )
        .bind(agent)
        .bind(session)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, what()))?;
        let mut state = SessionState::new(agent, session);
        state.started_at = Some(started);
        state.updated_at = Some(updated);
        session_from_rows(state, tools, marks).map(Some)
    }

    async fn record_session_call(
        &self,
        agent: &str,
        session: &str,
        update: &SessionUpdate,
    ) -> Result<SessionState, StoreError> {
        let call = SessionCall {
            agent: agent.to_owned(),
            session: session.to_owned(),
            update: update.clone(),
        };
        let what = || format!("recording a call in session `{session}` of agent `{agent}`");
        let mut tx = self.pool.begin().await.map_err(|e| db_error(e, what()))?;
        write_session_call(&mut tx, &call).await?;
        tx.commit().await.map_err(|e| db_error(e, what()))?;
        self.session(agent, session)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session `{session}`")))
    }

    async fn insert_shadow_diff(&self, d: &ShadowDiff) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO shadow_diffs (event_id, at, agent, \"user\", tool, active, \
             active_policies, shadow, shadow_policies, shadow_error, active_bundle, shadow_bundle) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&d.event_id)
        .bind(micros(d.at))
        .bind(&d.agent)
        .bind(d.user.as_deref())
        .bind(&d.tool)
        .bind(&d.active)
        .bind(policies_text(&d.active_policies))
        .bind(&d.shadow)
        .bind(policies_text(&d.shadow_policies))
        .bind(d.shadow_error.as_deref())
        .bind(&d.active_bundle)
        .bind(&d.shadow_bundle)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            db_error(
                e,
                format_args!("recording a shadow difference for {}", d.event_id),
            )
        })?;
        Ok(())
    }

    async fn shadow_diffs(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ShadowDiff>, StoreError> {
        let since = since.map_or(DateTime::<Utc>::UNIX_EPOCH, micros);
        let rows = sqlx::query_as::<_, DiffRow>(
            "SELECT event_id, at, agent, \"user\", tool, active, active_policies, shadow, \
             shadow_policies, shadow_error, active_bundle, shadow_bundle FROM shadow_diffs \
             WHERE at >= $1 ORDER BY id LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "listing shadow differences"))?;
        rows.into_iter()
            .map(|r| {
                Ok(ShadowDiff {
                    at: r.1,
                    active_policies: policies_from_db(&r.0, &r.6)?,
                    shadow_policies: policies_from_db(&r.0, &r.8)?,
                    event_id: r.0,
                    agent: r.2,
                    user: r.3,
                    tool: r.4,
                    active: r.5,
                    shadow: r.7,
                    shadow_error: r.9,
                    active_bundle: r.10,
                    shadow_bundle: r.11,
                })
            })
            .collect()
    }
}
