//! The persistence traits the gateway depends on; `warden-store` implements them.
//!
//! Secrets never cross this boundary in the clear: keys and tokens are stored as SHA-256 hashes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::AuditEvent;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the audit writer has stopped")]
    WriterStopped,
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
}

/// One agent API key, as stored (the key itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKey {
    /// A short public id, safe to print and log.
    pub key_id: String,
    pub agent: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Roles of human operators, who use the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorRole {
    Viewer,
    Auditor,
    Approver,
    Admin,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Auditor => "auditor",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }
}

impl std::str::FromStr for OperatorRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "auditor" => Ok(Self::Auditor),
            "approver" => Ok(Self::Approver),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown operator role `{other}` (admin, approver, auditor, viewer)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorToken {
    pub token_id: String,
    /// Who holds it (a person's name or e-mail).
    pub name: String,
    pub role: OperatorRole,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A short-lived narrowing of one agent's rights to one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskGrant {
    pub task_id: String,
    pub agent: String,
    /// SHA-256 of the task token, hex.
    pub hash: String,
    /// Canonical tool names the task may call.
    pub tools: Vec<String>,
    /// The most sensitive data class the task may see; `None` keeps the agent's clearance.
    pub max_class: Option<String>,
    pub purpose: Option<String>,
    pub user: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The append-only audit log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Append one event and return once it is durably committed, with its position in the log.
    async fn append(&self, event: &AuditEvent) -> Result<u64, StoreError>;
    /// Append one call's event together with what the call writes beside it (the sealed
    /// result, the session count), in one transaction: none is committed without the others.
    /// A call then waits for one durable commit after its upstream answered, not three.
    async fn append_call(&self, event: &AuditEvent, writes: CallWrites) -> Result<u64, StoreError>;
    /// The newest events, newest first.
    async fn recent(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
    async fn event(&self, id: &str) -> Result<Option<AuditEvent>, StoreError>;
    /// The Merkle-log view of this store (leaf hashes, signed checkpoints), if it keeps one.
    /// Lets code holding only an `Arc<dyn Store>` serve checkpoints and proofs.
    fn audit_log(&self) -> Option<&dyn AuditLogStore> {
        None
    }
}

/// What a finished call writes beside its audit event (see [`EventLog::append_call`]).
#[derive(Debug, Clone, Default)]
pub struct CallWrites {
    /// Evidence sealed after the upstream answered: the raw result.
    pub evidence: Vec<EvidenceRecord>,
    /// The call counted in its session.
    pub session: Option<crate::session::SessionCall>,
}

impl CallWrites {
    pub fn is_empty(&self) -> bool {
        self.evidence.is_empty() && self.session.is_none()
    }
}

/// Agent keys, operator tokens and task grants.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_agent_key(&self, key: &AgentKey) -> Result<(), StoreError>;
    async fn agent_key_by_hash(&self, hash: &str) -> Result<Option<AgentKey>, StoreError>;
    async fn agent_keys(&self) -> Result<Vec<AgentKey>, StoreError>;
    /// Revoke every live key of `agent` except `keep` (a key id); returns how many were revoked.
    async fn revoke_agent_keys(
        &self,
        agent: &str,
        keep: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    async fn insert_operator_token(&self, token: &OperatorToken) -> Result<(), StoreError>;
    async fn operator_token_by_hash(&self, hash: &str)
    -> Result<Option<OperatorToken>, StoreError>;
    async fn operator_tokens(&self) -> Result<Vec<OperatorToken>, StoreError>;

    async fn insert_task(&self, task: &TaskGrant) -> Result<(), StoreError>;
    async fn task_by_hash(&self, hash: &str) -> Result<Option<TaskGrant>, StoreError>;
}

/// A kill switch. While `paused`, no call in its scope runs; lifting it is another `set_switch`
/// with `paused: false` (the row stays, as a record of who lifted it and when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switch {
    /// [`Switch::GLOBAL`], `agent:<id>` ([`Switch::agent_scope`]) or `upstream:<name>`
    /// ([`Switch::upstream_scope`]).
    pub scope: String,
    pub paused: bool,
    pub reason: Option<String>,
    /// Who set it (an operator's name).
    pub by: String,
    pub at: DateTime<Utc>,
}

