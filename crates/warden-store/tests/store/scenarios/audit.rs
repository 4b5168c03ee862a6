//! The tamper-evident side of the log: canonical bytes and leaf hashes written at append,
//! checkpoints, stored subtree hashes, the backfill of older rows, and the read-only reader.

use chrono::{TimeZone, Utc};
use sqlx::Connection;
use warden_audit::canonical::{self, canonical_bytes};
use warden_audit::merkle::{CompactRange, leaf_hash};
use warden_core::event::AuditEvent;
use warden_core::store::{StoreError, StoredCheckpoint, SubtreeHash};
use warden_store::LogReader;

use super::{event, full_event};
use crate::harness::Db;

/// Run one SQL statement on the test database, behind the store's back.
async fn exec(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url)
            .await
            .expect("a raw SQLite connection");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .expect("raw SQL");
        let _ = c.close().await;
    } else {
        let mut c = sqlx::PgConnection::connect(url)
            .await
            .expect("a raw PostgreSQL connection");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .expect("raw SQL");
        let _ = c.close().await;
    }
}

fn normalized(e: &AuditEvent) -> AuditEvent {
    let mut e = e.clone();
    canonical::normalize(&mut e);
    e
}

fn checkpoint(size: u64, nodes: Vec<[u8; 32]>, root: [u8; 32], note: &str) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        root,
        note: note.to_owned(),
        nodes,
        created_at: Utc
            .timestamp_opt(1_750_000_000, 123_456_000)
            .single()
            .expect("time"),
    }
}

pub async fn appended_events_carry_their_canonical_bytes_and_leaf_hash(db: Db) {
    let store = db.store;
    let e = full_event();
    let seq = store.append(&e).await.expect("append");
    let leaf = store
        .leaf_of_event(&e.id)
        .await
        .expect("leaf_of_event")
        .expect("the event's leaf");
    assert_eq!(leaf.seq, seq);
    assert_eq!(leaf.canonical, canonical_bytes(&e));
    assert_eq!(leaf.leaf_hash, leaf_hash(&leaf.canonical));
    assert_eq!(
        canonical::decode(&leaf.canonical).expect("strict decode"),
        normalized(&e),
        "the canonical bytes hold every field (times to the microsecond)"
    );
    assert_eq!(store.leaf_of_event("nope").await.expect("missing"), None);
}

