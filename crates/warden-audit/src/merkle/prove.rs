//! Proof generation: RFC 9162 §2.1.3.1 (`PATH`) and §2.1.4.1 (`PROOF`/`SUBPROOF`).
//!
//! Each proof element is the tree head of a range of leaves; every such range is aligned, so
//! it splits into at most 64 perfect subtrees ([`NodeId`]s) fetched from a [`NodeSource`] and
//! folded right to left.

use std::collections::BTreeSet;

use super::{Hash, NodeError, NodeId, NodeSource, node_hash, split_point};

/// Why a proof could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("no consistency proof from size {size1} to size {size2}: it needs 0 < size1 <= size2")]
    BadSizes { size1: u64, size2: u64 },
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// The inclusion proof (audit path) of leaf `index` in the tree of the first `size` leaves,
/// deepest sibling first, as [`super::verify_inclusion`] expects it.
///
/// Cost: O(log size) subtree lookups; the source decides what a lookup costs (see the
/// [module docs](super)).
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProveError> {
    inclusion_ranges(index, size)?
        .into_iter()
        .map(|(start, end)| range_hash(source, start, end))
        .collect()
}

/// The consistency proof from the tree of the first `size1` leaves to that of the first
/// `size2`, as [`super::verify_consistency`] expects it. Empty when the sizes are equal.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    source: &S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProveError> {
    consistency_ranges(size1, size2)?
        .into_iter()
        .map(|(start, end)| range_hash(source, start, end))
        .collect()
}

/// The perfect subtrees [`inclusion_proof`] will ask for: fetch them in one go (e.g. one
/// store query), put them in a `HashMap<NodeId, Hash>` and build the proof from that.
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<NodeId>, ProveError> {
    Ok(distinct_nodes(&inclusion_ranges(index, size)?))
}

/// The perfect subtrees [`consistency_proof`] will ask for (see [`inclusion_proof_nodes`]).
pub fn consistency_proof_nodes(size1: u64, size2: u64) -> Result<Vec<NodeId>, ProveError> {
    Ok(distinct_nodes(&consistency_ranges(size1, size2)?))
}

/// `PATH(index, D[0:size])` as leaf ranges, deepest first.
fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProveError> {
    if index >= size {
        return Err(ProveError::IndexOutOfRange { index, size });
    }
    let (mut start, mut end) = (0, size);
    let mut top_down = Vec::new();
    while end - start > 1 {
        let k = split_point(end - start);
        if index < start + k {
            top_down.push((start + k, end));
            end = start + k;
        } else {
            top_down.push((start, start + k));
            start += k;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// `PROOF(size1, D[0:size2])` as leaf ranges, in proof order.
fn consistency_ranges(size1: u64, size2: u64) -> Result<Vec<(u64, u64)>, ProveError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProveError::BadSizes { size1, size2 });
    }
    // SUBPROOF(m, D[start:end], whole), unrolled: the siblings found on the way down are
    // appended after whatever the bottom contributes, deepest first.
    let (mut start, mut end, mut m, mut whole) = (0, size2, size1, true);
    let mut siblings = Vec::new();
    let mut proof = Vec::new();
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                proof.push((start, end));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            siblings.push((start + k, end));
            end = start + k;
        } else {
            siblings.push((start, start + k));
            m -= k;
            start += k;
            whole = false;
        }
    }
    proof.extend(siblings.into_iter().rev());
    Ok(proof)
}

/// The aligned range `[start, end)` as perfect subtrees, left to right.
fn range_nodes(mut start: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    while start < end {
        let aligned = if start == 0 {
            63
        } else {
            start.trailing_zeros()
        };
        let fits = 63 - (end - start).leading_zeros();
        let level = aligned.min(fits);
        nodes.push(NodeId::new(level, start >> level));
        start += 1 << level;
    }
    nodes
}

/// `MTH(D[start:end])` for an aligned range: its perfect subtrees folded right to left.
fn range_hash<S: NodeSource + ?Sized>(
    source: &S,
    start: u64,
    end: u64,
) -> Result<Hash, ProveError> {
    let hashes = range_nodes(start, end)
        .into_iter()
        .map(|id| source.node(id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rev = hashes.iter().rev();
    let last = rev
        .next()
        .copied()
        .ok_or(NodeError::Missing(NodeId::new(0, start)))?;
    Ok(rev.fold(last, |acc, left| node_hash(left, &acc)))
}

fn distinct_nodes(ranges: &[(u64, u64)]) -> Vec<NodeId> {
    let set: BTreeSet<NodeId> = ranges
        .iter()
        .flat_map(|&(start, end)| range_nodes(start, end))
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::merkle::{leaf_hash, root, verify_consistency, verify_inclusion};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn every_inclusion_proof_verifies() {
        let all = leaves(70);
        for size in 1..=70u64 {
            let head = root(&all[..size as usize]);
            for index in 0..size {
                let proof = inclusion_proof(&all[..], index, size).unwrap();
                let leaf = &all[index as usize];
                verify_inclusion(leaf, index, size, &proof, &head)
                    .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
                // Any other leaf, or a wrong index, fails.
                let other = &all[((index + 1) % size) as usize];
                if size > 1 {
                    assert!(verify_inclusion(other, index, size, &proof, &head).is_err());
                    let wrong = (index + 1) % size;
                    assert!(verify_inclusion(leaf, wrong, size, &proof, &head).is_err());
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies() {
        let all = leaves(70);
        for size2 in 1..=70u64 {
            let root2 = root(&all[..size2 as usize]);
            for size1 in 1..=size2 {
                let root1 = root(&all[..size1 as usize]);
                let proof = consistency_proof(&all[..], size1, size2).unwrap();
                verify_consistency(size1, size2, &root1, &root2, &proof)
                    .unwrap_or_else(|e| panic!("{size1} -> {size2}: {e}"));
                if size1 < size2 {
                    assert!(verify_consistency(size1, size2, &root2, &root2, &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn prefetched_nodes_are_enough() {
        let all = leaves(1000);
        let fetch = |ids: Vec<NodeId>| -> HashMap<NodeId, Hash> {
            ids.into_iter()
                .map(|id| (id, all.node(id).unwrap()))
                .collect()
        };
        for (index, size) in [(0, 1), (5, 1000), (999, 1000), (512, 777)] {
            let map = fetch(inclusion_proof_nodes(index, size).unwrap());
            assert_eq!(
                inclusion_proof(&map, index, size).unwrap(),
                inclusion_proof(&all[..], index, size).unwrap()
            );
        }
        for (size1, size2) in [(1, 1), (3, 1000), (512, 1000), (999, 1000)] {
            let map = fetch(consistency_proof_nodes(size1, size2).unwrap());
            assert_eq!(
                consistency_proof(&map, size1, size2).unwrap(),
                consistency_proof(&all[..], size1, size2).unwrap()
            );
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let all = leaves(4);
        assert!(matches!(
            inclusion_proof(&all[..], 4, 4),
            Err(ProveError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            consistency_proof(&all[..], 0, 4),
            Err(ProveError::BadSizes { .. })
        ));
        assert!(matches!(
            consistency_proof(&all[..], 3, 2),
            Err(ProveError::BadSizes { .. })
        ));
        assert!(matches!(
            inclusion_proof(&all[..], 1, 9),
            Err(ProveError::Node(NodeError::Missing(_)))
        ));
    }
}