impl Switch {
    /// The scope that pauses every call.
    pub const GLOBAL: &'static str = "global";

    /// The scope that pauses one agent.
    pub fn agent_scope(agent: &str) -> String {
        format!("agent:{agent}")
    }

    /// The scope that pauses every tool of one upstream.
    pub fn upstream_scope(upstream: &str) -> String {
        format!("upstream:{upstream}")
    }
}

/// Why a call is waiting for a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalKind {
    /// Policy requires approval before the call runs.
    Approval,
    /// The agent runs in suggest mode: the call is a proposal a human may accept.
    Proposal,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approval => "approval",
            Self::Proposal => "proposal",
        }
    }
}

impl std::str::FromStr for ApprovalKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approval" => Ok(Self::Approval),
            "proposal" => Ok(Self::Proposal),
            other => Err(format!(
                "unknown approval kind `{other}` (approval, proposal)"
            )),
        }
    }
}

/// Where an approval request is in its life.
///
/// ```text
/// Pending ──▶ Approved ──▶ Executed
///    │           └──────▶ Expired | Cancelled
///    └──▶ Denied | Expired | Cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
    Executed,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Executed => "executed",
        }
    }

    /// Whether a request may move from `self` to `to` (see the diagram on the type).
    pub fn can_become(self, to: Self) -> bool {
        use ApprovalStatus::*;
        matches!(
            (self, to),
            (Pending, Approved | Denied | Expired | Cancelled)
                | (Approved, Executed | Expired | Cancelled)
        )
    }

    /// No transition leaves this status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Denied | Self::Expired | Self::Cancelled | Self::Executed
        )
    }
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApprovalStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "denied" => Ok(Self::Denied),
            "expired" => Ok(Self::Expired),
            "cancelled" => Ok(Self::Cancelled),
            "executed" => Ok(Self::Executed),
            other => Err(format!(
                "unknown approval status `{other}` \
                 (pending, approved, denied, expired, cancelled, executed)"
            )),
        }
    }
}

/// A call held for human approval. Durable: it survives a restart, and any replica may decide
/// or execute it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub kind: ApprovalKind,
    /// The audit event of the original (held) call.
    pub event_id: String,
    pub agent: String,
    pub user: Option<String>,
    pub task: Option<String>,
    pub session: Option<String>,
    /// Canonical tool name (`upstream.tool`).
    pub tool: String,
    /// SHA-256 of the canonical arguments, hex.
    pub args_hash: String,
    /// The arguments themselves, needed to run the call once approved. Operational state, kept
    /// only as long as the request: the audit log never holds them.
    pub args: serde_json::Value,
    /// The operator role an approver must hold, if any.
    pub required_role: Option<String>,
    /// Distinct approvers needed.
    pub required_count: u32,
    /// The policies that required approval.
    pub policies: Vec<String>,
    pub status: ApprovalStatus,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The audit event of the approved call's execution.
    pub result_event_id: Option<String>,
}

/// One approver's decision on an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub approval_id: String,
    pub approver: String,
    /// `true` to approve, `false` to deny.
    pub approve: bool,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// What [`ControlStore::cast_vote`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoteOutcome {
    /// The vote was recorded; the request still waits. `approvals` distinct approvers so far.
    Recorded { approvals: u32 },
    /// This vote completed the approval: the request is now `Approved`.
    Approved,
    /// This vote denied the request.
    Denied,
    /// The request was no longer pending (decided, cancelled, executed, or past its deadline,
    /// which the vote marks `Expired`); the vote was not recorded.
    NotPending(ApprovalStatus),
    /// This approver has already voted on the request; the vote was not recorded.
    AlreadyVoted,
}

/// Which pending approvals [`ControlStore::cancel_pending_approvals`] cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelScope {
    All,
    /// Requests of one agent.
    Agent(String),
    /// Requests for the tools of one upstream (`<name>.<tool>`).
    Upstream(String),
}

/// Running totals of one usage counter window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub count: i64,
    pub amount: f64,
}

