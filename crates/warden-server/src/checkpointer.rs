//! Signed checkpoints of the audit log, and the proofs served from them.
//!
//! The [`Checkpointer`] is a task beside the gateway. It keeps the Merkle tree's frontier (a
//! [`CompactRange`]) and feeds it the leaf hashes of new events, read from the store from the
//! last size it saw, so it works the same with one server or many replicas on one database.
//! While events arrive it signs a checkpoint at most once per `[audit] checkpoint_interval`
//! (default 1 s) and stores it with its compact range and the subtree hashes completed since the
//! last one (every [`STRIDE`]th level); it signs a last one when the server shuts down.
//!
//! On start it resumes from the latest stored checkpoint, after checking that checkpoint's
//! signature, that its stored compact range folds to the signed root, and that the log still
//! holds at least that many events. If any of that fails for a checkpoint signed by this key,
//! the log was tampered with and the server refuses to start (fail closed): `warden audit
//! verify` names the first bad event.
//!
//! The signing key comes from `WARDEN_CHECKPOINT_KEY` or `[audit] key_file` (default
//! `<data_dir>/checkpoint.key`, created mode 0600 on first start). Its private half is never
//! logged; the verifier key is written beside it as `checkpoint.pub` for auditors.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warden_audit::checkpoint;
use warden_audit::merkle::{
    CompactRange, Hash, NodeId, consistency_proof, consistency_proof_nodes, inclusion_proof,
    inclusion_proof_nodes, root, verify_consistency, verify_inclusion,
};
use warden_audit::{Checkpoint, SigningKey, VerifierKey};
use warden_core::Config;
use warden_core::store::{AuditLogStore, StoreError, StoredCheckpoint, SubtreeHash};
use warden_store::WardenStore;

/// Subtree hashes are stored at every `STRIDE`th level: 16, 256, 4096, ... leaves. A proof
/// then reads at most `2^STRIDE / 2` stored hashes (or leaf hashes) per element.
pub const STRIDE: u32 = 4;
/// The environment variable holding the signing key text (takes precedence over the file).
pub const KEY_ENV: &str = "WARDEN_CHECKPOINT_KEY";
/// The signing key's file name in the data dir, when `[audit] key_file` is not set.
pub const KEY_FILE: &str = "checkpoint.key";
/// The verifier key's file name, beside the signing key.
pub const PUBLIC_KEY_FILE: &str = "checkpoint.pub";
/// Leaf hashes read per query while catching up.
const READ_CHUNK: u64 = 8192;

