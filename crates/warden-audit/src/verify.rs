//! Offline verification of a stored log: records in seq order, plus signed checkpoints.
//!
//! [`LogVerifier`] recomputes every leaf hash and the tree root while streaming (O(1) memory
//! per event, O(log N) overall) and checks each signed checkpoint against the recomputed
//! tree when the stream reaches the checkpoint's size. It stops at the first problem and
//! names the leaf index where the log stops being trustworthy:
//!
//! | tampering | detected as | index |
//! |---|---|---|
//! | record modified, leaf hash kept | [`VerifyError::LeafHashMismatch`] | the record |
//! | record not canonical / not an event | [`VerifyError::Undecodable`] | the record |
//! | indexed columns edited | [`VerifyError::ColumnsMismatch`] | the record |
//! | record deleted (gap in seq) | [`VerifyError::Missing`] | the missing seq |
//! | record inserted with a used seq | [`VerifyError::Duplicate`] | the duplicated seq |
//! | records out of seq order | [`VerifyError::Missing`] / [`VerifyError::Duplicate`] | the first seq out of place |
//! | record rewritten with its leaf hash, inserted with seqs renumbered, contents swapped | [`VerifyError::RootMismatch`] | the size of the last checkpoint that still verified |
//! | tail removed | [`VerifyError::Truncated`] | the first missing seq |
//! | checkpoint forged (bad signature) | [`VerifyError::BadCheckpoint`] | the size it claims (or the log's end) |
//! | checkpoint with a wrong size or root | [`VerifyError::RootMismatch`] / [`VerifyError::Truncated`] | as above |
//!
//! Consistency between consecutive checkpoints follows: both are compared with the same
//! recomputed tree, the later one extending the earlier by construction, and all must share
//! one origin.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use warden_core::event::AuditEvent;

use crate::canonical::{self, CanonicalError};
use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::merkle::{CompactRange, Hash, leaf_hash};
use crate::note::VerifierKey;
use crate::to_hex;

/// The first problem found in a log. [`VerifyError::index`] is the leaf index it points at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("event {index} is missing: the next record has seq {got}")]
    Missing { index: u64, got: u64 },
    #[error("seq {index} appears again after seq {last}: a record was inserted or moved")]
    Duplicate { index: u64, last: u64 },
    #[error(
        "event {index} was modified: its canonical bytes hash to {computed}, but the stored \
         leaf hash is {stored}"
    )]
    LeafHashMismatch {
        index: u64,
        computed: String,
        stored: String,
    },
    #[error("event {index}'s canonical bytes are not a canonical event: {error}")]
    Undecodable {
        index: u64,
        #[source]
        error: CanonicalError,
    },
    #[error("event {index}'s stored columns disagree with its canonical record in: {}", fields.join(", "))]
    ColumnsMismatch { index: u64, fields: Vec<String> },
    #[error(
        "the checkpoint at size {size} does not match the log: it signs root {signed}, the \
         events give {computed}; an event in [{index}, {size}) was changed, inserted, removed \
         or moved, or the checkpoint is false"
    )]
    RootMismatch {
        index: u64,
        size: u64,
        signed: String,
        computed: String,
    },
    #[error(
        "the log ends after {index} events, but a checkpoint covers {size}: the tail was removed"
    )]
    Truncated { index: u64, size: u64 },
    #[error("checkpoint{} does not verify: {error}", claimed_size.map(|s| format!(" claiming size {s}")).unwrap_or_default())]
    BadCheckpoint {
        index: u64,
        claimed_size: Option<u64>,
        #[source]
        error: CheckpointError,
    },
    #[error("the checkpoint at size {size} is for origin {found:?}, earlier ones for {expected:?}")]
    OriginChanged {
        index: u64,
        size: u64,
        expected: String,
        found: String,
    },
    #[error(
        "the checkpoint at size {size} came after {index} events were verified: present \
         each checkpoint before pushing past its size"
    )]
    CheckpointBehind { index: u64, size: u64 },
}

