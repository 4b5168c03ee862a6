//! [`SessionStore`] on SQLite: the upserts of a recorded call run in the writer's group commit.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use warden_core::session::{SessionCall, SessionState, SessionStore, SessionUpdate, ShadowDiff};
use warden_core::store::StoreError;

use super::{SqliteStore, SqliteWrite};
use crate::codec::{parse_time, time_text};
use crate::error::db_error;
use crate::session::{policies_from_db, policies_text, session_from_rows};

type DiffRow = (
    String,
    String,
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

#[async_trait]
impl SessionStore for SqliteStore {
    async fn session(
        &self,
        agent: &str,
        session: &str,
    ) -> Result<Option<SessionState>, StoreError> {
        let what = || format!("reading session `{session}` of agent `{agent}`");
        let head = sqlx::query_as::<_, (String, String)>(
            "SELECT started_at, updated_at FROM sessions WHERE agent = ? AND session = ?",
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
            "SELECT tool, calls FROM session_tools WHERE agent = ? AND session = ?",
        )
        .bind(agent)
        .bind(session)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, what()))?;
        let marks = sqlx::query_as::<_, (String, String)>(
            "SELECT kind, name FROM session_marks WHERE agent = ? AND session = ?",
        )
        .bind(agent)
        .bind(session)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, what()))?;
        let mut state = SessionState::new(agent, session);
        state.started_at = Some(parse_time(&started, "sessions.started_at")?);
        state.updated_at = Some(parse_time(&updated, "sessions.updated_at")?);
        session_from_rows(state, tools, marks).map(Some)
    }

    async fn record_session_call(
        &self,
        agent: &str,
        session: &str,
        update: &SessionUpdate,
    ) -> Result<SessionState, StoreError> {
        // Through the writer: the update shares a group commit with the calls' events.
        self.writer
            .append(SqliteWrite::SessionCall(Box::new(SessionCall {
                agent: agent.to_owned(),
                session: session.to_owned(),
                update: update.clone(),
            })))
            .await?;
        self.session(agent, session)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session `{session}`")))
    }

    async fn insert_shadow_diff(&self, d: &ShadowDiff) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO shadow_diffs (event_id, at, agent, \"user\", tool, active, \
             active_policies, shadow, shadow_policies, shadow_error, active_bundle, shadow_bundle) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&d.event_id)
        .bind(time_text(d.at))
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
        let since = since.map_or_else(String::new, time_text);
        let rows = sqlx::query_as::<_, DiffRow>(
            "SELECT event_id, at, agent, \"user\", tool, active, active_policies, shadow, \
             shadow_policies, shadow_error, active_bundle, shadow_bundle FROM shadow_diffs \
             WHERE at >= ? ORDER BY id LIMIT ?",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "listing shadow differences"))?;
        rows.into_iter()
            .map(|r| {
                Ok(ShadowDiff {
                    at: parse_time(&r.1, "shadow_diffs.at")?,
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