/// Why the checkpointer cannot start or run.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointerError {
    #[error("checkpoint key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("checkpoint key from ${KEY_ENV}: {0}")]
    EnvKey(warden_audit::KeyError),
    #[error(
        "the audit log does not match its latest checkpoint (size {size}): {problem}; run \
         `warden audit verify` to find the first bad event"
    )]
    Tampered { size: u64, problem: String },
    #[error(
        "the stored checkpoints are for log origin {stored:?}, but [audit] origin is {configured:?}"
    )]
    OriginChanged { stored: String, configured: String },
    #[error("signing a checkpoint: {0}")]
    Sign(#[from] warden_audit::CheckpointError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Where the signing key file is: `[audit] key_file` or `<data_dir>/checkpoint.key`.
pub fn key_path(config: &Config) -> PathBuf {
    match &config.audit.key_file {
        Some(file) => config.resolve_path(file),
        None => config.resolve_path(&config.server.data_dir).join(KEY_FILE),
    }
}

/// Where the verifier key is published: `checkpoint.pub` beside the signing key file.
pub fn verifier_key_path(config: &Config) -> PathBuf {
    key_path(config).with_file_name(PUBLIC_KEY_FILE)
}

/// The checkpoint signing key: from `$WARDEN_CHECKPOINT_KEY`, else the key file, which is
/// created (mode 0600, named after the log's origin) if it does not exist. Writes the
/// verifier key to [`verifier_key_path`].
pub fn load_signing_key(config: &Config) -> Result<SigningKey, CheckpointerError> {
    let path = key_path(config);
    let key_error = |message: String| CheckpointerError::Key {
        path: path.clone(),
        message,
    };
    let key = match std::env::var(KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            SigningKey::parse(&text).map_err(CheckpointerError::EnvKey)?
        }
        _ => match fs::read_to_string(&path) {
            Ok(text) => SigningKey::parse(&text).map_err(|e| key_error(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&config.audit.origin)
                    .map_err(|e| key_error(e.to_string()))?;
                if let Some(dir) = path.parent().filter(|d| !d.exists()) {
                    create_private_dir(dir).map_err(|e| key_error(e.to_string()))?;
                }
                write_file(&path, key.to_private_text().as_bytes(), 0o600, true)
                    .map_err(|e| key_error(e.to_string()))?;
                tracing::info!(path = %path.display(), key = %key.verifier(), "created the checkpoint signing key");
                key
            }
            Err(e) => return Err(key_error(e.to_string())),
        },
    };
    let public = verifier_key_path(config);
    let text = format!("{}\n", key.verifier());
    if fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
        write_file(&public, text.as_bytes(), 0o644, false).map_err(|e| CheckpointerError::Key {
            path: public.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(key)
}

/// Create `dir` (and its parents) with mode 0700.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Write `bytes` to `path` with `mode`; with `new`, fail if the file exists.
fn write_file(path: &Path, bytes: &[u8], mode: u32, new: bool) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    Ok(())
}

/// The tree as far as this process has read it, and what is not stored yet.
struct Tree {
    range: CompactRange,
    /// Subtree hashes completed since the last checkpoint this process stored.
    pending: Vec<SubtreeHash>,
    /// The size of the newest checkpoint stored (by anyone) that this process knows of.
    signed: u64,
    last_signed: Option<Instant>,
}

struct Inner {
    store: Arc<dyn WardenStore>,
    key: SigningKey,
    origin: String,
    interval: Duration,
    tree: Mutex<Tree>,
}

/// Signs checkpoints of the audit log; see the [module docs](self).
pub struct Checkpointer {
    inner: Arc<Inner>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Resume from the store's latest checkpoint (checking it) and start the task.
    pub async fn start(
        store: Arc<dyn WardenStore>,
        key: SigningKey,
        origin: String,
        interval: Duration,
    ) -> Result<Self, CheckpointerError> {
        let tree = resume(store.as_ref(), &key, &origin).await?;
        let inner = Arc::new(Inner {
            store,
            key,
            origin,
            interval,
            tree: Mutex::new(tree),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(inner.clone(), stop.clone()));
        Ok(Self {
            inner,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// The verifier key of the signing key.
    pub fn verifier(&self) -> VerifierKey {
        self.inner.key.verifier()
    }

    /// Read new leaves and sign a checkpoint now if there is anything new; returns the size
    /// of the checkpoint stored, if one was.
    pub async fn checkpoint_now(&self) -> Result<Option<u64>, CheckpointerError> {
        self.inner.step(true).await
    }

    /// Stop the task and sign a last checkpoint over everything committed. Idempotent.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the checkpointer task failed");
            }
            match self.inner.step(true).await {
                Ok(Some(size)) => tracing::info!(size, "signed the final audit checkpoint"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "could not sign the final audit checkpoint"),
            }
        }
    }
}

async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    let poll = (inner.interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
        match inner.step(false).await {
            Ok(_) => failing = false,
            // Say it once per outage, not four times a second.
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "audit checkpointing failed; retrying");
            }
            Err(_) => {}
        }
    }
}

impl Inner {
    /// Catch up with the store; sign if there is something new and it is time (or `force`).
    async fn step(&self, force: bool) -> Result<Option<u64>, CheckpointerError> {
        let mut tree = self.tree.lock().await;
        let size = self.store.log_size().await?;
        while tree.range.size() < size {
            let from = tree.range.size();
            let to = size.min(from.saturating_add(READ_CHUNK));
            let leaves = self.store.leaf_hashes(from, to).await?;
            let Tree { range, pending, .. } = &mut *tree;
            for leaf in leaves {
                range.push_with(leaf, |id, hash| collect(pending, id, hash));
            }
        }
        let size = tree.range.size();
        let due = tree
            .last_signed
            .is_none_or(|at| at.elapsed() >= self.interval);
        if size <= tree.signed || !(force || due) {
            return Ok(None);
        }
        // Another replica may have signed this size already.
        if !force
            && let Some(latest) = self.store.latest_checkpoint().await?
            && latest.size >= size
        {
            // Its writer stored every subtree hash below its size.
            tree.pending.clear();
            tree.signed = latest.size;
            tree.last_signed = Some(Instant::now());
            return Ok(None);
        }
        let root = tree.range.root();
        let note = self
            .key
            .sign(&Checkpoint::new(self.origin.clone(), size, root))?;
        let stored = StoredCheckpoint {
            size,
            root,
            note,
            nodes: tree.range.nodes().to_vec(),
            created_at: chrono::Utc::now(),
        };
        self.store.insert_checkpoint(&stored, &tree.pending).await?;
        tree.pending.clear();
        tree.signed = size;
        tree.last_signed = Some(Instant::now());
        tracing::debug!(size, "signed an audit checkpoint");
        Ok(Some(size))
    }
}

