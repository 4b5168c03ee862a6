//! The bulk read behind `warden audit verify --quick`: every event row in a seq range, reduced
//! to what the Merkle log covers (`seq`, `canonical`, `leaf_hash`), sent on in batches from a
//! reader of its own, so the verifier hashes and folds while the next batches are read.
//!
//! SQLite is read with `rusqlite` on a blocking thread, through a memory map: one statement
//! steps over the rows and each row's bytes are appended to one buffer per batch. Through sqlx
//! every value of every row is copied into an owned row and passed over a channel on its own,
//! which cost more than hashing the row. PostgreSQL is read through sqlx in chunks.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use sqlx::postgres::PgPool;
use tokio::sync::mpsc;
use warden_core::store::StoreError;

use crate::audit::LeafRow;
use crate::error::{db_error, seq_to_db};

/// Rows per batch: about 64 KB, small enough for the allocator to reuse a freed batch's memory
/// for the next one (fresh pages for large batches cost the reader more than it saved).
pub const SCAN_BATCH: usize = 64;

/// How much of the database file SQLite may map: reading mapped pages spares a copy of every
/// page out of the kernel. SQLite caps it at its compile-time maximum (2 GB by default); pages
/// beyond the map are read as usual.
const MMAP_BYTES: i64 = 1 << 31;

/// How long the scan waits for a lock before it gives up (sqlx's default for SQLite).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Consecutive event rows as stored, their bytes in one buffer.
#[derive(Debug, Default)]
pub struct LeafBatch {
    bytes: Vec<u8>,
    rows: Vec<StoredRow>,
}

#[derive(Debug)]
struct StoredRow {
    seq: i64,
    canonical: Option<Range<usize>>,
    leaf_hash: Option<Range<usize>>,
}

/// One row of a [`LeafBatch`], as stored: a verifier must see a NULL or a short hash as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedLeaf<'a> {
    /// The `seq` column (negative only if the table was tampered with).
    pub seq: i64,
    /// The `canonical` column, `None` if NULL.
    pub canonical: Option<&'a [u8]>,
    /// The `leaf_hash` column, any length; `None` if NULL.
    pub leaf_hash: Option<&'a [u8]>,
}

impl LeafBatch {
    fn with_capacity(rows: usize) -> Self {
        Self {
            // About a kilobyte of canonical bytes and a hash per event.
            bytes: Vec::with_capacity(rows * 1024),
            rows: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, seq: i64, canonical: Option<&[u8]>, leaf_hash: Option<&[u8]>) {
        let mut keep = |b: &[u8]| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(b);
            start..self.bytes.len()
        };
        let canonical = canonical.map(&mut keep);
        let leaf_hash = leaf_hash.map(&mut keep);
        self.rows.push(StoredRow {
            seq,
            canonical,
            leaf_hash,
        });
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in seq order.
    pub fn rows(&self) -> impl Iterator<Item = ScannedLeaf<'_>> {
        self.rows.iter().map(|r| ScannedLeaf {
            seq: r.seq,
            canonical: r.canonical.clone().map(|c| &self.bytes[c]),
            leaf_hash: r.leaf_hash.clone().map(|h| &self.bytes[h]),
        })
    }
}

/// A batch of rows, or the error that stopped the scan (the last message sent).
pub type ScanResult = Result<LeafBatch, StoreError>;

/// Read `[from, end)` of the SQLite log at `path` on this (blocking) thread and send it to
/// `sink` in batches; stops early when nobody listens.
pub(crate) fn scan_sqlite(
    path: PathBuf,
    read_only: bool,
    from: u64,
    end: u64,
    sink: mpsc::Sender<ScanResult>,
) {
    if let Err(e) = scan_sqlite_rows(&path, read_only, from, end, &sink) {
        let _ = sink.blocking_send(Err(e));
    }
}

