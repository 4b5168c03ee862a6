//! Log verification: an honest log verifies; every single tampering is caught at the right
//! index, whether checkpoints are presented up front or as the stream reaches them.

mod common;

use std::collections::BTreeSet;

use common::series_event;
use proptest::prelude::*;
use warden_audit::canonical::canonical_bytes;
use warden_audit::merkle::{CompactRange, Hash, leaf_hash};
use warden_audit::{Checkpoint, LogVerifier, Record, SigningKey, VerifierKey, VerifyError};
use warden_core::event::{AuditEvent, Outcome};

const ORIGIN: &str = "warden.test/audit";

/// One `events` row as a store would keep it.
#[derive(Debug, Clone)]
struct Row {
    seq: u64,
    canonical: Vec<u8>,
    leaf: Hash,
    columns: AuditEvent,
}

impl Row {
    fn new(seq: u64, event: AuditEvent) -> Self {
        let canonical = canonical_bytes(&event);
        Self {
            seq,
            leaf: leaf_hash(&canonical),
            canonical,
            columns: event,
        }
    }
}

/// A signed checkpoint, with the position in the stream where an interleaving reader would
/// present it.
#[derive(Debug, Clone)]
struct Note {
    at: u64,
    text: String,
}

fn key() -> SigningKey {
    SigningKey::from_seed(ORIGIN, [9; 32]).unwrap()
}

/// A log of `n` events with checkpoints signed at `sizes` (as the writer does after batches).
fn build_log(n: u64, sizes: &BTreeSet<u64>) -> (Vec<Row>, Vec<Note>) {
    let key = key();
    let rows: Vec<Row> = (0..n).map(|i| Row::new(i, series_event(i))).collect();
    let mut tree = CompactRange::new();
    let mut notes = Vec::new();
    for row in &rows {
        tree.push(row.leaf);
        if sizes.contains(&tree.size()) {
            notes.push(sign_at(&key, tree.size(), tree.root()));
        }
    }
    (rows, notes)
}

