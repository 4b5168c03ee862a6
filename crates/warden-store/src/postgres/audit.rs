//! [`AuditLogStore`] on PostgreSQL: leaf hashes from `events`, signed checkpoints and stored
//! subtree hashes. A checkpoint and its subtree hashes are written in one transaction; replicas
//! racing to write the same checkpoint keep the first (`ON CONFLICT DO NOTHING`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use warden_core::store::{
    AuditLogStore, LogHash, LogLeaf, StoreError, StoredCheckpoint, SubtreeHash,
};

use super::PostgresStore;
use crate::codec::{hash_from_db, leaf_from_body, micros, nodes_from_blob, nodes_to_blob};
use crate::error::{db_error, seq_from_db, seq_to_db};

/// Rows filled per backfill transaction.
const BACKFILL_CHUNK: i64 = 1000;

type CheckpointRow = (i64, Vec<u8>, String, Vec<u8>, DateTime<Utc>);

const CHECKPOINT_COLUMNS: &str = "size, root, note, nodes, created_at";

fn checkpoint(row: CheckpointRow) -> Result<StoredCheckpoint, StoreError> {
    let (size, root, note, nodes, created_at) = row;
    Ok(StoredCheckpoint {
        root: hash_from_db(&root, format_args!("the root of checkpoint {size}"))?,
        nodes: nodes_from_blob(&nodes, size)?,
        size: seq_from_db(size)?,
        note,
        created_at,
    })
}

fn level_to_db(level: u32) -> i32 {
    i32::try_from(level).unwrap_or(i32::MAX)
}

#[async_trait]
impl AuditLogStore for PostgresStore {
    async fn log_size(&self) -> Result<u64, StoreError> {
        self.event_count().await
    }

    async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<LogHash>, StoreError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as::<_, (i64, Option<Vec<u8>>)>(
            "SELECT seq, leaf_hash FROM events WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(seq_to_db(from)?)
        .bind(seq_to_db(to)?)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading leaf hashes"))?;
        crate::audit::leaf_hashes_from_rows(from, to, rows)
    }

    async fn leaf_of_event(&self, id: &str) -> Result<Option<LogLeaf>, StoreError> {
        let row = sqlx::query_as::<_, (i64, Option<Vec<u8>>, Option<Vec<u8>>)>(
            "SELECT seq, canonical, leaf_hash FROM events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(e, format_args!("reading the leaf of event {id}")))?;
        row.map(crate::audit::leaf_from_row).transpose()
    }

    async fn subtree_hashes(
        &self,
        level: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<LogHash>, StoreError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as::<_, (i64, Vec<u8>)>(
            "SELECT idx, hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 \
             ORDER BY idx",
        )
        .bind(level_to_db(level))
        .bind(seq_to_db(from)?)
        .bind(seq_to_db(to)?)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(e, "reading subtree hashes"))?;
        crate::audit::subtrees_from_rows(level, from, rows)
    }

    async fn insert_checkpoint(
        &self,
        cp: &StoredCheckpoint,
        subtrees: &[SubtreeHash],
    ) -> Result<bool, StoreError> {
        let mut levels = Vec::with_capacity(subtrees.len());
        let mut indexes = Vec::with_capacity(subtrees.len());
        let mut hashes = Vec::with_capacity(subtrees.len());
        for node in subtrees {
            levels.push(level_to_db(node.level));
            indexes.push(seq_to_db(node.index)?);
            hashes.push(node.hash.to_vec());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_error(e, "starting the checkpoint transaction"))?;
        if !subtrees.is_empty() {
            sqlx::query(
                "INSERT INTO audit_nodes (level, idx, hash) \
                 SELECT * FROM UNNEST($1::int4[], $2::int8[], $3::bytea[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(levels)
            .bind(indexes)
            .bind(hashes)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(e, "storing subtree hashes"))?;
        }
        let sql = format!(
            "INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (size) DO NOTHING"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(seq_to_db(cp.size)?)
            .bind(cp.root.as_slice())
            .bind(cp.note.as_str())
            .bind(nodes_to_blob(&cp.nodes))
            .bind(micros(cp.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(e, format_args!("storing checkpoint {}", cp.size)))?;
        tx.commit()
            .await
            .map_err(|e| db_error(e, "committing the checkpoint"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql =
            format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1");
        let row = sqlx::query_as::<_, CheckpointRow>(AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "reading the latest checkpoint"))?;
        row.map(checkpoint).transpose()
    }

    async fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = $1");
        let row = sqlx::query_as::<_, CheckpointRow>(AssertSqlSafe(sql))
            .bind(seq_to_db(size)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, format_args!("reading checkpoint {size}")))?;
        row.map(checkpoint).transpose()
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size");
        let rows = sqlx::query_as::<_, CheckpointRow>(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing checkpoints"))?;
        rows.into_iter().map(checkpoint).collect()
    }

    async fn backfill_leaves(&self) -> Result<u64, StoreError> {
        let mut filled = 0u64;
        loop {
            let rows = sqlx::query_as::<_, (i64, String)>(
                "SELECT seq, body FROM events WHERE canonical IS NULL OR leaf_hash IS NULL \
                 ORDER BY seq LIMIT $1",
            )
            .bind(BACKFILL_CHUNK)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "finding events without leaf hashes"))?;
            if rows.is_empty() {
                return Ok(filled);
            }
            let mut seqs = Vec::with_capacity(rows.len());
            let mut canonicals = Vec::with_capacity(rows.len());
            let mut hashes = Vec::with_capacity(rows.len());
            for (seq, body) in &rows {
                let (canonical, hash) = leaf_from_body(*seq, body)?;
                seqs.push(*seq);
                canonicals.push(canonical);
                hashes.push(hash.to_vec());
            }
            sqlx::query(
                "UPDATE events SET canonical = t.canonical, leaf_hash = t.leaf_hash \
                 FROM UNNEST($1::int8[], $2::bytea[], $3::bytea[]) AS t(seq, canonical, leaf_hash) \
                 WHERE events.seq = t.seq",
            )
            .bind(seqs)
            .bind(canonicals)
            .bind(hashes)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(e, "filling leaf hashes"))?;
            filled += rows.len() as u64;
        }
    }
}
