//! Where proof generation gets subtree hashes from.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::ops::Range;

use super::{CompactRange, Hash, root};

/// A perfect subtree: the `2^level` leaves `[index·2^level, (index+1)·2^level)`.
/// Level 0 is a single leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u32, index: u64) -> Self {
        Self { level, index }
    }

    /// The leaves under this node, or `None` if they do not fit in `u64`.
    pub fn leaf_range(&self) -> Option<Range<u64>> {
        let width = 1u64.checked_shl(self.level)?;
        let start = self.index.checked_mul(width)?;
        Some(start..start.checked_add(width)?)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(level {}, index {})", self.level, self.index)
    }
}

/// Why a subtree hash could not be had.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("subtree {0} is beyond the leaves the source holds")]
    Missing(NodeId),
    #[error("reading subtree {id}: {source}")]
    Source {
        id: NodeId,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Gives the hash of any perfect subtree of the log. Proof generation asks only for subtrees
/// wholly inside the tree size it proves.
pub trait NodeSource {
    fn node(&self, id: NodeId) -> Result<Hash, NodeError>;
}

impl<T: NodeSource + ?Sized> NodeSource for &T {
    fn node(&self, id: NodeId) -> Result<Hash, NodeError> {
        (**self).node(id)
    }
}

/// Leaf hashes in order: each subtree is rebuilt from its leaves (O(2^level) hashing).
impl NodeSource for [Hash] {
    fn node(&self, id: NodeId) -> Result<Hash, NodeError> {
        let range = id
            .leaf_range()
            .filter(|r| r.end <= self.len() as u64)
            .ok_or(NodeError::Missing(id))?;
        Ok(root(&self[range.start as usize..range.end as usize]))
    }
}

impl NodeSource for Vec<Hash> {
    fn node(&self, id: NodeId) -> Result<Hash, NodeError> {
        self.as_slice().node(id)
    }
}

/// Prefetched subtree hashes, e.g. the ones [`super::inclusion_proof_nodes`] names, read from
/// the store in one query.
impl<S: BuildHasher> NodeSource for HashMap<NodeId, Hash, S> {
    fn node(&self, id: NodeId) -> Result<Hash, NodeError> {
        self.get(&id).copied().ok_or(NodeError::Missing(id))
    }
}

/// Leaf hashes read one at a time by a function (`index -> leaf hash`), each subtree rebuilt
/// from its leaves while streaming (O(2^level) reads and hashing, O(level) memory).
pub struct FromLeaves<F>(pub F);

impl<F, E> NodeSource for FromLeaves<F>
where
    F: Fn(u64) -> Result<Hash, E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn node(&self, id: NodeId) -> Result<Hash, NodeError> {
        let range = id.leaf_range().ok_or(NodeError::Missing(id))?;
        let mut subtree = CompactRange::new();
        for i in range {
            let leaf = (self.0)(i).map_err(|e| NodeError::Source {
                id: NodeId::new(0, i),
                source: e.into(),
            })?;
            subtree.push(leaf);
        }
        Ok(subtree.root())
    }
}

/// The hashes of the perfect subtrees at levels `stride`, `2·stride`, `3·stride`, ... of a
/// growing log, kept in memory so that a proof needs at most `2^stride` hashes per proof
/// element instead of rebuilding subtrees from their leaves.
///
/// Fed leaf by leaf like a [`CompactRange`] (which it contains, so it also gives the root).
/// Memory: about `32·N / (2^stride − 1)` bytes for N leaves — with stride 4, 2.1 MB per
/// million leaves. Combine it with a leaf source ([`SubtreeCache::over`]) for the levels
/// below the stride.
#[derive(Debug, Clone)]
pub struct SubtreeCache {
    stride: u32,
    range: CompactRange,
    /// `levels[j]` holds the nodes at level `(j + 1) · stride`, by index.
    levels: Vec<Vec<Hash>>,
}

