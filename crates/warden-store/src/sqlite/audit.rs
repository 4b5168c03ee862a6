//! [`AuditLogStore`] on SQLite: leaf hashes from `events`, signed checkpoints and stored
//! subtree hashes. A checkpoint and its subtree hashes are written in one `BEGIN IMMEDIATE`
//! transaction, so a reader never sees a checkpoint without the nodes its proofs need.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Sqlite, Transaction};
use warden_core::store::{
    AuditLogStore, LogHash, LogLeaf, StoreError, StoredCheckpoint, SubtreeHash,
};

use super::SqliteStore;
use crate::codec::{
    hash_from_db, leaf_from_body, nodes_from_blob, nodes_to_blob, parse_time, time_text,
};
use crate::error::{db_error, seq_from_db, seq_to_db};

/// Subtree rows per INSERT (3 binds each, well under SQLite's limit).
const NODE_CHUNK: usize = 256;
/// Rows filled per backfill transaction.
const BACKFILL_CHUNK: i64 = 1000;

type CheckpointRow = (i64, Vec<u8>, String, Vec<u8>, String);

const CHECKPOINT_COLUMNS: &str = "size, root, note, nodes, created_at";

fn checkpoint(row: CheckpointRow) -> Result<StoredCheckpoint, StoreError> {
    let (size, root, note, nodes, created_at) = row;
    Ok(StoredCheckpoint {
        root: hash_from_db(&root, format_args!("the root of checkpoint {size}"))?,
        nodes: nodes_from_blob(&nodes, size)?,
        created_at: parse_time(&created_at, "checkpoint created_at")?,
        size: seq_from_db(size)?,
        note,
    })
}

fn level_to_db(level: u32) -> i64 {
    i64::from(level)
}

async fn insert_subtrees(
    tx: &mut Transaction<'static, Sqlite>,
    subtrees: &[SubtreeHash],
) -> Result<(), StoreError> {
    for chunk in subtrees.chunks(NODE_CHUNK) {
        let tuples = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO audit_nodes (level, idx, hash) VALUES {tuples} ON CONFLICT DO NOTHING"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for node in chunk {
            query = query
                .bind(level_to_db(node.level))
                .bind(seq_to_db(node.index)?)
                .bind(node.hash.as_slice());
        }
        query
            .execute(&mut **tx)
            .await
            .map_err(|e| db_error(e, "storing subtree hashes"))?;
    }
    Ok(())
}

#[async_trait]
impl AuditLogStore for SqliteStore {
    async fn log_size(&self) -> Result<u64, StoreError> {
        self.event_count().await
    }

    async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<LogHash>, StoreError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as::<_, (i64, Option<Vec<u8>>)>(
            "SELECT seq, leaf_hash FROM events WHERE seq >= ? AND seq < ? ORDER BY seq",
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
            "SELECT seq, canonical, leaf_hash FROM events WHERE id = ?",
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
            "SELECT idx, hash FROM audit_nodes WHERE level = ? AND idx >= ? AND idx < ? \
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(e, "starting the checkpoint transaction"))?;
        insert_subtrees(&mut tx, subtrees).await?;
        let sql = format!(
            "INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (size) DO NOTHING"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(seq_to_db(cp.size)?)
            .bind(cp.root.as_slice())
            .bind(cp.note.as_str())
            .bind(nodes_to_blob(&cp.nodes))
            .bind(time_text(cp.created_at))
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
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = ?");
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
                 ORDER BY seq LIMIT ?",
            )
            .bind(BACKFILL_CHUNK)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "finding events without leaf hashes"))?;
            if rows.is_empty() {
                return Ok(filled);
            }
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| db_error(e, "starting the backfill transaction"))?;
            for (seq, body) in &rows {
                let (canonical, hash) = leaf_from_body(*seq, body)?;
                sqlx::query("UPDATE events SET canonical = ?, leaf_hash = ? WHERE seq = ?")
                    .bind(canonical)
                    .bind(hash.as_slice())
                    .bind(*seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db_error(e, format_args!("filling the leaf of event {seq}")))?;
            }
            tx.commit()
                .await
                .map_err(|e| db_error(e, "committing the backfill"))?;
            filled += rows.len() as u64;
        }
    }
}