/// The tree at the latest stored checkpoint, checked; or an empty tree for a new log.
async fn resume(
    store: &dyn WardenStore,
    key: &SigningKey,
    origin: &str,
) -> Result<Tree, CheckpointerError> {
    let fresh = |(range, pending): (CompactRange, Vec<SubtreeHash>), signed: u64| Tree {
        range,
        pending,
        signed,
        last_signed: None,
    };
    let Some(latest) = store.latest_checkpoint().await? else {
        let filled = store.backfill_leaves().await?;
        if filled > 0 {
            tracing::warn!(
                events = filled,
                "filled in the leaf hashes of events stored before the Merkle log; they are \
                 vouched for from this first checkpoint on"
            );
        }
        return Ok(fresh((CompactRange::new(), Vec::new()), 0));
    };
    let tampered = |problem: String| CheckpointerError::Tampered {
        size: latest.size,
        problem,
    };
    let cp = match checkpoint::verify(&latest.note, &key.verifier()) {
        Ok(cp) => cp,
        Err(e) => {
            // Not ours (the key changed) or forged: trust nothing stored, rebuild, go on.
            tracing::warn!(
                size = latest.size,
                error = %e,
                "the latest audit checkpoint is not signed by this server's key; rebuilding \
                 the tree from the stored leaf hashes"
            );
            let rebuilt = rebuild(store, store.log_size().await?).await?;
            return Ok(fresh(rebuilt, 0));
        }
    };
    if cp.origin != origin {
        return Err(CheckpointerError::OriginChanged {
            stored: cp.origin,
            configured: origin.to_owned(),
        });
    }
    if cp.size != latest.size || cp.root != latest.root {
        return Err(tampered(
            "its stored size or root differs from its signed note".into(),
        ));
    }
    let log_size = store.log_size().await?;
    if log_size < cp.size {
        return Err(tampered(format!(
            "the log holds only {log_size} events: its tail was removed"
        )));
    }
    let resumed = match CompactRange::from_parts(cp.size, latest.nodes.clone()) {
        Ok(range) if range.root() == cp.root => (range, Vec::new()),
        _ => {
            tracing::warn!(
                size = cp.size,
                "the latest checkpoint's stored compact range does not fold to its root; \
                 rebuilding it from the leaf hashes"
            );
            let rebuilt = rebuild(store, cp.size).await?;
            if rebuilt.0.root() != cp.root {
                return Err(tampered(
                    "the stored events hash to another root than the signed one".into(),
                ));
            }
            rebuilt
        }
    };
    Ok(fresh(resumed, cp.size))
}

/// The compact range of the first `size` leaves, read from the store, with the subtree
/// hashes to store at the next checkpoint.
async fn rebuild(
    store: &dyn WardenStore,
    size: u64,
) -> Result<(CompactRange, Vec<SubtreeHash>), StoreError> {
    let mut range = CompactRange::new();
    let mut subtrees = Vec::new();
    while range.size() < size {
        let from = range.size();
        let to = size.min(from.saturating_add(READ_CHUNK));
        for leaf in store.leaf_hashes(from, to).await? {
            range.push_with(leaf, |id, hash| collect(&mut subtrees, id, hash));
        }
    }
    Ok((range, subtrees))
}

/// Keep `id` if it is at a stored level.
fn collect(subtrees: &mut Vec<SubtreeHash>, id: NodeId, hash: &Hash) {
    if id.level > 0 && id.level.is_multiple_of(STRIDE) {
        subtrees.push(SubtreeHash {
            level: id.level,
            index: id.index,
            hash: *hash,
        });
    }
}

