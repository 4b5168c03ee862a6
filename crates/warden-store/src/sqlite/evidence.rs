//! [`EvidenceStore`] on SQLite. Shredding is one `UPDATE` that clears the wrapped data key and
//! the ciphertext of every expired record outside a legal hold; the connection runs with
//! `secure_delete` on, so the cleared bytes are overwritten in the file, and the WAL is
//! checkpointed after a shred so no copy of the old page lingers there.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use warden_core::event::AuditEvent;
use warden_core::store::{Artifact, EvidenceRecord, EvidenceStore, LegalHold, StoreError};

use super::{SqliteStore, SqliteWrite};
use crate::codec::{EventSource, event_from_source, parse_opt_time, parse_time, time_text};
use crate::error::db_error;
use crate::evidence::{
    EVIDENCE_COLUMNS, HOLD_COLUMNS, artifact_from_db, check_scope, sealed_parts,
};

type EvidenceRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<String>,
);

fn record(row: EvidenceRow) -> Result<EvidenceRecord, StoreError> {
    let (event_id, artifact, class, agent, created, expires, key_id, key, text, shredded) = row;
    let shredded_at = parse_opt_time(shredded.as_deref(), "evidence shredded_at")?;
    let (wrapped_key, ciphertext) = sealed_parts(&event_id, shredded_at.is_some(), key, text)?;
    Ok(EvidenceRecord {
        artifact: artifact_from_db(&event_id, &artifact)?,
        class,
        agent,
        created_at: parse_time(&created, "evidence created_at")?,
        expires_at: parse_opt_time(expires.as_deref(), "evidence expires_at")?,
        key_id,
        wrapped_key,
        ciphertext,
        shredded_at,
        event_id,
    })
}

/// The records `shred_expired` may shred at `?1` (bound twice: expiry, then nothing else).
const EXPIRED_UNHELD: &str = "shredded_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ? \
     AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.scope = 'event:' || evidence.event_id \
     OR (evidence.agent IS NOT NULL AND h.scope = 'agent:' || evidence.agent))";

#[async_trait]
impl EvidenceStore for SqliteStore {
    async fn put_evidence(&self, r: &EvidenceRecord) -> Result<(), StoreError> {
        // Through the writer: the record shares a group commit with the events around it.
        self.writer
            .append(SqliteWrite::Evidence(Box::new(r.clone())))
            .await?;
        Ok(())
    }

    async fn put_evidence_ahead(&self, r: &EvidenceRecord) -> Result<(), StoreError> {
        // Committed without a sync of its own; the event that follows syncs it.
        self.writer
            .append(SqliteWrite::EvidenceAhead(Box::new(r.clone())))
            .await?;
        Ok(())
    }

    async fn evidence(
        &self,
        event_id: &str,
        artifact: Artifact,
    ) -> Result<Option<EvidenceRecord>, StoreError> {
        let row = sqlx::query_as::<_, EvidenceRow>(AssertSqlSafe(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE event_id = ? AND artifact = ?"
        )))
        .bind(event_id)
        .bind(artifact.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the evidence of event {event_id}")))?;
        row.map(record).transpose()
    }

    async fn evidence_of_event(&self, event_id: &str) -> Result<Vec<EvidenceRecord>, StoreError> {
        let rows = sqlx::query_as::<_, EvidenceRow>(AssertSqlSafe(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE event_id = ? ORDER BY artifact"
        )))
        .bind(event_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the evidence of event {event_id}")))?;
        let mut records = rows
            .into_iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| r.artifact);
        Ok(records)
    }

    async fn shred_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE evidence SET wrapped_key = NULL, ciphertext = NULL, shredded_at = ? \
             WHERE {EXPIRED_UNHELD}"
        )))
        .bind(time_text(now))
        .bind(time_text(now))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, "shredding expired evidence"))?
        .rows_affected();
        if done > 0 {
            // Move the overwritten pages out of the WAL too. Best effort: a reader holding the
            // WAL open delays it to the next automatic checkpoint.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "checkpointing the WAL after shredding failed");
            }
        }
        Ok(done)
    }

    async fn held_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let (n,) = sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM evidence WHERE shredded_at IS NULL AND expires_at IS NOT NULL \
             AND expires_at <= ?",
        )
        .bind(time_text(now))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| db_error(e, "counting expired evidence"))?;
        let (free,) = sqlx::query_as::<_, (i64,)>(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM evidence WHERE {EXPIRED_UNHELD}"
        )))
        .bind(time_text(now))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| db_error(e, "counting expired evidence"))?;
        Ok(u64::try_from(n - free).unwrap_or(0))
    }

    async fn evidence_key_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query_as::<_, (String,)>(
            "SELECT DISTINCT key_id FROM evidence WHERE shredded_at IS NULL ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading the vault key ids in use"))?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    async fn insert_hold(&self, hold: &LegalHold) -> Result<(), StoreError> {
        check_scope(&hold.scope)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        )))
        .bind(&hold.id)
        .bind(&hold.scope)
        .bind(&hold.reason)
        .bind(&hold.operator)
        .bind(time_text(hold.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("storing legal hold {}", hold.id)))?;
        Ok(())
    }

    async fn remove_hold(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM legal_holds WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, format_args!("removing legal hold {id}")))?;
        Ok(done.rows_affected() > 0)
    }

    async fn holds(&self) -> Result<Vec<LegalHold>, StoreError> {
        let rows = sqlx::query_as::<_, (String, String, String, String, String)>(AssertSqlSafe(
            format!("SELECT {HOLD_COLUMNS} FROM legal_holds ORDER BY created_at, id"),
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading legal holds"))?;
        rows.into_iter()
            .map(|(id, scope, reason, operator, at)| {
                Ok(LegalHold {
                    created_at: parse_time(&at, "legal hold created_at")?,
                    id,
                    scope,
                    reason,
                    operator,
                })
            })
            .collect()
    }

    async fn put_bundle_policies(&self, hash: &str, policies: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policy_bundles (hash, policies, stored_at) VALUES (?, ?, ?) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(policies)
        .bind(time_text(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("storing the policies of bundle {hash}")))?;
        Ok(())
    }

    async fn bundle_policies(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query_as::<_, (String,)>("SELECT policies FROM policy_bundles WHERE hash = ?")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error(e, format_args!("reading the policies of bundle {hash}")))?;
        Ok(row.map(|(p,)| p))
    }

    async fn child_events(&self, parent_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events WHERE parent_id = ? ORDER BY seq",
        )
        .bind(parent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the events linked to {parent_id}")))?;
        rows.iter().map(event_from_source).collect()
    }
}