/// Action-control state shared by every gateway replica: kill switches, approval requests and
/// their votes, undo links, and usage counters for rate limits and budgets.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Insert or replace the switch for `switch.scope`, and bump [`switch_version`](Self::switch_version)
    /// in the same transaction.
    async fn set_switch(&self, switch: &Switch) -> Result<(), StoreError>;
    /// Every switch, paused or not, ordered by scope.
    async fn switches(&self) -> Result<Vec<Switch>, StoreError>;
    /// A counter bumped by every `set_switch`, cheap to poll: reload `switches` when it moves.
    async fn switch_version(&self) -> Result<i64, StoreError>;

    /// Store a new request. A duplicate id is [`StoreError::Conflict`].
    async fn insert_approval(&self, approval: &Approval) -> Result<(), StoreError>;
    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Requests, newest first, optionally only those with `status`.
    async fn approvals(&self, status: Option<ApprovalStatus>) -> Result<Vec<Approval>, StoreError>;
    /// The votes on one request, in the order they were cast.
    async fn votes(&self, approval_id: &str) -> Result<Vec<Vote>, StoreError>;
    /// Record one vote atomically (the request row is locked for the whole decision): refused
    /// with `NotPending` unless the request is pending and before its deadline (a late vote marks
    /// it `Expired`), refused with `AlreadyVoted` if this approver voted before; otherwise
    /// recorded. A deny vote denies; the approve vote that brings the distinct approvers to
    /// `required_count` (at least 1) approves. [`StoreError::NotFound`] if there is no such
    /// request.
    async fn cast_vote(&self, vote: &Vote, required_count: u32) -> Result<VoteOutcome, StoreError>;
    /// Compare-and-set the status: `true` if the request was in `from` and this caller moved it
    /// to `to` (so exactly one caller wins, say, `Approved → Executed`). Sets `decided_at` if it
    /// was unset and `result_event_id` when given. A move the lifecycle does not allow
    /// ([`ApprovalStatus::can_become`]) is [`StoreError::Conflict`].
    async fn transition_approval(
        &self,
        id: &str,
        from: ApprovalStatus,
        to: ApprovalStatus,
        result_event_id: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Cancel the pending requests in `scope`; returns how many.
    async fn cancel_pending_approvals(&self, scope: CancelScope) -> Result<u64, StoreError>;

    /// Claim the right to undo `original_event` with `undo_event`: `true` for the one caller that
    /// claims it, `false` if it was already undone or is being undone.
    async fn claim_undo(&self, original_event: &str, undo_event: &str) -> Result<bool, StoreError>;
    /// The event that undid (or is undoing) `original_event`.
    async fn undo_of(&self, original_event: &str) -> Result<Option<String>, StoreError>;
    /// Compare-and-set the claim on `original_event` from `stale_undo` (an attempt that did not
    /// undo it: denied, failed) to `undo_event`: `true` for the one caller that moves it.
    async fn reclaim_undo(
        &self,
        original_event: &str,
        stale_undo: &str,
        undo_event: &str,
    ) -> Result<bool, StoreError>;

    /// Add to the counter `(key, window_start)` atomically and return its totals after the
    /// addition. `amount` must be finite.
    async fn add_usage(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
        count: i64,
        amount: f64,
    ) -> Result<Usage, StoreError>;
    /// The totals of `(key, window_start)`; zero if nothing was added.
    async fn usage(&self, key: &str, window_start: DateTime<Utc>) -> Result<Usage, StoreError>;
    /// Delete the windows that start before `before`; returns how many.
    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A SHA-256 hash as the audit log stores it: a leaf hash, an interior node or a root.
pub type LogHash = [u8; 32];

/// A signed checkpoint of the audit log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size the checkpoint covers: events with `seq < size`.
    pub size: u64,
    /// The tree root at `size` (a copy of the one in the signed note).
    pub root: LogHash,
    /// The C2SP signed note: origin, size, base64 root, blank line, signature lines.
    pub note: String,
    /// The compact range at `size` (one perfect-subtree root per set bit of `size`, largest
    /// first), so a checkpointer can resume without re-reading every leaf hash.
    pub nodes: Vec<LogHash>,
    pub created_at: DateTime<Utc>,
}

/// The root of a perfect subtree of the audit log's Merkle tree: the `2^level` leaves
/// `[index·2^level, (index+1)·2^level)`. Stored at a few levels so proofs over a large log read
/// a handful of rows instead of every leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubtreeHash {
    pub level: u32,
    pub index: u64,
    pub hash: LogHash,
}