fn scan_sqlite_rows(
    path: &Path,
    read_only: bool,
    from: u64,
    end: u64,
    sink: &mpsc::Sender<ScanResult>,
) -> Result<(), StoreError> {
    use rusqlite::OpenFlags;
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let fail = |context: &str, e: rusqlite::Error| {
        StoreError::Database(format!("{context} {}: {e}", path.display()))
    };
    let conn =
        rusqlite::Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| fail("opening", e))?;
    // A live server's writer can hold the WAL index for a moment; wait as sqlx's readers do.
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| fail("opening", e))?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)
        .map_err(|e| fail("mapping", e))?;
    let mut statement = conn
        .prepare(
            "SELECT seq, canonical, leaf_hash FROM events \
             WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
        )
        .map_err(|e| fail("reading events from", e))?;
    let mut rows = statement
        .query([seq_to_db(from)?, seq_to_db(end)?])
        .map_err(|e| fail("reading events from", e))?;
    let mut batch = LeafBatch::with_capacity(SCAN_BATCH);
    while let Some(row) = rows.next().map_err(|e| fail("reading events from", e))? {
        let column = |i: usize| row.get_ref(i).map_err(|e| fail("reading events from", e));
        let seq = match column(0)? {
            ValueRef::Integer(seq) => seq,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "an event row's seq is a {:?}, not an integer",
                    other.data_type()
                )));
            }
        };
        batch.push(seq, bytes(column(1)?), bytes(column(2)?));
        if batch.len() == SCAN_BATCH {
            let full = std::mem::replace(&mut batch, LeafBatch::with_capacity(SCAN_BATCH));
            if sink.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = sink.blocking_send(Ok(batch));
    }
    Ok(())
}

/// A BLOB (or TEXT) column's bytes; `None` for NULL or a number.
fn bytes(value: ValueRef<'_>) -> Option<&[u8]> {
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => Some(b),
        _ => None,
    }
}

/// Read `[from, end)` of the PostgreSQL log through `pool` in chunks and send them to `sink`;
/// stops early when nobody listens.
pub(crate) async fn scan_postgres(
    pool: PgPool,
    from: u64,
    end: u64,
    sink: mpsc::Sender<ScanResult>,
) {
    const SQL: &str = "SELECT seq, canonical, leaf_hash FROM events \
                       WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3";
    let mut next = from;
    while next < end {
        let read: Result<Vec<LeafRow>, StoreError> = async {
            sqlx::query_as(SQL)
                .bind(seq_to_db(next)?)
                .bind(seq_to_db(end)?)
                .bind(SCAN_BATCH as i64)
                .fetch_all(&pool)
                .await
                .map_err(|e| db_error(e, "reading events"))
        }
        .await;
        let rows = match read {
            Ok(rows) => rows,
            Err(e) => {
                let _ = sink.send(Err(e)).await;
                return;
            }
        };
        let Some(last) = rows.last().map(|(seq, _, _)| *seq) else {
            return;
        };
        let mut batch = LeafBatch::with_capacity(rows.len());
        for (seq, canonical, leaf_hash) in &rows {
            batch.push(*seq, canonical.as_deref(), leaf_hash.as_deref());
        }
        if sink.send(Ok(batch)).await.is_err() {
            return;
        }
        match u64::try_from(last) {
            Ok(last) if last >= next => next = last + 1,
            // Rows ordered by seq from a non-negative `next` cannot end lower; stop rather than
            // loop if a tampered table says otherwise.
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_back_each_row_as_stored() {
        let mut batch = LeafBatch::with_capacity(2);
        batch.push(7, Some(b"event"), Some(&[1; 32]));
        batch.push(-1, None, Some(&[2; 31]));
        batch.push(9, Some(b""), None);
        let rows: Vec<ScannedLeaf<'_>> = batch.rows().collect();
        assert_eq!(
            rows,
            [
                ScannedLeaf {
                    seq: 7,
                    canonical: Some(b"event"),
                    leaf_hash: Some(&[1; 32]),
                },
                ScannedLeaf {
                    seq: -1,
                    canonical: None,
                    leaf_hash: Some(&[2; 31]),
                },
                ScannedLeaf {
                    seq: 9,
                    canonical: Some(b""),
                    leaf_hash: None,
                },
            ]
        );
    }
}
