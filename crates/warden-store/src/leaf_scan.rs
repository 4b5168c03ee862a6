//! The bulk read behind `warden audit verify --quick`: every event row in a seq range, reduced
//! to what the Merkle log covers (the row's `seq`, the leaf hash of its `canonical` bytes and
//! its stored `leaf_hash`), sent on in chunks while the verifier folds the last ones.
//!
//! Hashing the canonical bytes is most of the work, so the readers hash each row as they read
//! it. SQLite is read with `rusqlite` through a memory map by [`SQLITE_SCANNERS`] blocking
//! threads, each with its own connection, taking turns over consecutive chunks of
//! [`CHUNK_SEQS`] seqs; a row's bytes are hashed where SQLite holds them, never copied. The
//! receiver ([`LeafScan`]) takes the chunks back in the same turns, so it sees them in seq
//! order. (Through sqlx every value of every row was copied into an owned row and passed over a
//! channel on its own, which cost more than hashing it.) PostgreSQL is read through sqlx by one
//! task, in pages.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use sqlx::postgres::PgPool;
use tokio::sync::mpsc;
use warden_audit::merkle::{Hash, leaf_hash};
use warden_core::store::StoreError;

use crate::audit::LeafRow;
use crate::error::{db_error, seq_to_db};

/// Seqs per SQLite chunk: a few hundred kilobytes of hashes, and enough rows that a reader's
/// turn costs little beside reading them.
pub const CHUNK_SEQS: u64 = 4096;

/// SQLite readers: one per core of the small machines Warden is measured on.
pub const SQLITE_SCANNERS: u64 = 2;

/// Rows per PostgreSQL page.
const PG_PAGE: i64 = 1024;

/// Chunks each reader may have sent ahead of the receiver.
const CHUNKS_AHEAD: usize = 4;

/// How much of the database file SQLite may map: reading mapped pages spares a copy of every
/// page out of the kernel. SQLite caps it at its compile-time maximum (2 GB by default); pages
/// beyond the map are read as usual.
const MMAP_BYTES: i64 = 1 << 31;

/// How long the scan waits for a lock before it gives up (sqlx's default for SQLite).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Consecutive event rows, hashed; their stored leaf hashes in one buffer.
#[derive(Debug, Default)]
pub struct LeafChunk {
    stored: Vec<u8>,
    rows: Vec<HashedRow>,
}

#[derive(Debug)]
struct HashedRow {
    seq: i64,
    leaf: Option<Hash>,
    stored: Option<Range<usize>>,
}

/// One row of a [`LeafChunk`]: a verifier must see a NULL or a short stored hash as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedLeaf<'a> {
    /// The `seq` column (negative only if the table was tampered with).
    pub seq: i64,
    /// The leaf hash of the `canonical` column's bytes; `None` if the column is NULL.
    pub leaf: Option<Hash>,
    /// The `leaf_hash` column, any length; `None` if NULL.
    pub stored_leaf_hash: Option<&'a [u8]>,
}

impl LeafChunk {
    fn with_capacity(rows: usize) -> Self {
        Self {
            stored: Vec::with_capacity(rows * 32),
            rows: Vec::with_capacity(rows),
        }
    }

    /// Add a row as stored, hashing its canonical bytes.
    fn push(&mut self, seq: i64, canonical: Option<&[u8]>, stored_leaf_hash: Option<&[u8]>) {
        let stored = stored_leaf_hash.map(|h| {
            let start = self.stored.len();
            self.stored.extend_from_slice(h);
            start..self.stored.len()
        });
        self.rows.push(HashedRow {
            seq,
            leaf: canonical.map(leaf_hash),
            stored,
        });
    }

    /// Rows in the chunk.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the chunk has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in seq order.
    pub fn rows(&self) -> impl Iterator<Item = ScannedLeaf<'_>> {
        self.rows.iter().map(|r| ScannedLeaf {
            seq: r.seq,
            leaf: r.leaf,
            stored_leaf_hash: r.stored.clone().map(|h| &self.stored[h]),
        })
    }
}

/// A chunk of rows, or the error that stopped the scan.
pub type ScanResult = Result<LeafChunk, StoreError>;

/// The receiving end of a scan: the chunks of every reader, in seq order. Dropping it stops the
/// readers.
pub struct LeafScan {
    readers: Vec<mpsc::Receiver<ScanResult>>,
    turn: usize,
}

impl LeafScan {
    /// The next chunk, or `None` when the range is done. An error ends the scan.
    pub async fn next(&mut self) -> Option<ScanResult> {
        let count = self.readers.len();
        let reader = self.readers.get_mut(self.turn % count.max(1))?;
        // A reader closes its channel after its last chunk; the next chunk in seq order is
        // then past the end of the range.
        let chunk = reader.recv().await?;
        self.turn += 1;
        if chunk.is_err() {
            self.readers.clear();
        }
        Some(chunk)
    }
}