/// One stored event as the Merkle log sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf {
    /// Position in the log: the leaf index.
    pub seq: u64,
    /// The canonical event bytes the leaf commits to (`warden-event-v1`).
    pub canonical: Vec<u8>,
    pub leaf_hash: LogHash,
}

/// The tamper-evident side of the audit log: leaf hashes, stored subtree hashes and signed
/// checkpoints. The events themselves are appended through [`EventLog::append`], which stores
/// each event's canonical bytes and leaf hash in the same transaction.
#[async_trait]
pub trait AuditLogStore: Send + Sync {
    /// The number of committed events: the current tree size.
    async fn log_size(&self) -> Result<u64, StoreError>;
    /// The leaf hashes of events `from <= seq < to`, in order. A missing or malformed hash is
    /// [`StoreError::Corrupt`]; fewer rows than asked (the log is shorter) is
    /// [`StoreError::NotFound`].
    async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<LogHash>, StoreError>;
    /// One event's leaf (seq, canonical bytes, leaf hash) by event id.
    async fn leaf_of_event(&self, id: &str) -> Result<Option<LogLeaf>, StoreError>;
    /// Stored subtree hashes at `level` with `from <= index < to`, in index order; fewer than
    /// asked when some are not stored (yet).
    async fn subtree_hashes(
        &self,
        level: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<LogHash>, StoreError>;
    /// Store a checkpoint and the subtree hashes completed up to it, in one transaction.
    /// Returns `false` if a checkpoint of that size already existed (another replica wrote
    /// it; the stored one is kept). Subtree hashes already stored are kept.
    async fn insert_checkpoint(
        &self,
        checkpoint: &StoredCheckpoint,
        subtrees: &[SubtreeHash],
    ) -> Result<bool, StoreError>;
    /// The checkpoint with the largest size.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// The checkpoint of exactly `size` leaves.
    async fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// Every checkpoint, smallest size first.
    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError>;
    /// Fill in the canonical bytes and leaf hash of events stored before the log kept them
    /// (derived from their JSON body); returns how many rows were filled.
    async fn backfill_leaves(&self) -> Result<u64, StoreError>;
}

/// What an evidence record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Artifact {
    /// The arguments the agent sent.
    Arguments,
    /// The result the upstream returned (before redaction for the agent).
    Result,
    /// An approval's request and votes as the approvers saw them.
    Approval,
    /// The state a `capture` undo recipe read before a write, to restore it on undo.
    PriorState,
}

impl Artifact {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arguments => "arguments",
            Self::Result => "result",
            Self::Approval => "approval",
            Self::PriorState => "prior_state",
        }
    }
}

impl std::str::FromStr for Artifact {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "arguments" => Ok(Self::Arguments),
            "result" => Ok(Self::Result),
            "approval" => Ok(Self::Approval),
            "prior_state" => Ok(Self::PriorState),
            other => Err(format!(
                "unknown artifact `{other}` (arguments, result, approval, prior_state)"
            )),
        }
    }
}

/// One encrypted raw payload in the evidence vault, as stored. The store never sees plaintext:
/// the gateway seals with `warden-vault` (a data key per record, wrapped by the master key).
/// Shredding clears `wrapped_key` and `ciphertext` and sets `shredded_at`; the row stays so
/// `explain` can say what was erased and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    pub event_id: String,
    pub artifact: Artifact,
    /// The most sensitive data class found in the payload (drives retention).
    pub class: String,
    pub agent: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When retention will shred it (`None`: kept until shredded by hand).
    pub expires_at: Option<DateTime<Utc>>,
    /// Id of the master key that wrapped the data key.
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub shredded_at: Option<DateTime<Utc>>,
}

/// A legal hold: while it exists, evidence in its scope is never shredded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub id: String,
    /// `agent:NAME` or `event:ID`.
    pub scope: String,
    pub reason: String,
    pub operator: String,
    pub created_at: DateTime<Utc>,
}

