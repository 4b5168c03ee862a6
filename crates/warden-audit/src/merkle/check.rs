//! Proof verification, following RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
//!
//! Inputs are byte slices, as they arrive from the wire: a `&Hash` coerces to `&[u8]`, and a
//! value that is not 32 bytes long is a [`ProofError::BadHashLength`], never a panic.

use super::{Hash, node_hash};
use crate::to_hex;

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("{what} is {len} bytes long; a SHA-256 hash is 32")]
    BadHashLength { what: String, len: usize },
    #[error("the proof has more hashes than a tree of this size needs")]
    ProofTooLong,
    #[error("the proof has fewer hashes than a tree of this size needs")]
    ProofTooShort,
    #[error("the proof leads to root {computed}, not to the expected {expected}")]
    RootMismatch { computed: String, expected: String },
    #[error("consistency proof from size {size1} to the smaller size {size2}")]
    SizesOutOfOrder { size1: u64, size2: u64 },
    #[error("a consistency proof from the empty tree proves nothing (size1 is 0)")]
    EmptyTree,
    #[error("the sizes are equal, so the proof must be empty; it has {len} hashes")]
    ProofNotEmpty { len: usize },
    #[error("the sizes are equal but the roots differ")]
    RootsDiffer,
    #[error("the consistency proof is empty")]
    EmptyProof,
    #[error("the proof does not lead to the first root (computed {computed}, expected {expected})")]
    FirstRootMismatch { computed: String, expected: String },
    #[error(
        "the proof does not lead to the second root (computed {computed}, expected {expected})"
    )]
    SecondRootMismatch { computed: String, expected: String },
}

/// Verify that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2). `proof` is the audit path, deepest sibling first.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    // 1. leaf_index must be below tree_size.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let hash = to_hash(leaf_hash, || "the leaf hash".to_owned())?;
    let expected = to_hash(root, || "the root".to_owned())?;
    // 2. fn = leaf_index, sn = tree_size - 1. 3. r = hash.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = hash;
    // 4. For each value p in the inclusion_path array:
    for (i, p) in proof.iter().enumerate() {
        let p = to_hash(p.as_ref(), || format!("proof hash {i}"))?;
        // a. If sn is 0, stop and fail.
        if sn == 0 {
            return Err(ProofError::ProofTooLong);
        }
        // b. If LSB(fn) is set, or fn equals sn:
        if fn_ & 1 == 1 || fn_ == sn {
            // i. r = HASH(0x01 || p || r)
            r = node_hash(&p, &r);
            // ii. If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // Otherwise: r = HASH(0x01 || r || p)
            r = node_hash(&r, &p);
        }
        // c. Right-shift fn and sn once.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. sn must be 0 and r must equal root_hash.
    if sn != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if r != expected {
        return Err(ProofError::RootMismatch {
            computed: to_hex(&r),
            expected: to_hex(&expected),
        });
    }
    Ok(())
}

/// Verify that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
/// with root `root1` (RFC 9162 §2.1.4.2).
///
/// Outside the RFC's `0 < size1 < size2`: `size1 > size2` and `size1 == 0` are rejected (a
/// consistency proof from the empty tree proves nothing), and equal sizes need an empty proof
/// and equal roots.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[P],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::ProofNotEmpty { len: proof.len() });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootsDiffer)
        };
    }
    // 1. An empty consistency_path fails.
    if proof.is_empty() {
        return Err(ProofError::EmptyProof);
    }
    let first_hash = to_hash(root1, || "the first root".to_owned())?;
    let second_hash = to_hash(root2, || "the second root".to_owned())?;
    let mut path = Vec::with_capacity(proof.len() + 1);
    // 2. If first is an exact power of 2, prepend first_hash.
    if size1.is_power_of_two() {
        path.push(first_hash);
    }
    for (i, p) in proof.iter().enumerate() {
        path.push(to_hash(p.as_ref(), || format!("proof hash {i}"))?);
    }
    let (fr, sr, sn) = fold_consistency(size1, size2, &path)?;
    // 7. fr must equal first_hash, sr second_hash, and sn must be 0.
    if sn != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if fr != first_hash {
        return Err(ProofError::FirstRootMismatch {
            computed: to_hex(&fr),
            expected: to_hex(&first_hash),
        });
    }
    if sr != second_hash {
        return Err(ProofError::SecondRootMismatch {
            computed: to_hex(&sr),
            expected: to_hex(&second_hash),
        });
    }
    Ok(())
}

/// Steps 3 to 6 of §2.1.4.2 over a non-empty `path` (with `first_hash` already prepended when
/// due). Returns `(fr, sr, sn)`.
fn fold_consistency(
    size1: u64,
    size2: u64,
    path: &[Hash],
) -> Result<(Hash, Hash, u64), ProofError> {
    // 3. fn = first - 1, sn = second - 1.
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    // 4. If LSB(fn) is set, right-shift fn and sn until LSB(fn) is not set.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. fr = sr = the first value of the path.
    let (first, rest) = path.split_first().ok_or(ProofError::EmptyProof)?;
    let (mut fr, mut sr) = (*first, *first);
    // 6. For each subsequent value c:
    for c in rest {
        // a. If sn is 0, stop and fail.
        if sn == 0 {
            return Err(ProofError::ProofTooLong);
        }
        // b. If LSB(fn) is set, or fn equals sn:
        if fn_ & 1 == 1 || fn_ == sn {
            // i. fr = HASH(0x01 || c || fr); ii. sr = HASH(0x01 || c || sr)
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // iii. If LSB(fn) is not set, right-shift until LSB(fn) is set or fn is 0.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // Otherwise: sr = HASH(0x01 || sr || c)
            sr = node_hash(&sr, c);
        }
        // c. Right-shift fn and sn once.
        fn_ >>= 1;
        sn >>= 1;
    }
    Ok((fr, sr, sn))
}

fn to_hash(bytes: &[u8], what: impl FnOnce() -> String) -> Result<Hash, ProofError> {
    Hash::try_from(bytes).map_err(|_| ProofError::BadHashLength {
        what: what(),
        len: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let leaf = leaf_hash(b"a");
        let head = root(&[leaf]);
        let none: &[Hash] = &[];
        assert_eq!(verify_inclusion(&leaf, 0, 1, none, &head), Ok(()));
        assert!(matches!(
            verify_inclusion(&leaf[..5], 0, 1, none, &head),
            Err(ProofError::BadHashLength { .. })
        ));
        assert!(matches!(
            verify_inclusion(&leaf, 0, 1, &[vec![0u8; 3]], &head),
            Err(ProofError::BadHashLength { .. })
        ));
        assert!(matches!(
            verify_inclusion(&leaf, u64::MAX, u64::MAX, none, &head),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            verify_inclusion(&leaf, 0, u64::MAX, &[leaf; 70], &head),
            Err(ProofError::ProofTooLong)
        ));
        assert!(matches!(
            verify_consistency(1, u64::MAX, &head, &head, &[leaf; 70]),
            Err(ProofError::ProofTooLong)
        ));
        assert!(matches!(
            verify_consistency(u64::MAX, u64::MAX, &head, &head, none),
            Ok(())
        ));
        assert!(matches!(
            verify_consistency(3, 5, &head[..1], &head, &[leaf]),
            Err(ProofError::BadHashLength { .. })
        ));
    }
}