/// Start [`SQLITE_SCANNERS`] readers of `[from, end)` of the SQLite log at `path`, each on a
/// blocking thread.
pub(crate) fn scan_sqlite(path: &Path, read_only: bool, from: u64, end: u64) -> LeafScan {
    let readers = (0..SQLITE_SCANNERS)
        .map(|first| {
            let (sink, chunks) = mpsc::channel(CHUNKS_AHEAD);
            let turns = Turns {
                from,
                end,
                first,
                stride: SQLITE_SCANNERS,
            };
            let path = path.to_owned();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = scan_sqlite_chunks(&path, read_only, turns, &sink) {
                    let _ = sink.blocking_send(Err(e));
                }
            });
            chunks
        })
        .collect();
    LeafScan { readers, turn: 0 }
}

/// The chunks of `[from, end)` one reader takes: `first`, `first + stride`, ...
#[derive(Debug, Clone, Copy)]
struct Turns {
    from: u64,
    end: u64,
    first: u64,
    stride: u64,
}

impl Turns {
    fn seq_ranges(self) -> impl Iterator<Item = Range<u64>> {
        (self.first..)
            .step_by(usize::try_from(self.stride).unwrap_or(1).max(1))
            .map(move |chunk| {
                let start = self.from.saturating_add(chunk.saturating_mul(CHUNK_SEQS));
                start..start.saturating_add(CHUNK_SEQS).min(self.end)
            })
            .take_while(move |range| range.start < self.end)
    }
}

/// Read and send one reader's chunks; stops early when nobody listens.
fn scan_sqlite_chunks(
    path: &Path,
    read_only: bool,
    turns: Turns,
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
    for range in turns.seq_ranges() {
        let mut rows = statement
            .query([seq_to_db(range.start)?, seq_to_db(range.end)?])
            .map_err(|e| fail("reading events from", e))?;
        let mut chunk = LeafChunk::with_capacity(usize::try_from(CHUNK_SEQS).unwrap_or(0));
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
            chunk.push(seq, bytes(column(1)?), bytes(column(2)?));
        }
        if sink.blocking_send(Ok(chunk)).is_err() {
            return Ok(());
        }
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

/// Start one reader of `[from, end)` of the PostgreSQL log through `pool`, on a task.
pub(crate) fn scan_postgres(pool: PgPool, from: u64, end: u64) -> LeafScan {
    let (sink, chunks) = mpsc::channel(CHUNKS_AHEAD);
    tokio::spawn(scan_postgres_pages(pool, from, end, sink));
    LeafScan {
        readers: vec![chunks],
        turn: 0,
    }
}

async fn scan_postgres_pages(pool: PgPool, from: u64, end: u64, sink: mpsc::Sender<ScanResult>) {
    const SQL: &str = "SELECT seq, canonical, leaf_hash FROM events \
                       WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3";
    let mut next = from;
    while next < end {
        let read: Result<Vec<LeafRow>, StoreError> = async {
            sqlx::query_as(SQL)
                .bind(seq_to_db(next)?)
                .bind(seq_to_db(end)?)
                .bind(PG_PAGE)
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
        let mut chunk = LeafChunk::with_capacity(rows.len());
        for (seq, canonical, leaf_hash) in &rows {
            chunk.push(*seq, canonical.as_deref(), leaf_hash.as_deref());
        }
        if sink.send(Ok(chunk)).await.is_err() {
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
    fn a_chunk_gives_back_each_row_hashed_and_as_stored() {
        let mut chunk = LeafChunk::with_capacity(2);
        chunk.push(7, Some(b"event"), Some(&[1; 32]));
        chunk.push(-1, None, Some(&[2; 31]));
        chunk.push(9, Some(b""), None);
        let rows: Vec<ScannedLeaf<'_>> = chunk.rows().collect();
        assert_eq!(
            rows,
            [
                ScannedLeaf {
                    seq: 7,
                    leaf: Some(leaf_hash(b"event")),
                    stored_leaf_hash: Some(&[1; 32]),
                },
                ScannedLeaf {
                    seq: -1,
                    leaf: None,
                    stored_leaf_hash: Some(&[2; 31]),
                },
                ScannedLeaf {
                    seq: 9,
                    leaf: Some(leaf_hash(b"")),
                    stored_leaf_hash: None,
                },
            ]
        );
    }

    #[test]
    fn readers_take_turns_over_chunks_that_cover_the_range_once() {
        let end = 3 * CHUNK_SEQS + 5;
        let ranges = |first| {
            Turns {
                from: 10,
                end,
                first,
                stride: 2,
            }
            .seq_ranges()
            .collect::<Vec<_>>()
        };
        let (a, b) = (ranges(0), ranges(1));
        assert_eq!(
            a,
            [
                10..10 + CHUNK_SEQS,
                10 + 2 * CHUNK_SEQS..end.min(10 + 3 * CHUNK_SEQS)
            ]
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b[0], 10 + CHUNK_SEQS..10 + 2 * CHUNK_SEQS);
        let mut all: Vec<Range<u64>> = a.into_iter().chain(b).collect();
        all.sort_by_key(|r| r.start);
        assert_eq!(all.first().map(|r| r.start), Some(10));
        assert_eq!(all.last().map(|r| r.end), Some(end));
        assert!(all.windows(2).all(|w| w[0].end == w[1].start));
    }
}