/// Why a checkpoint or proof cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("no event `{0}`")]
    UnknownEvent(String),
    #[error("no checkpoint has been signed yet; try again in a second")]
    NoCheckpoint,
    #[error("no checkpoint of size {0}")]
    UnknownCheckpoint(u64),
    #[error(
        "event {seq} is not covered by the latest checkpoint (size {size}) yet; try again in a \
         second"
    )]
    NotCovered { seq: u64, size: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("the stored tree does not match the signed checkpoint: {0}")]
    Inconsistent(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A signed checkpoint, as served.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    pub size: u64,
    /// Standard base64.
    pub root: String,
    /// The C2SP signed note.
    pub note: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&StoredCheckpoint> for CheckpointView {
    fn from(cp: &StoredCheckpoint) -> Self {
        Self {
            size: cp.size,
            root: STANDARD.encode(cp.root),
            note: cp.note.clone(),
            created_at: cp.created_at,
        }
    }
}

/// An inclusion proof of one event against the latest checkpoint (`docs/audit-format.md` §5).
#[derive(Debug, Clone, Serialize)]
pub struct InclusionView {
    pub event_id: String,
    /// The leaf index: the event's `seq`.
    pub index: u64,
    pub size: u64,
    /// The event's canonical bytes, standard base64: hash them to get the leaf hash.
    pub canonical: String,
    pub leaf_hash: String,
    /// Sibling subtree hashes, deepest first, standard base64.
    pub proof: Vec<String>,
    pub root: String,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
}

/// A consistency proof between two stored checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct ConsistencyView {
    pub size1: u64,
    pub size2: u64,
    pub proof: Vec<String>,
    pub checkpoint1: String,
    pub checkpoint2: String,
}

/// The latest signed checkpoint.
pub async fn latest(store: &dyn AuditLogStore) -> Result<CheckpointView, ProofError> {
    let cp = store
        .latest_checkpoint()
        .await?
        .ok_or(ProofError::NoCheckpoint)?;
    Ok(CheckpointView::from(&cp))
}

/// The inclusion proof of event `event_id` in the tree of the latest checkpoint. Reads
/// O(log N) stored subtree hashes (and at most a few leaf hashes per level below the stride),
/// and checks the proof against the signed root before answering.
pub async fn prove_event(
    store: &dyn AuditLogStore,
    event_id: &str,
) -> Result<InclusionView, ProofError> {
    let leaf = store
        .leaf_of_event(event_id)
        .await?
        .ok_or_else(|| ProofError::UnknownEvent(event_id.to_owned()))?;
    let cp = store
        .latest_checkpoint()
        .await?
        .ok_or(ProofError::NoCheckpoint)?;
    if leaf.seq >= cp.size {
        return Err(ProofError::NotCovered {
            seq: leaf.seq,
            size: cp.size,
        });
    }
    let ids = inclusion_proof_nodes(leaf.seq, cp.size)
        .map_err(|e| ProofError::BadRequest(e.to_string()))?;
    let nodes = fetch_nodes(store, &ids).await?;
    let proof = inclusion_proof(&nodes, leaf.seq, cp.size)
        .map_err(|e| ProofError::Inconsistent(e.to_string()))?;
    verify_inclusion(&leaf.leaf_hash, leaf.seq, cp.size, &proof, &cp.root)
        .map_err(|e| ProofError::Inconsistent(e.to_string()))?;
    Ok(InclusionView {
        event_id: event_id.to_owned(),
        index: leaf.seq,
        size: cp.size,
        canonical: STANDARD.encode(&leaf.canonical),
        leaf_hash: STANDARD.encode(leaf.leaf_hash),
        proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
        root: STANDARD.encode(cp.root),
        checkpoint: cp.note,
    })
}

/// The consistency proof between the stored checkpoints of sizes `size1 <= size2`.
pub async fn prove_consistency(
    store: &dyn AuditLogStore,
    size1: u64,
    size2: u64,
) -> Result<ConsistencyView, ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::BadRequest(format!(
            "no consistency proof from size {size1} to size {size2}: it needs 0 < from <= to"
        )));
    }
    let cp1 = store
        .checkpoint_at(size1)
        .await?
        .ok_or(ProofError::UnknownCheckpoint(size1))?;
    let cp2 = store
        .checkpoint_at(size2)
        .await?
        .ok_or(ProofError::UnknownCheckpoint(size2))?;
    let ids =
        consistency_proof_nodes(size1, size2).map_err(|e| ProofError::BadRequest(e.to_string()))?;
    let nodes = fetch_nodes(store, &ids).await?;
    let proof = consistency_proof(&nodes, size1, size2)
        .map_err(|e| ProofError::Inconsistent(e.to_string()))?;
    verify_consistency(size1, size2, &cp1.root, &cp2.root, &proof)
        .map_err(|e| ProofError::Inconsistent(e.to_string()))?;
    Ok(ConsistencyView {
        size1,
        size2,
        proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
        checkpoint1: cp1.note,
        checkpoint2: cp2.note,
    })
}

