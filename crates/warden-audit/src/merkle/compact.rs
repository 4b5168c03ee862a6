//! The compact range `[0, size)`: the frontier of a growing tree.

use super::{Hash, NodeError, NodeId, NodeSource, empty_root, node_hash};

/// The roots of the perfect subtrees that make up the leaves `[0, size)`, one per set bit of
/// `size`, largest (leftmost) first. Enough to append leaves and compute the root at any
/// size: O(1) amortised hashing per leaf, at most 64 hashes of memory.
///
/// The store can persist [`CompactRange::nodes`] with each checkpoint and resume with
/// [`CompactRange::from_parts`] instead of re-reading every leaf hash after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<Hash>,
}

/// [`CompactRange::from_parts`] was given a node count that does not fit the size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a compact range of size {size} has {want} nodes, not {got}")]
pub struct BadCompactRange {
    pub size: u64,
    pub want: u32,
    pub got: usize,
}

impl CompactRange {
    /// The empty range.
    pub fn new() -> Self {
        Self::default()
    }

    /// A range from its persisted parts: `nodes` as [`CompactRange::nodes`] returned them.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, BadCompactRange> {
        if nodes.len() != size.count_ones() as usize {
            return Err(BadCompactRange {
                size,
                want: size.count_ones(),
                got: nodes.len(),
            });
        }
        Ok(Self { size, nodes })
    }

    /// The range `[0, size)` read from a node source: one node per set bit of `size`.
    pub fn from_source<S: NodeSource + ?Sized>(source: &S, size: u64) -> Result<Self, NodeError> {
        let mut nodes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                nodes.push(source.node(NodeId::new(level, start >> level))?);
                start += 1 << level;
            }
        }
        Ok(Self { size, nodes })
    }

    /// How many leaves the range covers.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest first (for persisting).
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Append one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _| {});
    }

    /// Append one leaf hash, reporting every perfect subtree it completes — the leaf itself
    /// (level 0), then each parent it closes, bottom up. A store that caches subtree hashes
    /// persists the ones at the levels it keeps.
    pub fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let mut hash = leaf;
        let mut id = NodeId::new(0, self.size);
        completed(id, &hash);
        while id.index & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
            completed(id, &hash);
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The tree head of `[0, size)` (RFC 9162 `MTH`): the nodes folded right to left.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn streaming_root_matches_the_definition_at_every_size() {
        let all = leaves(300);
        let mut range = CompactRange::new();
        assert_eq!(range.root(), root(&[]));
        for (i, leaf) in all.iter().enumerate() {
            range.push(*leaf);
            assert_eq!(range.root(), root(&all[..=i]), "size {}", i + 1);
            assert_eq!(range.nodes().len(), range.size().count_ones() as usize);
        }
    }

    #[test]
    fn resumes_from_parts_and_from_a_source() {
        let all = leaves(77);
        let mut range = CompactRange::new();
        for leaf in &all[..50] {
            range.push(*leaf);
        }
        let mut resumed = CompactRange::from_parts(50, range.nodes().to_vec()).unwrap();
        let mut from_source = CompactRange::from_source(&all[..], 50).unwrap();
        assert_eq!(from_source, resumed);
        for leaf in &all[50..] {
            resumed.push(*leaf);
            from_source.push(*leaf);
        }
        assert_eq!(resumed.root(), root(&all));
        assert_eq!(from_source.root(), root(&all));
        assert!(CompactRange::from_parts(50, vec![]).is_err());
    }

    #[test]
    fn reports_completed_subtrees() {
        let mut range = CompactRange::new();
        let mut seen = Vec::new();
        for leaf in leaves(4) {
            range.push_with(leaf, |id, _| seen.push((id.level, id.index)));
        }
        assert_eq!(
            seen,
            [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0)]
        );
    }
}