/// Raw payloads, encrypted, apart from the audit log; retention by crypto-shredding.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Store a record; one per (event, artifact): a second put for the same pair is a conflict.
    async fn put_evidence(&self, record: &EvidenceRecord) -> Result<(), StoreError>;
    /// Store a record that an audit event of the same call will follow (write-ahead: the sealed
    /// arguments before the upstream call, a captured prior state, an approval request). It is
    /// committed when this returns, so it survives a crash of the process; a backend may leave
    /// it to that event's own synced commit to make it survive a crash of the machine, so a
    /// call waits for one disk sync instead of two. By default it is [`Self::put_evidence`].
    async fn put_evidence_ahead(&self, record: &EvidenceRecord) -> Result<(), StoreError> {
        self.put_evidence(record).await
    }
    async fn evidence(
        &self,
        event_id: &str,
        artifact: Artifact,
    ) -> Result<Option<EvidenceRecord>, StoreError>;
    /// Every record of an event (shredded ones too), by artifact.
    async fn evidence_of_event(&self, event_id: &str) -> Result<Vec<EvidenceRecord>, StoreError>;
    /// Shred every unshredded record with `expires_at <= now` not under a legal hold;
    /// returns how many were shredded.
    async fn shred_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    async fn insert_hold(&self, hold: &LegalHold) -> Result<(), StoreError>;
    async fn remove_hold(&self, id: &str) -> Result<bool, StoreError>;
    async fn holds(&self) -> Result<Vec<LegalHold>, StoreError>;
    /// Records whose retention has passed but which a legal hold keeps (for `retention run`
    /// to report).
    async fn held_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The ids of the master keys that wrapped the unshredded records, sorted (to check at
    /// start that the configured master key can open them).
    async fn evidence_key_ids(&self) -> Result<Vec<String>, StoreError>;

    /// Keep the policies of one bundle, by bundle hash, so `explain` can show the text of the
    /// policies in force when an event was decided. `policies` is JSON (see
    /// [`BundlePolicies`]). Storing a hash already stored is a no-op.
    async fn put_bundle_policies(&self, hash: &str, policies: &str) -> Result<(), StoreError>;
    async fn bundle_policies(&self, hash: &str) -> Result<Option<String>, StoreError>;
    /// Events whose `parent_id` is `parent_id` (undos, retries, approved executions, reads of
    /// its evidence), in log order.
    async fn child_events(&self, parent_id: &str) -> Result<Vec<AuditEvent>, StoreError>;
}

/// One policy's text as kept by [`EvidenceStore::put_bundle_policies`]: a JSON array of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundlePolicy {
    pub id: String,
    pub file: String,
    pub line: usize,
    pub text: String,
}

/// The policies of one bundle as stored.
pub type BundlePolicies = Vec<BundlePolicy>;

/// Everything the gateway needs from persistence.
pub trait Store:
    EventLog
    + CredentialStore
    + ControlStore
    + crate::session::SessionStore
    + EvidenceStore
    + crate::pins::PinStore
{
}
impl<T> Store for T where
    T: EventLog
        + CredentialStore
        + ControlStore
        + crate::session::SessionStore
        + EvidenceStore
        + crate::pins::PinStore
{
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const STATUSES: [ApprovalStatus; 6] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
        ApprovalStatus::Executed,
    ];

    #[test]
    fn approval_status_text_round_trips_and_matches_serde() {
        for s in STATUSES {
            assert_eq!(ApprovalStatus::from_str(s.as_str()), Ok(s));
            let json = serde_json::to_value(s).ok();
            assert_eq!(json, Some(serde_json::Value::from(s.as_str())));
        }
        for k in [ApprovalKind::Approval, ApprovalKind::Proposal] {
            assert_eq!(ApprovalKind::from_str(k.as_str()), Ok(k));
        }
        assert!(ApprovalStatus::from_str("done").is_err());
    }

    #[test]
    fn final_statuses_go_nowhere_and_pending_is_never_re_entered() {
        for from in STATUSES {
            for to in STATUSES {
                if from.is_final() || to == ApprovalStatus::Pending || from == to {
                    assert!(!from.can_become(to), "{from} -> {to}");
                }
            }
        }
        assert!(ApprovalStatus::Approved.can_become(ApprovalStatus::Executed));
        assert!(!ApprovalStatus::Pending.can_become(ApprovalStatus::Executed));
    }

    #[test]
    fn switch_scopes() {
        assert_eq!(Switch::agent_scope("bot"), "agent:bot");
        assert_eq!(Switch::upstream_scope("crm"), "upstream:crm");
    }
}