/// The hashes of the perfect subtrees `ids`: from the stored subtree hashes at the nearest
/// stride level at or below each node (at most `2^(STRIDE-1)` rows), or from leaf hashes below
/// the first stride level. A node whose stored hashes are missing is rebuilt from its leaves.
async fn fetch_nodes(
    store: &dyn AuditLogStore,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, ProofError> {
    let mut nodes = HashMap::with_capacity(ids.len());
    for &id in ids {
        let range = id
            .leaf_range()
            .ok_or_else(|| ProofError::BadRequest(format!("subtree {id} is out of range")))?;
        let hash = if id.level < STRIDE {
            root(&store.leaf_hashes(range.start, range.end).await?)
        } else {
            let base = id.level / STRIDE * STRIDE;
            let span = id.level - base;
            let from = id.index << span;
            let want = 1u64 << span;
            let stored = store.subtree_hashes(base, from, from + want).await?;
            if stored.len() as u64 == want {
                root(&stored)
            } else {
                tracing::warn!(%id, "stored subtree hashes are missing; rebuilding from leaves");
                let mut subtree = CompactRange::new();
                let mut at = range.start;
                while at < range.end {
                    let to = range.end.min(at + READ_CHUNK);
                    for leaf in store.leaf_hashes(at, to).await? {
                        subtree.push(leaf);
                    }
                    at = to;
                }
                subtree.root()
            }
        };
        nodes.insert(id, hash);
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_audit::merkle::{leaf_hash, verify_consistency};
    use warden_core::event::{AuditEvent, EventKind};
    use warden_store::{StoreOptions, open_warden_store};

    const ORIGIN: &str = "warden.test/log";

    fn key() -> SigningKey {
        SigningKey::from_seed(ORIGIN, [3; 32]).expect("a key")
    }

    async fn store(dir: &tempfile::TempDir) -> (String, Arc<dyn WardenStore>) {
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        let store = open_warden_store(&url, StoreOptions::default())
            .await
            .expect("a store");
        (url, store)
    }

    async fn append(store: &Arc<dyn WardenStore>, n: usize) -> Vec<AuditEvent> {
        let events: Vec<AuditEvent> = (0..n)
            .map(|i| {
                let mut e = AuditEvent::begin(EventKind::ToolCall, "rest", None);
                e.agent = Some(format!("bot-{}", i % 5));
                e
            })
            .collect();
        let seqs = futures::future::join_all(events.iter().map(|e| store.append(e))).await;
        assert!(seqs.iter().all(Result::is_ok), "every append commits");
        events
    }

    async fn start(store: &Arc<dyn WardenStore>) -> Result<Checkpointer, CheckpointerError> {
        Checkpointer::start(
            store.clone(),
            key(),
            ORIGIN.to_owned(),
            Duration::from_secs(3600),
        )
        .await
    }

    fn b64(text: &str) -> Vec<u8> {
        STANDARD.decode(text).expect("base64")
    }

    #[tokio::test]
    async fn checkpoints_cover_the_log_and_proofs_verify_from_stored_subtrees() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, store) = store(&dir).await;
        let events = append(&store, 3000).await;
        let cp = start(&store).await.expect("checkpointer");
        assert_eq!(cp.checkpoint_now().await.expect("sign"), Some(3000));
        assert_eq!(cp.checkpoint_now().await.expect("nothing new"), None);
        let log = store.audit_log().expect("an audit log");
        let latest = latest(log).await.expect("latest");
        let signed = checkpoint::verify(&latest.note, &key().verifier()).expect("signed");
        assert_eq!((signed.size, signed.origin.as_str()), (3000, ORIGIN));
        assert_eq!(
            log.subtree_hashes(4, 0, 1000).await.expect("level 4").len(),
            187,
            "every complete 16-leaf subtree is stored"
        );
        assert_eq!(
            log.subtree_hashes(8, 0, 100).await.expect("level 8").len(),
            11
        );

        for event in [&events[0], &events[1234], &events[2999]] {
            let proof = prove_event(log, &event.id).await.expect("a proof");
            let leaf = leaf_hash(&b64(&proof.canonical));
            let hashes: Vec<Vec<u8>> = proof.proof.iter().map(|p| b64(p)).collect();
            verify_inclusion(&leaf, proof.index, proof.size, &hashes, &signed.root)
                .expect("the proof verifies against the signed root");
        }
        assert!(matches!(
            prove_event(log, "no-such-event").await,
            Err(ProofError::UnknownEvent(_))
        ));

        let later = append(&store, 100).await;
        assert!(matches!(
            prove_event(log, &later[0].id).await,
            Err(ProofError::NotCovered { size: 3000, .. })
        ));
        assert_eq!(cp.checkpoint_now().await.expect("sign"), Some(3100));
        let c = prove_consistency(log, 3000, 3100)
            .await
            .expect("consistency");
        let second = checkpoint::verify(&c.checkpoint2, &key().verifier()).expect("signed");
        let hashes: Vec<Vec<u8>> = c.proof.iter().map(|p| b64(p)).collect();
        verify_consistency(3000, 3100, &signed.root, &second.root, &hashes)
            .expect("3100 extends 3000");
        assert!(matches!(
            prove_consistency(log, 3000, 3050).await,
            Err(ProofError::UnknownCheckpoint(3050))
        ));
        assert!(matches!(
            prove_consistency(log, 0, 3000).await,
            Err(ProofError::BadRequest(_))
        ));
        cp.shutdown().await;
        store.close().await;
    }

    #[tokio::test]
    async fn a_restart_resumes_and_a_truncated_log_refuses_to_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, store) = store(&dir).await;
        append(&store, 40).await;
        let cp = start(&store).await.expect("checkpointer");
        cp.shutdown().await;
        store.close().await;

        let store = open_warden_store(&url, StoreOptions::default())
            .await
            .expect("reopen");
        append(&store, 10).await;
        let cp = start(&store).await.expect("resumes");
        assert_eq!(cp.checkpoint_now().await.expect("sign"), Some(50));
        cp.shutdown().await;
        store.close().await;

        // Remove the tail behind the store's back.
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("raw connection");
        sqlx::query("DELETE FROM events WHERE seq >= 45")
            .execute(&mut conn)
            .await
            .expect("delete");
        drop(conn);
        let store = open_warden_store(&url, StoreOptions::default())
            .await
            .expect("reopen");
        match start(&store).await {
            Err(CheckpointerError::Tampered { size: 50, problem }) => {
                assert!(problem.contains("45 events"), "{problem}");
            }
            Err(other) => panic!("expected Tampered, got {other}"),
            Ok(_) => panic!("a truncated log must not be checkpointed"),
        }
        store.close().await;
    }

    #[tokio::test]
    async fn a_new_event_is_signed_within_the_interval() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, store) = store(&dir).await;
        let cp = Checkpointer::start(
            store.clone(),
            key(),
            ORIGIN.to_owned(),
            Duration::from_secs(1),
        )
        .await
        .expect("checkpointer");
        let log = store.audit_log().expect("an audit log");
        let mut waits = Vec::new();
        for round in 0..3u64 {
            let start = Instant::now();
            append(&store, 1).await;
            loop {
                let size = log.latest_checkpoint().await.expect("read").map(|c| c.size);
                if size == Some(round + 1) {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(5), "no checkpoint");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            waits.push(start.elapsed());
        }
        eprintln!("append → signed checkpoint: {waits:?}");
        assert!(waits.iter().all(|w| *w < Duration::from_millis(2500)));
        cp.shutdown().await;
        store.close().await;
    }

    #[test]
    fn the_key_is_created_once_private_and_its_verifier_published() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, "[audit]\norigin = \"example.com/log\"\n").expect("config");
        let config = Config::load(&path).expect("config");
        let first = load_signing_key(&config).expect("created");
        assert_eq!(first.name(), "example.com/log");
        let again = load_signing_key(&config).expect("read back");
        assert_eq!(first.verifier(), again.verifier());
        let public = std::fs::read_to_string(verifier_key_path(&config)).expect("pub");
        assert_eq!(public.trim(), first.verifier().to_string());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(key_path(&config))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(key_path(&config), "PRIVATE+KEY+garbage").expect("overwrite");
        let err = load_signing_key(&config).err().map(|e| e.to_string());
        assert!(
            err.is_some_and(|e| !e.contains("garbage")),
            "errors never echo the key"
        );
    }
}