impl VerifyError {
    /// The leaf index the problem points at (see the [module docs](self)).
    pub fn index(&self) -> u64 {
        match self {
            Self::Missing { index, .. }
            | Self::Duplicate { index, .. }
            | Self::LeafHashMismatch { index, .. }
            | Self::Undecodable { index, .. }
            | Self::ColumnsMismatch { index, .. }
            | Self::RootMismatch { index, .. }
            | Self::Truncated { index, .. }
            | Self::BadCheckpoint { index, .. }
            | Self::OriginChanged { index, .. }
            | Self::CheckpointBehind { index, .. } => *index,
        }
    }
}

/// What a verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records accepted, in order, before any problem.
    pub events_verified: u64,
    /// Checkpoints whose signature, origin, size and root all matched.
    pub checkpoints_verified: u64,
    /// The size of the last verified checkpoint: events below it are vouched for by a
    /// signature, events from it on only by their stored hashes.
    pub covered: u64,
    /// The root of the accepted records.
    pub root: Hash,
    /// The first problem, with the leaf index it points at.
    pub first_bad: Option<(u64, VerifyError)>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// One stored record, as the store returns it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record's position in the log (the `seq` column).
    pub seq: u64,
    /// The stored canonical bytes.
    pub canonical: &'a [u8],
    /// The stored leaf hash, if the store keeps one.
    pub leaf_hash: Option<Hash>,
    /// The event as rebuilt from the store's indexed columns, if it should be compared.
    pub columns: Option<&'a AuditEvent>,
}

/// A checkpoint waiting for the stream to reach its size.
type Pending = Result<Checkpoint, CheckpointError>;

/// Streams a stored log and its checkpoints; see the [module docs](self).
///
/// Feed records in seq order with [`LogVerifier::push`] (or [`LogVerifier::push_record`]),
/// and checkpoints with [`LogVerifier::check_checkpoint`] either up front or when the stream
/// reaches their size; then call [`LogVerifier::finish`]. After the first problem every call
/// returns that same error.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    decode: bool,
    tree: CompactRange,
    pending: BTreeMap<u64, Vec<Pending>>,
    origin: Option<String>,
    covered: u64,
    checkpoints_verified: u64,
    failure: Option<VerifyError>,
}

impl Default for LogVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl LogVerifier {
    /// A verifier that also decodes every record strictly.
    pub fn new() -> Self {
        Self {
            decode: true,
            tree: CompactRange::new(),
            pending: BTreeMap::new(),
            origin: None,
            covered: 0,
            checkpoints_verified: 0,
            failure: None,
        }
    }

    /// Whether to decode each record strictly (on by default). Off, a record is checked only
    /// through its hashes — several times faster, and still complete when every record has a
    /// stored leaf hash and every event is under a checkpoint.
    pub fn decode_events(mut self, decode: bool) -> Self {
        self.decode = decode;
        self
    }

    /// Require every checkpoint to be for log `origin` (otherwise the first one sets it).
    pub fn expect_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Start after a verified prefix instead of at seq 0, for a log exported from a later
    /// point: `note` is the signed checkpoint at the prefix's size and `nodes` its compact range
    /// (as stored with it), which must fold to the signed root. Records are then pushed from
    /// seq `size` on, and the checkpoint counts as verified. Call before anything else.
    pub fn resume_at(
        mut self,
        note: &str,
        key: &VerifierKey,
        nodes: Vec<Hash>,
    ) -> Result<Self, VerifyError> {
        let cp = checkpoint::verify(note, key).map_err(|error| {
            let claimed = checkpoint::claimed(note).map(|c| c.size);
            bad_checkpoint(claimed.unwrap_or(0), claimed, error)
        })?;
        let range =
            CompactRange::from_parts(cp.size, nodes).map_err(|_| VerifyError::RootMismatch {
                index: 0,
                size: cp.size,
                signed: STANDARD.encode(cp.root),
                computed: "(a malformed compact range)".to_owned(),
            })?;
        if range.root() != cp.root {
            return Err(VerifyError::RootMismatch {
                index: 0,
                size: cp.size,
                signed: STANDARD.encode(cp.root),
                computed: STANDARD.encode(range.root()),
            });
        }
        if let Some(origin) = &self.origin
            && *origin != cp.origin
        {
            return Err(VerifyError::OriginChanged {
                index: 0,
                size: cp.size,
                expected: origin.clone(),
                found: cp.origin,
            });
        }
        self.tree = range;
        self.origin = Some(cp.origin);
        self.covered = cp.size;
        self.checkpoints_verified += 1;
        Ok(self)
    }

