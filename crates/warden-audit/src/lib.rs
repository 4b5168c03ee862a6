//! The mathematics and formats of Warden's tamper-evident audit log. This crate does no IO.
//!
//! Every audit event becomes one leaf of an RFC 9162 Merkle tree, and signed checkpoints
//! vouch for the tree's size and root. Anyone with the verifier key can re-read the stored
//! records and check that nothing was changed, inserted, removed or reordered. The modules:
//!
//! - [`canonical`]: the versioned, deterministic byte encoding of an
//!   [`AuditEvent`](warden_core::AuditEvent) (`warden-event-v1`), and its strict decoder.
//! - [`merkle`]: leaf and node hashing, tree roots, the streaming [`CompactRange`], inclusion
//!   and consistency proofs (generated from any [`NodeSource`], verified exactly as RFC 9162
//!   §2.1.3.2 and §2.1.4.2 say), and [`SubtreeCache`] for fast proofs over large logs.
//! - [`note`]: C2SP signed notes with Ed25519 keys ([`SigningKey`], [`VerifierKey`]).
//! - [`checkpoint`]: C2SP tlog-checkpoints, signed and verified as notes.
//! - [`verify`]: [`LogVerifier`], which streams stored records and checkpoints and names the
//!   first bad index.
//!
//! The byte formats are specified in `docs/audit-format.md`.
//!
//! **Pure.** Nothing here touches the network, a database or the filesystem; the store and the
//! server persist what this crate computes (see [`verify`] and [`merkle`] for what to keep).
//! The only outside input is the operating system's random generator, used by
//! [`SigningKey::generate`].

pub mod canonical;
pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod verify;

pub use canonical::{CanonicalError, canonical_bytes};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use merkle::{
    CompactRange, Hash, NodeError, NodeId, NodeSource, ProofError, ProveError, SubtreeCache,
    consistency_proof, inclusion_proof, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
pub use note::{KeyError, NoteError, SigningKey, VerifierKey};
pub use verify::{LogVerifier, Record, VerifyError, VerifyReport};

/// Lower-case hex of `bytes`, for messages.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