pub async fn leaf_hashes_read_back_in_log_order(db: Db) {
    let store = db.store;
    let events: Vec<AuditEvent> = (0..40).map(|i| event(&format!("a{i}"))).collect();
    for e in &events {
        store.append(e).await.expect("append");
    }
    let stored = store.events_range(0, 40).await.expect("range");
    let want: Vec<[u8; 32]> = stored
        .iter()
        .map(|s| leaf_hash(&canonical_bytes(&s.event)))
        .collect();
    assert_eq!(store.leaf_hashes(0, 40).await.expect("all"), want);
    assert_eq!(store.leaf_hashes(7, 19).await.expect("some"), want[7..19]);
    assert_eq!(
        store.leaf_hashes(5, 5).await.expect("none"),
        Vec::<[u8; 32]>::new()
    );
    assert!(matches!(
        store.leaf_hashes(30, 41).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.log_size().await.expect("size"), 40);
}

pub async fn checkpoints_and_subtrees_round_trip_and_the_first_write_wins(db: Db) {
    let store = db.store;
    assert_eq!(store.latest_checkpoint().await.expect("latest"), None);
    let leaves: Vec<[u8; 32]> = (0u64..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut range = CompactRange::new();
    let mut subtrees = Vec::new();
    for leaf in &leaves {
        range.push_with(*leaf, |id, hash| {
            if id.level > 0 && id.level.is_multiple_of(4) {
                subtrees.push(SubtreeHash {
                    level: id.level,
                    index: id.index,
                    hash: *hash,
                });
            }
        });
        if range.size() == 20 {
            let cp = checkpoint(20, range.nodes().to_vec(), range.root(), "note at 20\n");
            assert!(
                store
                    .insert_checkpoint(&cp, &subtrees)
                    .await
                    .expect("insert 20")
            );
        }
    }
    let cp40 = checkpoint(40, range.nodes().to_vec(), range.root(), "note at 40\n");
    assert!(
        store
            .insert_checkpoint(&cp40, &subtrees)
            .await
            .expect("insert 40")
    );
    let forged = checkpoint(40, vec![], [7; 32], "another note\n");
    assert!(
        !store.insert_checkpoint(&forged, &[]).await.expect("again"),
        "a second checkpoint of the same size is refused, the first kept"
    );
    assert_eq!(
        store.latest_checkpoint().await.expect("latest"),
        Some(cp40.clone())
    );
    assert_eq!(
        store.checkpoint_at(40).await.expect("at 40"),
        Some(cp40.clone())
    );
    assert_eq!(store.checkpoint_at(39).await.expect("at 39"), None);
    let all = store.checkpoints().await.expect("all");
    assert_eq!(all.iter().map(|c| c.size).collect::<Vec<_>>(), vec![20, 40]);
    let resumed = CompactRange::from_parts(40, all[1].nodes.clone()).expect("nodes");
    assert_eq!(resumed.root(), cp40.root);

    let level4: Vec<[u8; 32]> = (0..2)
        .map(|i| warden_audit::merkle::root(&leaves[i * 16..(i + 1) * 16]))
        .collect();
    assert_eq!(
        store.subtree_hashes(4, 0, 2).await.expect("level 4"),
        level4
    );
    assert_eq!(
        store.subtree_hashes(4, 1, 5).await.expect("past the end"),
        level4[1..],
        "only what is stored"
    );
    assert!(
        store
            .subtree_hashes(8, 0, 1)
            .await
            .expect("level 8")
            .is_empty()
    );
}

pub async fn rows_from_before_the_merkle_log_are_backfilled(db: Db) {
    let store = db.store;
    let events: Vec<AuditEvent> = (0..5).map(|i| event(&format!("old{i}"))).collect();
    for e in &events {
        store.append(e).await.expect("append");
    }
    // Such rows hold only the JSON copy events used to keep.
    for seq in [1, 3] {
        let json = serde_json::to_string(&events[seq]).expect("json");
        exec(
            &db.url,
            &format!(
                "UPDATE events SET body = '{json}', canonical = NULL, leaf_hash = NULL \
                 WHERE seq = {seq}"
            ),
        )
        .await;
    }
    assert!(matches!(
        store.leaf_hashes(0, 5).await,
        Err(StoreError::Corrupt(m)) if m.contains("event 1")
    ));
    assert_eq!(store.backfill_leaves().await.expect("backfill"), 2);
    assert_eq!(store.backfill_leaves().await.expect("again"), 0);
    let want: Vec<[u8; 32]> = events
        .iter()
        .map(|e| leaf_hash(&canonical_bytes(e)))
        .collect();
    assert_eq!(store.leaf_hashes(0, 5).await.expect("filled"), want);
}

pub async fn the_log_reader_sees_rows_as_stored(db: Db) {
    let store = db.store.clone();
    let e = full_event();
    store.append(&e).await.expect("append");
    store.append(&event("b")).await.expect("append");
    let range = {
        let mut r = CompactRange::new();
        for h in store.leaf_hashes(0, 2).await.expect("leaves") {
            r.push(h);
        }
        r
    };
    let cp = checkpoint(2, range.nodes().to_vec(), range.root(), "n\n");
    store.insert_checkpoint(&cp, &[]).await.expect("checkpoint");

    let reader = LogReader::open(&db.url).await.expect("a reader");
    assert_eq!(reader.row_count().await.expect("count"), 2);
    let records = reader.records(0, 10).await.expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].seq, 0);
    assert_eq!(
        records[0].canonical.as_deref(),
        Some(canonical_bytes(&e).as_slice())
    );
    assert_eq!(
        records[0].leaf_hash.as_deref(),
        Some(leaf_hash(&canonical_bytes(&e)).as_slice())
    );
    assert_eq!(
        records[0]
            .columns
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(canonical_bytes),
        Some(canonical_bytes(&e)),
        "the columns tell the same event"
    );
    assert_eq!(reader.records(1, 10).await.expect("from 1").len(), 1);
    let cps = reader.checkpoints().await.expect("checkpoints");
    assert_eq!(cps.len(), 1);
    assert_eq!((cps[0].size, cps[0].note.as_str()), (2, "n\n"));
    assert_eq!(cps[0].root, cp.root.to_vec());

    // An edited column shows up as a different event.
    exec(
        &db.url,
        "UPDATE events SET outcome = 'denied' WHERE seq = 0",
    )
    .await;
    let records = reader.records(0, 1).await.expect("records");
    let columns = records[0].columns.as_ref().expect("columns");
    let columns = columns
        .as_ref()
        .expect("laid over the decoded canonical bytes");
    assert_eq!(columns.outcome, warden_core::event::Outcome::Denied);
    assert!(records[0].body.is_none(), "new rows keep no JSON copy");
    let decoded = canonical::decode(records[0].canonical.as_deref().expect("canonical"));
    assert_eq!(
        decoded.map(|e| e.outcome).ok(),
        Some(warden_core::event::Outcome::Ok),
        "the canonical bytes still tell the event as appended"
    );
    reader.close().await;
}

/// The quick verifier's scan: every row of a range several chunks long, in seq order, each
/// row's canonical bytes hashed (on SQLite, by readers taking turns over the chunks).
pub async fn a_leaf_scan_gives_every_row_once_in_order_hashed(db: Db) {
    const ROWS: u64 = 2 * warden_store::leaf_scan::CHUNK_SEQS + 100;
    let series = if db.url.starts_with("sqlite:") {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             SELECT i, CAST('event ' || i AS BLOB) AS c FROM n",
            last = ROWS - 1
        )
    } else {
        format!(
            "SELECT i, convert_to('event ' || i, 'UTF8') AS c \
             FROM generate_series(0, {last}) AS i",
            last = ROWS - 1
        )
    };
    let time = if db.url.starts_with("sqlite:") {
        "'2025-01-01T00:00:00.000000Z'"
    } else {
        "now()"
    };
    exec(
        &db.url,
        &format!(
            "INSERT INTO events (seq, id, correlation_id, kind, started_at, finished_at, \
             verdict, outcome, canonical, leaf_hash) \
             SELECT s.i, 'e' || s.i, 'c', 'admin', {time}, {time}, 'none', 'failed', s.c, NULL \
             FROM ({series}) AS s"
        ),
    )
    .await;
    let reader = LogReader::open(&db.url).await.expect("a reader");
    let mut scan = reader.scan_leaves(0, ROWS);
    let mut next = 0u64;
    while let Some(chunk) = scan.next().await {
        for row in chunk.expect("a chunk").rows() {
            assert_eq!(row.seq, i64::try_from(next).expect("seq"));
            assert_eq!(
                row.leaf,
                Some(leaf_hash(format!("event {next}").as_bytes()))
            );
            assert_eq!(row.stored_leaf_hash, None);
            next += 1;
        }
    }
    assert_eq!(next, ROWS);
    reader.close().await;
}