    /// Records accepted so far.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The root of the records accepted so far.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The first problem found, if any.
    pub fn failure(&self) -> Option<&VerifyError> {
        self.failure.as_ref()
    }

    /// Check the next record: its seq, canonical bytes and stored leaf hash.
    pub fn push(
        &mut self,
        seq: u64,
        canonical: &[u8],
        stored_leaf_hash: Option<Hash>,
    ) -> Result<(), VerifyError> {
        self.push_record(Record {
            seq,
            canonical,
            leaf_hash: stored_leaf_hash,
            columns: None,
        })
    }

    /// [`LogVerifier::push`] for a record whose leaf hash the caller has already computed from
    /// its canonical bytes with [`leaf_hash`] (say, on other threads while this one folds the
    /// tree). `leaf` must be exactly that hash: it is what the tree is built from. `canonical`
    /// is read only by a verifier that decodes events.
    pub fn push_hashed(
        &mut self,
        seq: u64,
        canonical: &[u8],
        leaf: Hash,
        stored_leaf_hash: Option<Hash>,
    ) -> Result<(), VerifyError> {
        self.ensure_ok()?;
        let record = Record {
            seq,
            canonical,
            leaf_hash: stored_leaf_hash,
            columns: None,
        };
        self.check_hashed_record(&record, leaf)
            .map_err(|e| self.fail(e))?;
        self.tree.push(leaf);
        self.check_pending_at_size()
    }

    /// Check the next record, including its indexed columns when given.
    pub fn push_record(&mut self, record: Record<'_>) -> Result<(), VerifyError> {
        self.ensure_ok()?;
        let leaf = leaf_hash(record.canonical);
        self.check_hashed_record(&record, leaf)
            .map_err(|e| self.fail(e))?;
        self.tree.push(leaf);
        self.check_pending_at_size()
    }

    /// Present a signed checkpoint. Checked now if the stream is at its size, later when it
    /// gets there, or at [`LogVerifier::finish`] (as truncation) if it never does.
    pub fn check_checkpoint(&mut self, note: &str, key: &VerifierKey) -> Result<(), VerifyError> {
        self.ensure_ok()?;
        let opened = checkpoint::verify(note, key);
        let size = match &opened {
            Ok(cp) => cp.size,
            // Where a forged note points, if it can be read at all.
            Err(error) => match checkpoint::claimed(note) {
                Some(cp) => cp.size,
                None => return Err(self.fail(bad_checkpoint(self.size(), None, error.clone()))),
            },
        };
        if size < self.size() {
            return Err(self.fail(match opened {
                Ok(_) => VerifyError::CheckpointBehind {
                    index: self.size(),
                    size,
                },
                Err(error) => bad_checkpoint(size, Some(size), error),
            }));
        }
        self.pending.entry(size).or_default().push(opened);
        self.check_pending_at_size()
    }

    /// End of the stream: checkpoints never reached mean a truncated log (or a forged
    /// checkpoint). Returns the report.
    pub fn finish(mut self) -> VerifyReport {
        if self.failure.is_none()
            && let Some((&size, pending)) = self.pending.iter().next()
        {
            let index = self.size();
            let error = match pending.iter().find_map(|p| p.as_ref().err()) {
                Some(error) => bad_checkpoint(index, Some(size), error.clone()),
                None => VerifyError::Truncated { index, size },
            };
            self.failure = Some(error);
        }
        VerifyReport {
            events_verified: self.tree.size(),
            checkpoints_verified: self.checkpoints_verified,
            covered: self.covered,
            root: self.tree.root(),
            first_bad: self.failure.map(|e| (e.index(), e)),
        }
    }