fn sign_at(key: &SigningKey, size: u64, root: Hash) -> Note {
    Note {
        at: size,
        text: key.sign(&Checkpoint::new(ORIGIN, size, root)).unwrap(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// All checkpoints first, then the records.
    UpFront,
    /// Each checkpoint when the stream reaches its size; leftovers after the last record.
    Interleaved,
}

fn run(rows: &[Row], notes: &[Note], key: &VerifierKey, mode: Mode) -> warden_audit::VerifyReport {
    let mut v = LogVerifier::new();
    let mut remaining: Vec<&Note> = notes.iter().collect();
    if mode == Mode::UpFront {
        for note in remaining.drain(..) {
            let _ = v.check_checkpoint(&note.text, key);
        }
    }
    for row in rows {
        present_due(&mut v, &mut remaining, key);
        let record = Record {
            seq: row.seq,
            canonical: &row.canonical,
            leaf_hash: Some(row.leaf),
            columns: Some(&row.columns),
        };
        if v.push_record(record).is_err() {
            break;
        }
    }
    present_due(&mut v, &mut remaining, key);
    for note in remaining {
        let _ = v.check_checkpoint(&note.text, key);
    }
    v.finish()
}

fn present_due(v: &mut LogVerifier, remaining: &mut Vec<&Note>, key: &VerifierKey) {
    while let Some(note) = remaining.first().filter(|n| n.at <= v.size()) {
        let _ = v.check_checkpoint(&note.text, key);
        remaining.remove(0);
    }
}

#[test]
fn an_honest_log_verifies() {
    let sizes: BTreeSet<u64> = [1, 5, 8, 20].into();
    let (rows, notes) = build_log(23, &sizes);
    for mode in [Mode::UpFront, Mode::Interleaved] {
        let report = run(&rows, &notes, &key().verifier(), mode);
        assert_eq!(report.first_bad, None, "{mode:?}");
        assert_eq!(report.events_verified, 23);
        assert_eq!(report.checkpoints_verified, 4);
        assert_eq!(report.covered, 20);
        let leaves: Vec<Hash> = rows.iter().map(|r| r.leaf).collect();
        assert_eq!(report.root, warden_audit::merkle::root(&leaves));
    }
}

#[test]
fn a_log_resumes_after_a_signed_prefix() {
    let (rows, notes) = build_log(30, &[12, 30].into());
    let mut prefix = CompactRange::new();
    for row in &rows[..12] {
        prefix.push(row.leaf);
    }
    let verifier = key().verifier();
    let mut v = LogVerifier::new()
        .expect_origin(ORIGIN)
        .resume_at(&notes[0].text, &verifier, prefix.nodes().to_vec())
        .unwrap();
    assert_eq!(v.size(), 12);
    v.check_checkpoint(&notes[1].text, &verifier).unwrap();
    for row in &rows[12..] {
        v.push(row.seq, &row.canonical, Some(row.leaf)).unwrap();
    }
    let report = v.finish();
    assert_eq!(report.first_bad, None);
    assert_eq!(
        (report.events_verified, report.checkpoints_verified),
        (30, 2)
    );

    // Nodes that do not fold to the signed root, or another key, are refused.
    let mut bad = prefix.nodes().to_vec();
    bad[0][0] ^= 1;
    let err = LogVerifier::new()
        .resume_at(&notes[0].text, &verifier, bad)
        .err();
    assert!(
        matches!(err, Some(VerifyError::RootMismatch { size: 12, .. })),
        "{err:?}"
    );
    let other = SigningKey::from_seed(ORIGIN, [1; 32]).unwrap().verifier();
    let err = LogVerifier::new()
        .resume_at(&notes[0].text, &other, prefix.nodes().to_vec())
        .err();
    assert!(
        matches!(err, Some(VerifyError::BadCheckpoint { index: 12, .. })),
        "{err:?}"
    );
}

#[test]
fn hashes_only_mode_and_missing_leaf_hashes() {
    let (rows, notes) = build_log(10, &[10].into());
    let mut v = LogVerifier::new()
        .decode_events(false)
        .expect_origin(ORIGIN);
    v.check_checkpoint(&notes[0].text, &key().verifier())
        .unwrap();
    for row in &rows {
        v.push(row.seq, &row.canonical, None).unwrap();
    }
    let report = v.finish();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.checkpoints_verified, 1);
}

#[test]
fn another_origin_is_refused() {
    let (rows, notes) = build_log(3, &[3].into());
    let mut v = LogVerifier::new().expect_origin("other.example/log");
    for row in &rows {
        v.push(row.seq, &row.canonical, Some(row.leaf)).unwrap();
    }
    let err = v
        .check_checkpoint(&notes[0].text, &key().verifier())
        .unwrap_err();
    assert!(matches!(err, VerifyError::OriginChanged { .. }), "{err}");
}

#[test]
fn a_checkpoint_presented_too_late_is_an_error() {
    let (rows, notes) = build_log(4, &[2].into());
    let mut v = LogVerifier::new();
    for row in &rows {
        v.push(row.seq, &row.canonical, Some(row.leaf)).unwrap();
    }
    let err = v
        .check_checkpoint(&notes[0].text, &key().verifier())
        .unwrap_err();
    assert_eq!(err, VerifyError::CheckpointBehind { index: 4, size: 2 });
    // And the verifier stays failed.
    assert_eq!(v.push(4, b"x", None), Err(err));
}

#[test]
fn garbage_notes_fail_where_the_stream_is() {
    let (rows, _) = build_log(3, &BTreeSet::new());
    let mut v = LogVerifier::new();
    v.push(0, &rows[0].canonical, None).unwrap();
    let err = v
        .check_checkpoint("not a note", &key().verifier())
        .unwrap_err();
    assert_eq!(err.index(), 1);
    assert!(matches!(
        err,
        VerifyError::BadCheckpoint {
            claimed_size: None,
            ..
        }
    ));
}

#[test]
fn messages_are_helpful() {
    let (mut rows, notes) = build_log(4, &[4].into());
    rows[2].canonical[40] ^= 1;
    let report = run(&rows, &notes, &key().verifier(), Mode::UpFront);
    let (index, err) = report.first_bad.unwrap();
    assert_eq!(index, 2);
    let message = err.to_string();
    assert!(message.starts_with("event 2 was modified"), "{message}");
}

// ---------------------------------------------------------------------------------------
// Single tamperings, at random

#[derive(Debug, Clone)]
enum Tamper {
    /// Flip one bit of a record's canonical bytes; the stored leaf hash stays.
    FlipBit { i: usize, byte: usize, bit: u8 },
    /// Rewrite a record and its leaf hash and columns consistently.
    Rewrite { i: usize },
    /// Edit only an indexed column.
    EditColumn { i: usize },
    /// Store non-canonical bytes (with a matching leaf hash).
    NonCanonical { i: usize },
    /// Delete a record.
    Delete { i: usize },
    /// Insert a forged record with the seq of an existing one, after it.
    InsertAfter { i: usize },
    /// The same, before it.
    InsertBefore { i: usize },
    /// Insert a forged record and renumber every later seq.
    InsertRenumber { i: usize },
    /// Swap the contents of two records; seqs stay in place.
    SwapContents { i: usize, j: usize },
    /// Return two records out of seq order.
    SwapOrder { i: usize, j: usize },
    /// Remove the tail from `i` on.
    Truncate { i: usize },
    /// Replace a checkpoint with one signed by another key of the same name.
    ForgeCheckpoint { c: usize },
    /// Replace a checkpoint with a validly signed one over a different root.
    FalseRoot { c: usize },
}

fn tamper() -> impl Strategy<Value = Tamper> {
    let i = || any::<usize>();
    prop_oneof![
        (i(), i(), 0u8..8).prop_map(|(i, byte, bit)| Tamper::FlipBit { i, byte, bit }),
        i().prop_map(|i| Tamper::Rewrite { i }),
        i().prop_map(|i| Tamper::EditColumn { i }),
        i().prop_map(|i| Tamper::NonCanonical { i }),
        i().prop_map(|i| Tamper::Delete { i }),
        i().prop_map(|i| Tamper::InsertAfter { i }),
        i().prop_map(|i| Tamper::InsertBefore { i }),
        i().prop_map(|i| Tamper::InsertRenumber { i }),
        (i(), i()).prop_map(|(i, j)| Tamper::SwapContents { i, j }),
        (i(), i()).prop_map(|(i, j)| Tamper::SwapOrder { i, j }),
        i().prop_map(|i| Tamper::Truncate { i }),
        i().prop_map(|c| Tamper::ForgeCheckpoint { c }),
        i().prop_map(|c| Tamper::FalseRoot { c }),
    ]
}

/// What the verifier must report: the index and a predicate on the error.
struct Expect {
    index: u64,
    kind: fn(&VerifyError) -> bool,
}

/// The size of the last checkpoint at or below `i`: where a root mismatch points.
fn covered_before(sizes: &BTreeSet<u64>, i: u64) -> u64 {
    sizes.range(..=i).next_back().copied().unwrap_or(0)
}

fn forged_row(seq: u64) -> Row {
    let mut e = series_event(seq);
    e.id.push_str("-forged");
    Row::new(seq, e)
}

/// Apply `t` (its indices taken modulo the log) and say what must be reported, or `None`
/// when the tampering is a no-op for this log.
fn apply(
    t: &Tamper,
    rows: &mut Vec<Row>,
    notes: &mut [Note],
    sizes: &BTreeSet<u64>,
) -> Option<Expect> {
    let n = rows.len();
    let root_mismatch = |i: usize| Expect {
        index: covered_before(sizes, i as u64),
        kind: |e| matches!(e, VerifyError::RootMismatch { .. }),
    };
    let at = |index: usize, kind: fn(&VerifyError) -> bool| Expect {
        index: index as u64,
        kind,
    };
    Some(match *t {
        Tamper::FlipBit { i, byte, bit } => {
            let (i, row) = (i % n, &mut rows[i % n]);
            let byte = byte % row.canonical.len();
            row.canonical[byte] ^= 1 << bit;
            at(i, |e| matches!(e, VerifyError::LeafHashMismatch { .. }))
        }
        Tamper::Rewrite { i } => {
            let i = i % n;
            let mut e = rows[i].columns.clone();
            e.outcome = if e.outcome == Outcome::Ok {
                Outcome::Denied
            } else {
                Outcome::Ok
            };
            rows[i] = Row::new(i as u64, e);
            root_mismatch(i)
        }
        Tamper::EditColumn { i } => {
            let i = i % n;
            rows[i].columns.agent = Some("mallory".into());
            at(
                i,
                |e| matches!(e, VerifyError::ColumnsMismatch { fields, .. } if fields == &["agent"]),
            )
        }
        Tamper::NonCanonical { i } => {
            let i = i % n;
            let row = &mut rows[i];
            row.canonical = String::from_utf8(row.canonical.clone())
                .unwrap()
                .replacen("{", "{ ", 1)
                .into_bytes();
            row.leaf = leaf_hash(&row.canonical);
            at(i, |e| matches!(e, VerifyError::Undecodable { .. }))
        }
        Tamper::Delete { i } => {
            let i = i % n;
            rows.remove(i);
            if i == n - 1 {
                at(i, |e| matches!(e, VerifyError::Truncated { .. }))
            } else {
                at(i, |e| matches!(e, VerifyError::Missing { .. }))
            }
        }
        Tamper::InsertAfter { i } => {
            let i = i % n;
            rows.insert(i + 1, forged_row(i as u64));
            at(i, |e| matches!(e, VerifyError::Duplicate { .. }))
        }
        Tamper::InsertBefore { i } => {
            let i = i % n;
            rows.insert(i, forged_row(i as u64));
            if sizes.contains(&(i as u64 + 1)) {
                root_mismatch(i)
            } else {
                at(i, |e| matches!(e, VerifyError::Duplicate { .. }))
            }
        }
        Tamper::InsertRenumber { i } => {
            let i = i % n;
            rows.insert(i, forged_row(i as u64));
            for row in &mut rows[i + 1..] {
                row.seq += 1;
            }
            root_mismatch(i)
        }
        Tamper::SwapContents { i, j } => {
            let (i, j) = ordered(i % n, j % n)?;
            let (a, b) = (rows[i].clone(), rows[j].clone());
            rows[i] = Row { seq: a.seq, ..b };
            rows[j] = Row { seq: b.seq, ..a };
            root_mismatch(i)
        }
        Tamper::SwapOrder { i, j } => {
            let (i, j) = ordered(i % n, j % n)?;
            rows.swap(i, j);
            at(i, |e| matches!(e, VerifyError::Missing { .. }))
        }
        Tamper::Truncate { i } => {
            let i = i % n;
            rows.truncate(i);
            at(i, |e| matches!(e, VerifyError::Truncated { .. }))
        }
        Tamper::ForgeCheckpoint { c } => {
            let note = &mut notes[c % notes.len()];
            let forger = SigningKey::from_seed(ORIGIN, [10; 32]).unwrap();
            let leaves: Vec<Hash> = rows[..note.at as usize].iter().map(|r| r.leaf).collect();
            note.text = sign_at(&forger, note.at, warden_audit::merkle::root(&leaves)).text;
            at(note.at as usize, |e| {
                matches!(e, VerifyError::BadCheckpoint { .. })
            })
        }
        Tamper::FalseRoot { c } => {
            let note = &mut notes[c % notes.len()];
            note.text = sign_at(&key(), note.at, leaf_hash(b"false")).text;
            Expect {
                index: sizes.range(..note.at).next_back().copied().unwrap_or(0),
                kind: |e| matches!(e, VerifyError::RootMismatch { .. }),
            }
        }
    })
}

fn ordered(i: usize, j: usize) -> Option<(usize, usize)> {
    match i.cmp(&j) {
        std::cmp::Ordering::Less => Some((i, j)),
        std::cmp::Ordering::Greater => Some((j, i)),
        std::cmp::Ordering::Equal => None,
    }
}

fn log_and_sizes() -> impl Strategy<Value = (u64, BTreeSet<u64>)> {
    (1u64..40).prop_flat_map(|n| {
        let sizes = proptest::collection::btree_set(1..=n, 0..6).prop_map(move |mut s| {
            s.insert(n); // the writer always checkpoints its latest batch
            s
        });
        (Just(n), sizes)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn every_single_tampering_is_found_at_its_index(
        (n, sizes) in log_and_sizes(),
        t in tamper(),
        interleaved in any::<bool>(),
    ) {
        let (mut rows, mut notes) = build_log(n, &sizes);
        let Some(expect) = apply(&t, &mut rows, &mut notes, &sizes) else {
            return Ok(());
        };
        let mode = if interleaved { Mode::Interleaved } else { Mode::UpFront };
        let report = run(&rows, &notes, &key().verifier(), mode);
        let Some((index, err)) = report.first_bad.clone() else {
            return Err(TestCaseError::fail(format!("{t:?} not detected: {report:?}")));
        };
        prop_assert!((expect.kind)(&err), "{:?}: wrong error {}", t, err);
        prop_assert_eq!(index, expect.index, "{:?}: {}", t, err);
        prop_assert_eq!(index, err.index());
    }

    /// With a checkpoint after every event, even hash-consistent rewrites are pinned to the
    /// exact event.
    #[test]
    fn checkpoints_at_every_size_pin_rewrites_exactly(n in 1u64..30, i in any::<prop::sample::Index>()) {
        let sizes: BTreeSet<u64> = (1..=n).collect();
        let (mut rows, notes) = build_log(n, &sizes);
        let i = i.index(n as usize);
        let mut e = rows[i].columns.clone();
        e.reason = Some("rewritten".into());
        rows[i] = Row::new(i as u64, e);
        let report = run(&rows, &notes, &key().verifier(), Mode::UpFront);
        prop_assert_eq!(report.first_bad.map(|(index, _)| index), Some(i as u64));
    }
}