impl SubtreeCache {
    /// An empty cache keeping every `stride`-th level (clamped to 1..=16; 4 to 8 are good).
    pub fn new(stride: u32) -> Self {
        Self {
            stride: stride.clamp(1, 16),
            range: CompactRange::new(),
            levels: Vec::new(),
        }
    }

    /// A cache over existing leaf hashes.
    pub fn from_leaves(stride: u32, leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut cache = Self::new(stride);
        for leaf in leaves {
            cache.push(leaf);
        }
        cache
    }

    /// Append one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let stride = self.stride;
        let levels = &mut self.levels;
        self.range.push_with(leaf, |id, hash| {
            if id.level == 0 || id.level % stride != 0 {
                return;
            }
            let j = (id.level / stride - 1) as usize;
            if levels.len() <= j {
                levels.resize_with(j + 1, Vec::new);
            }
            // Nodes of one level complete in index order, so the index is the position.
            debug_assert_eq!(levels[j].len() as u64, id.index);
            levels[j].push(*hash);
        });
    }

    pub fn stride(&self) -> u32 {
        self.stride
    }

    /// How many leaves have been pushed.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// The root of all leaves pushed so far.
    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// The frontier of all leaves pushed so far.
    pub fn compact_range(&self) -> &CompactRange {
        &self.range
    }

    /// Bytes of hashes held.
    pub fn memory_bytes(&self) -> usize {
        self.levels.iter().map(Vec::len).sum::<usize>() * 32 + self.range.nodes().len() * 32
    }

    /// A node source answering from the cache, and from `leaves` below the stride (or past
    /// what the cache has seen).
    pub fn over<'a, S: NodeSource + ?Sized>(&'a self, leaves: &'a S) -> Cached<'a, S> {
        Cached {
            cache: self,
            leaves,
        }
    }

    /// The cached node's hash, folded up from the nearest cached level below it.
    fn lookup(&self, id: NodeId) -> Option<Hash> {
        if id.level < self.stride {
            return None;
        }
        let base = id.level / self.stride * self.stride;
        let span = id.level - base;
        let nodes = self.levels.get((base / self.stride - 1) as usize)?;
        let first = usize::try_from(id.index.checked_shl(span)?).ok()?;
        let last = first.checked_add(1 << span)?;
        nodes.get(first..last).map(root)
    }
}

/// A [`SubtreeCache`] backed by a leaf source. See [`SubtreeCache::over`].
pub struct Cached<'a, S: ?Sized> {
    cache: &'a SubtreeCache,
    leaves: &'a S,
}

impl<S: NodeSource + ?Sized> NodeSource for Cached<'_, S> {
    fn node(&self, id: NodeId) -> Result<Hash, NodeError> {
        match self.cache.lookup(id) {
            Some(hash) => Ok(hash),
            None => self.leaves.node(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    #[test]
    fn every_source_agrees_with_the_leaves() {
        let leaves: Vec<Hash> = (0..200u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let by_fn = FromLeaves(|i: u64| -> Result<Hash, std::io::Error> {
            Ok(leaf_hash(&i.to_be_bytes()))
        });
        for stride in [1, 2, 3, 4, 8] {
            let cache = SubtreeCache::from_leaves(stride, leaves.iter().copied());
            let cached = cache.over(&by_fn);
            for level in 0..8u32 {
                for index in 0..(200u64 >> level) {
                    let id = NodeId::new(level, index);
                    let want = leaves.node(id).unwrap();
                    assert_eq!(cached.node(id).unwrap(), want, "stride {stride} {id}");
                    assert_eq!(by_fn.node(id).unwrap(), want);
                }
            }
        }
    }

    #[test]
    fn missing_nodes_are_errors() {
        let leaves: Vec<Hash> = (0..5u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        assert!(matches!(
            leaves.node(NodeId::new(3, 0)),
            Err(NodeError::Missing(_))
        ));
        assert!(leaves.node(NodeId::new(64, 1)).is_err());
        assert!(leaves.node(NodeId::new(1, u64::MAX)).is_err());
        assert!(
            HashMap::<NodeId, Hash>::new()
                .node(NodeId::new(0, 0))
                .is_err()
        );
    }
}
