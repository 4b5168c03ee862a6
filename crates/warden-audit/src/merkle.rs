//! RFC 9162 (RFC 6962) Merkle trees over SHA-256: hashing, roots, proofs.
//!
//! - [`leaf_hash`] `= SHA-256(0x00 || bytes)` and [`node_hash`] `= SHA-256(0x01 || l || r)`;
//!   [`root`] is the tree head `MTH` of RFC 9162 §2.1.1 for any number of leaves.
//! - [`CompactRange`] streams leaves and yields the root at any size in O(1) amortised hashing
//!   per leaf and O(log N) memory: how the store appends and how a verifier re-reads a log.
//! - [`inclusion_proof`] and [`consistency_proof`] build RFC 9162 §2.1.3.1 / §2.1.4.1 proofs
//!   from any [`NodeSource`]; [`verify_inclusion`] and [`verify_consistency`] check them
//!   step by step as §2.1.3.2 and §2.1.4.2 say.
//!
//! # Cost of proofs
//!
//! A proof is made of O(log N) subtree hashes. Where they come from decides the cost:
//!
//! | source | memory | one proof |
//! |---|---|---|
//! | `[Hash]` (leaf hashes only) | 32 B per leaf | O(N) hashing: each subtree is rebuilt from its leaves |
//! | [`SubtreeCache`] with stride `s` over leaf hashes | 32 B per 2^s leaves (≈ `32·N/(2^s − 1)` B) | O(2^s · log N) hashing, ≤ 2^s leaf reads per leaf-level subtree |
//! | `HashMap<NodeId, Hash>` filled from [`inclusion_proof_nodes`] | the nodes of one proof | O(log N) folding |
//!
//! The store keeps one leaf hash per event; the server keeps a [`SubtreeCache`] (stride 4:
//! ~2 MB per million events) or persists the nodes [`CompactRange::push_with`] reports at
//! the cached levels, and asks the store for leaf hashes only below the stride.

mod check;
mod compact;
mod prove;
mod source;

use sha2::{Digest, Sha256};

pub use check::{ProofError, verify_consistency, verify_inclusion};
pub use compact::{BadCompactRange, CompactRange};
pub use prove::{
    ProveError, consistency_proof, consistency_proof_nodes, inclusion_proof, inclusion_proof_nodes,
};
pub use source::{Cached, FromLeaves, NodeError, NodeId, NodeSource, SubtreeCache};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The tree head `MTH(D[n])` of RFC 9162 §2.1.1 over `leaf_hashes`, by its definition: split
/// at the largest power of two below `n`. O(n) hashing, O(log n) stack. (A [`CompactRange`]
/// gives the same root while streaming.)
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split_point(leaf_hashes.len() as u64) as usize;
            node_hash(&root(&leaf_hashes[..k]), &root(&leaf_hashes[k..]))
        }
    }
}

/// The largest power of two strictly below `n` (`n ≥ 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            crate::to_hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// RFC 6962 reference roots for the first eight leaves of the classic test set
    /// (the same leaves transparency-dev's test vectors use).
    #[test]
    fn roots_match_reference_values() {
        let leaves: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let want = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        for (n, want) in want.iter().enumerate() {
            assert_eq!(crate::to_hex(&root(&hashes[..=n])), *want, "size {}", n + 1);
        }
    }
}