    fn ensure_ok(&self) -> Result<(), VerifyError> {
        match &self.failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: VerifyError) -> VerifyError {
        self.failure.get_or_insert(error).clone()
    }

    /// All checks of one record; returns its leaf hash.
    /// Check `record`, whose canonical bytes hash to `leaf`.
    fn check_hashed_record(&self, record: &Record<'_>, leaf: Hash) -> Result<(), VerifyError> {
        let index = self.size();
        check_seq(index, record.seq)?;
        if let Some(stored) = record.leaf_hash
            && stored != leaf
        {
            return Err(VerifyError::LeafHashMismatch {
                index,
                computed: to_hex(&leaf),
                stored: to_hex(&stored),
            });
        }
        match record.columns {
            // Bytes equal to the columns' encoding decode (the round-trip property of the
            // canonical tests), so the strict decode runs only to name what a mismatch is.
            Some(columns) => {
                check_columns(index, record.canonical, columns).map_err(|mismatch| {
                    self.undecodable(index, record.canonical)
                        .unwrap_or(mismatch)
                })?;
            }
            None => {
                if let Some(error) = self.undecodable(index, record.canonical) {
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Why `canonical` does not decode strictly, when decoding is on and it does not.
    fn undecodable(&self, index: u64, canonical: &[u8]) -> Option<VerifyError> {
        if !self.decode {
            return None;
        }
        canonical::decode(canonical)
            .err()
            .map(|error| VerifyError::Undecodable { index, error })
    }

    /// Check every checkpoint waiting for the current size.
    fn check_pending_at_size(&mut self) -> Result<(), VerifyError> {
        let size = self.size();
        let Some(due) = self.pending.remove(&size) else {
            return Ok(());
        };
        for opened in due {
            let result = match opened {
                Ok(cp) => self.check_against_tree(&cp),
                Err(error) => Err(bad_checkpoint(size, Some(size), error)),
            };
            result.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// A verified checkpoint whose size is the current size.
    fn check_against_tree(&mut self, cp: &Checkpoint) -> Result<(), VerifyError> {
        if let Some(origin) = &self.origin
            && *origin != cp.origin
        {
            return Err(VerifyError::OriginChanged {
                index: self.covered,
                size: cp.size,
                expected: origin.clone(),
                found: cp.origin.clone(),
            });
        }
        let computed = self.tree.root();
        if computed != cp.root {
            return Err(VerifyError::RootMismatch {
                index: self.covered,
                size: cp.size,
                signed: STANDARD.encode(cp.root),
                computed: STANDARD.encode(computed),
            });
        }
        self.origin = Some(cp.origin.clone());
        self.covered = cp.size;
        self.checkpoints_verified += 1;
        Ok(())
    }
}

fn check_seq(index: u64, seq: u64) -> Result<(), VerifyError> {
    match seq.cmp(&index) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(VerifyError::Missing { index, got: seq }),
        std::cmp::Ordering::Less => Err(VerifyError::Duplicate {
            index: seq,
            last: index.saturating_sub(1),
        }),
    }
}

fn check_columns(index: u64, canonical: &[u8], columns: &AuditEvent) -> Result<(), VerifyError> {
    let expected = canonical::canonical_bytes(columns);
    if expected == canonical {
        return Ok(());
    }
    Err(VerifyError::ColumnsMismatch {
        index,
        fields: canonical::differing_fields(&expected, canonical),
    })
}

fn bad_checkpoint(index: u64, claimed_size: Option<u64>, error: CheckpointError) -> VerifyError {
    VerifyError::BadCheckpoint {
        index,
        claimed_size,
        error,
    }
}
