//! [`EvidenceStore`] on PostgreSQL. Shredding is one `UPDATE` that clears the wrapped data key
//! and the ciphertext of every expired record outside a legal hold.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection};
use warden_core::event::AuditEvent;
use warden_core::store::{Artifact, EvidenceRecord, EvidenceStore, LegalHold, StoreError};

use super::PostgresStore;
use crate::codec::{EventSource, event_from_source, micros};
use crate::error::db_error;
use crate::evidence::{
    EVIDENCE_COLUMNS, HOLD_COLUMNS, artifact_from_db, check_scope, sealed_parts,
};

type EvidenceRow = (
    String,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<DateTime<Utc>>,
);

fn record(row: EvidenceRow) -> Result<EvidenceRecord, StoreError> {
    let (event_id, artifact, class, agent, created_at, expires_at, key_id, key, text, shredded_at) =
        row;
    let (wrapped_key, ciphertext) = sealed_parts(&event_id, shredded_at.is_some(), key, text)?;
    Ok(EvidenceRecord {
        artifact: artifact_from_db(&event_id, &artifact)?,
        class,
        agent,
        created_at,
        expires_at,
        key_id,
        wrapped_key,
        ciphertext,
        shredded_at,
        event_id,
    })
}

/// The records `shred_expired` may shred at `$1`.
const EXPIRED_UNHELD: &str = "shredded_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 \
     AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.scope = 'event:' || evidence.event_id \
     OR (evidence.agent IS NOT NULL AND h.scope = 'agent:' || evidence.agent))";

/// Insert one evidence record on `conn` (the writer's transaction, or a pooled connection).
pub(super) async fn insert_evidence(
    conn: &mut PgConnection,
    r: &EvidenceRecord,
) -> Result<(), StoreError> {
    let shredded = r.shredded_at.is_some();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO evidence ({EVIDENCE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(&r.event_id)
    .bind(r.artifact.as_str())
    .bind(&r.class)
    .bind(&r.agent)
    .bind(micros(r.created_at))
    .bind(r.expires_at.map(micros))
    .bind(&r.key_id)
    .bind((!shredded).then(|| r.wrapped_key.clone()))
    .bind((!shredded).then(|| r.ciphertext.clone()))
    .bind(r.shredded_at.map(micros))
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error(e, crate::evidence::storing(r)))?;
    Ok(())
}

#[async_trait]
impl EvidenceStore for PostgresStore {
    async fn put_evidence(&self, r: &EvidenceRecord) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| db_error(e, "storing evidence"))?;
        insert_evidence(&mut conn, r).await
    }

    async fn evidence(
        &self,
        event_id: &str,
        artifact: Artifact,
    ) -> Result<Option<EvidenceRecord>, StoreError> {
        let row = sqlx::query_as::<_, EvidenceRow>(AssertSqlSafe(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE event_id = $1 AND artifact = $2"
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
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE event_id = $1"
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
            "UPDATE evidence SET wrapped_key = NULL, ciphertext = NULL, shredded_at = $1 \
             WHERE {EXPIRED_UNHELD}"
        )))
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, "shredding expired evidence"))?;
        Ok(done.rows_affected())
    }

    async fn held_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let (n,) = sqlx::query_as::<_, (i64,)>(AssertSqlSafe(format!(
            "SELECT (SELECT COUNT(*) FROM evidence WHERE shredded_at IS NULL \
             AND expires_at IS NOT NULL AND expires_at <= $1) \
             - (SELECT COUNT(*) FROM evidence WHERE {EXPIRED_UNHELD})"
        )))
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| db_error(e, "counting expired evidence"))?;
        Ok(u64::try_from(n).unwrap_or(0))
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
            "INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
        )))
        .bind(&hold.id)
        .bind(&hold.scope)
        .bind(&hold.reason)
        .bind(&hold.operator)
        .bind(micros(hold.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("storing legal hold {}", hold.id)))?;
        Ok(())
    }

    async fn remove_hold(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM legal_holds WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, format_args!("removing legal hold {id}")))?;
        Ok(done.rows_affected() > 0)
    }

    async fn holds(&self) -> Result<Vec<LegalHold>, StoreError> {
        let rows =
            sqlx::query_as::<_, (String, String, String, String, DateTime<Utc>)>(AssertSqlSafe(
                format!("SELECT {HOLD_COLUMNS} FROM legal_holds ORDER BY created_at, id"),
            ))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "reading legal holds"))?;
        Ok(rows
            .into_iter()
            .map(|(id, scope, reason, operator, created_at)| LegalHold {
                id,
                scope,
                reason,
                operator,
                created_at,
            })
            .collect())
    }

    async fn put_bundle_policies(&self, hash: &str, policies: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policy_bundles (hash, policies, stored_at) VALUES ($1, $2, $3) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(policies)
        .bind(micros(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("storing the policies of bundle {hash}")))?;
        Ok(())
    }

    async fn bundle_policies(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query_as::<_, (String,)>("SELECT policies FROM policy_bundles WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error(e, format_args!("reading the policies of bundle {hash}")))?;
        Ok(row.map(|(p,)| p))
    }

    async fn child_events(&self, parent_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query_as::<_, EventSource>(
            "SELECT seq, canonical, body FROM events WHERE parent_id = $1 ORDER BY seq",
        )
        .bind(parent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the events linked to {parent_id}")))?;
        rows.iter().map(event_from_source).collect()
    }
}
