//! [`PinStore`] on SQLite. Approving a change runs under `BEGIN IMMEDIATE`: the pending change is
//! deleted (only if it still has the expected hash) and the pin replaced in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use warden_core::pins::{PinChange, PinStore, ToolPin};
use warden_core::store::StoreError;

use super::SqliteStore;
use crate::codec::{parse_time, time_text};
use crate::error::db_error;
use crate::pins::{definition_from_db, definition_text};

type PinRow = (String, String, String, String, String, Option<String>);
type ChangeRow = (String, String, String, String, String, String, String);

const PIN_COLUMNS: &str = "upstream, tool, hash, definition, pinned_at, approved_by";
const CHANGE_COLUMNS: &str =
    "upstream, tool, old_hash, new_hash, new_definition, detected_at, event_id";

fn pin(row: PinRow) -> Result<ToolPin, StoreError> {
    let (upstream, tool, hash, definition, pinned_at, approved_by) = row;
    Ok(ToolPin {
        definition: definition_from_db(&upstream, &tool, &definition)?,
        pinned_at: parse_time(&pinned_at, "tool_pins.pinned_at")?,
        upstream,
        tool,
        hash,
        approved_by,
    })
}

fn change(row: ChangeRow) -> Result<PinChange, StoreError> {
    let (upstream, tool, old_hash, new_hash, new_definition, detected_at, event_id) = row;
    Ok(PinChange {
        new_definition: definition_from_db(&upstream, &tool, &new_definition)?,
        detected_at: parse_time(&detected_at, "tool_pin_changes.detected_at")?,
        upstream,
        tool,
        old_hash,
        new_hash,
        event_id,
    })
}

#[async_trait]
impl PinStore for SqliteStore {
    async fn pins(&self) -> Result<Vec<ToolPin>, StoreError> {
        let rows: Vec<PinRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PIN_COLUMNS} FROM tool_pins ORDER BY upstream, tool"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading tool pins"))?;
        rows.into_iter().map(pin).collect()
    }

    async fn pin(&self, upstream: &str, tool: &str) -> Result<Option<ToolPin>, StoreError> {
        let row: Option<PinRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PIN_COLUMNS} FROM tool_pins WHERE upstream = ? AND tool = ?"
        )))
        .bind(upstream)
        .bind(tool)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the pin of {upstream}.{tool}")))?;
        row.map(pin).transpose()
    }

    async fn pin_first_seen(&self, new: &ToolPin) -> Result<ToolPin, StoreError> {
        sqlx::query(
            "INSERT INTO tool_pins (upstream, tool, hash, definition, pinned_at, approved_by) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (upstream, tool) DO NOTHING",
        )
        .bind(&new.upstream)
        .bind(&new.tool)
        .bind(&new.hash)
        .bind(definition_text(&new.definition)?)
        .bind(time_text(new.pinned_at))
        .bind(&new.approved_by)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("pinning {}.{}", new.upstream, new.tool)))?;
        self.pin(&new.upstream, &new.tool).await?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "the pin of {}.{} just written",
                new.upstream, new.tool
            ))
        })
    }

    async fn record_pin_change(&self, c: &PinChange) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tool_pin_changes \
             (upstream, tool, old_hash, new_hash, new_definition, detected_at, event_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (upstream, tool) DO UPDATE SET \
             old_hash = excluded.old_hash, new_hash = excluded.new_hash, \
             new_definition = excluded.new_definition, detected_at = excluded.detected_at, \
             event_id = excluded.event_id",
        )
        .bind(&c.upstream)
        .bind(&c.tool)
        .bind(&c.old_hash)
        .bind(&c.new_hash)
        .bind(definition_text(&c.new_definition)?)
        .bind(time_text(c.detected_at))
        .bind(&c.event_id)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            db_error(
                e,
                format_args!("recording a change of {}.{}", c.upstream, c.tool),
            )
        })?;
        Ok(())
    }

    async fn pin_changes(&self) -> Result<Vec<PinChange>, StoreError> {
        let rows: Vec<ChangeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM tool_pin_changes ORDER BY upstream, tool"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading tool definition changes"))?;
        rows.into_iter().map(change).collect()
    }

    async fn pin_change(
        &self,
        upstream: &str,
        tool: &str,
    ) -> Result<Option<PinChange>, StoreError> {
        let row: Option<ChangeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM tool_pin_changes WHERE upstream = ? AND tool = ?"
        )))
        .bind(upstream)
        .bind(tool)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the change of {upstream}.{tool}")))?;
        row.map(change).transpose()
    }

    async fn approve_pin_change(
        &self,
        upstream: &str,
        tool: &str,
        new_hash: &str,
        approved_by: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ToolPin>, StoreError> {
        let what = format!("approving the new definition of {upstream}.{tool}");
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(e, &what))?;
        let taken: Option<(String,)> = sqlx::query_as(
            "DELETE FROM tool_pin_changes WHERE upstream = ? AND tool = ? AND new_hash = ? \
             RETURNING new_definition",
        )
        .bind(upstream)
        .bind(tool)
        .bind(new_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_error(e, &what))?;
        let Some((definition,)) = taken else {
            tx.rollback().await.map_err(|e| db_error(e, &what))?;
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO tool_pins (upstream, tool, hash, definition, pinned_at, approved_by) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (upstream, tool) DO UPDATE SET \
             hash = excluded.hash, definition = excluded.definition, \
             pinned_at = excluded.pinned_at, approved_by = excluded.approved_by",
        )
        .bind(upstream)
        .bind(tool)
        .bind(new_hash)
        .bind(&definition)
        .bind(time_text(at))
        .bind(approved_by)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(e, &what))?;
        tx.commit().await.map_err(|e| db_error(e, &what))?;
        Ok(Some(ToolPin {
            definition: definition_from_db(upstream, tool, &definition)?,
            upstream: upstream.to_owned(),
            tool: tool.to_owned(),
            hash: new_hash.to_owned(),
            pinned_at: crate::codec::micros(at),
            approved_by: Some(approved_by.to_owned()),
        }))
    }

    async fn clear_pin_change(&self, upstream: &str, tool: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tool_pin_changes WHERE upstream = ? AND tool = ?")
            .bind(upstream)
            .bind(tool)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, format_args!("clearing the change of {upstream}.{tool}")))?;
        Ok(done.rows_affected() > 0)
    }
}
