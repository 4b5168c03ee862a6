//! `warden explain EVENT` and `GET /v1/events/{id}`: one event's decision, reconstructed.
//!
//! Who (agent, its owner from the config, user, task, operator), what (the tool, and its
//! arguments and result from the evidence vault as far as the reader's clearance allows),
//! which policy bundle decided and the text of the deciding policies (kept by bundle hash at
//! every start, so the text shown is the one in force at the time), the approvals and their
//! votes, the outcome, the linked events (the parent, and every event whose parent this is),
//! and the event's inclusion proof against the latest checkpoint, checked before it is shown.
//!
//! Readers: viewers and approvers see digests only; auditors and admins see the payloads,
//! redacted above the clearance `[vault.clearance]` gives their role. Before a payload is
//! decrypted for a reader, the read is committed as an admin event (`evidence.explain:EVENT`),
//! as `warden evidence show` (which prints payloads whole) does; an explanation that shows
//! digests only is not recorded.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use warden_core::store::{
    Approval, Artifact, BundlePolicies, BundlePolicy, OperatorRole, OperatorToken, StoreError, Vote,
};
use warden_core::{AuditEvent, EventKind, Finding, ToolName};
use warden_gateway::{EvidencePayload, EvidenceRead, Gateway};

/// Keep the policies of the gateway's bundle by its hash (done at every start).
pub async fn remember_bundle(gateway: &Gateway) -> Result<(), StoreError> {
    let snapshot = gateway.shared().snapshot();
    let policies: BundlePolicies = snapshot
        .bundle
        .policies()
        .map(|p| BundlePolicy {
            id: p.id.clone(),
            file: p.file.display().to_string(),
            line: p.line,
            text: p.text.clone(),
        })
        .collect();
    let json = serde_json::to_string(&policies)
        .map_err(|e| StoreError::Database(format!("encoding the bundle's policies: {e}")))?;
    gateway
        .shared()
        .store
        .put_bundle_policies(snapshot.bundle.hash(), &json)
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no event `{0}`")]
    UnknownEvent(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the read of the evidence could not be recorded, so nothing was decrypted: {0}")]
    ReadNotRecorded(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub event_id: String,
    pub kind: EventKind,
    pub channel: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub who: Who,
    pub what: What,
    pub policy: PolicyPart,
    pub approvals: Vec<ApprovalPart>,
    /// Who approved, as recorded on the event.
    pub approvers: Vec<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
    pub linked: Linked,
    pub proof: ProofPart,
    pub reader: Reader,
}

#[derive(Debug, Clone, Serialize)]
pub struct Who {
    pub agent: Option<String>,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    pub user: Option<String>,
    pub task: Option<String>,
    pub session: Option<String>,
    pub operator: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct What {
    /// The tool (`upstream.tool`) or admin action.
    pub action: Option<String>,
    pub mode: Option<String>,
    pub args_digest: Option<String>,
    pub result_digest: Option<String>,
    pub arguments: PayloadPart,
    pub result: PayloadPart,
}

/// What the reader may see of one artifact.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PayloadPart {
    /// The payload, redacted above the reader's clearance (`redacted` values were masked).
    Shown {
        value: Value,
        redacted: u32,
        class: String,
    },
    /// The reader's role sees digests only.
    DigestOnly,
    /// Crypto-shredded by retention: gone for good.
    Erased { at: DateTime<Utc> },
    /// The vault holds nothing for it (the call did not run, or it predates the vault).
    NotKept,
    /// The vault could not open it (wrong master key, tampered record): the reason.
    Unreadable { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyPart {
    pub bundle_hash: String,
    pub verdict: String,
    pub deciding: Vec<DecidingPolicy>,
    /// Whether the bundle's policies were kept (false for bundles older than this feature).
    pub bundle_known: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecidingPolicy {
    pub id: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    /// `None` for built-in rules (`warden:...`) and policies of an unknown bundle.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalPart {
    pub approval_id: String,
    pub kind: String,
    pub status: String,
    pub required_role: Option<String>,
    pub required_count: u32,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub held_event: String,
    pub result_event: Option<String>,
    pub votes: Vec<VotePart>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VotePart {
    pub approver: String,
    pub approve: bool,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkedEvent {
    pub event_id: String,
    pub kind: EventKind,
    pub action: Option<String>,
    pub outcome: String,
    pub operator: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Linked {
    pub parent: Option<LinkedEvent>,
    pub children: Vec<LinkedEvent>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProofPart {
    /// The inclusion proof, checked against the signed root of the latest checkpoint.
    Verified {
        index: u64,
        size: u64,
        root: String,
        proof: Vec<String>,
        checkpoint: String,
        /// Whether the checkpoint's signature was also checked with the published verifier key.
        signature_checked: bool,
    },
    /// No proof yet (no checkpoint covers the event), or it failed: the reason.
    Unavailable { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Reader {
    pub name: String,
    pub role: OperatorRole,
    /// The most sensitive class the reader sees in plain text; `None`: digests only.
    pub clearance: Option<String>,
    /// The admin event that records this read of the event's evidence (`None` when the reader
    /// sees digests only or the event has no evidence).
    pub read_event_id: Option<String>,
}

fn linked(e: &AuditEvent) -> LinkedEvent {
    LinkedEvent {
        event_id: e.id.clone(),
        kind: e.kind,
        action: e.action.clone(),
        outcome: e.outcome.as_str().to_owned(),
        operator: e.operator.clone(),
        at: e.finished_at,
    }
}

fn vote(v: Vote) -> VotePart {
    VotePart {
        approver: v.approver,
        approve: v.approve,
        reason: v.reason,
        at: v.at,
    }
}

/// Build the explanation of `event_id` for `reader`.
pub async fn explain(
    gateway: &Gateway,
    reader: &OperatorToken,
    event_id: &str,
) -> Result<Explanation, ExplainError> {
    let shared = gateway.shared();
    let store = &shared.store;
    let event = store
        .event(event_id)
        .await?
        .ok_or_else(|| ExplainError::UnknownEvent(event_id.to_owned()))?;
    let agent = event.agent.as_deref().and_then(|a| shared.config.agent(a));
    let clearance = shared.config.vault.clearance.get(&reader.role).cloned();
    let read_event_id = match clearance {
        Some(_) if !store.evidence_of_event(&event.id).await?.is_empty() => Some(
            gateway
                .record_evidence_read(reader, &event, EvidenceRead::Explain)
                .await
                .map_err(|e| ExplainError::ReadNotRecorded(e.to_string()))?,
        ),
        _ => None,
    };

    let tool = event
        .action
        .as_deref()
        .filter(|_| event.kind == EventKind::ToolCall)
        .and_then(|a| ToolName::from_str(a).ok());
    let arguments = payload(
        gateway,
        &event,
        Artifact::Arguments,
        tool.as_ref(),
        clearance.as_deref(),
    )
    .await;
    let result = payload(
        gateway,
        &event,
        Artifact::Result,
        tool.as_ref(),
        clearance.as_deref(),
    )
    .await;

    let stored = store.bundle_policies(&event.bundle_hash).await?;
    let policies: Option<BundlePolicies> = stored.and_then(|s| serde_json::from_str(&s).ok());
    let deciding = event
        .policies
        .iter()
        .map(|id| {
            let found = policies
                .as_ref()
                .and_then(|ps| ps.iter().find(|p| &p.id == id));
            DecidingPolicy {
                id: id.clone(),
                file: found.map(|p| p.file.clone()),
                line: found.map(|p| p.line),
                text: found.map(|p| p.text.clone()),
            }
        })
        .collect();

    let mut approvals = Vec::new();
    let related: Vec<Approval> = store
        .approvals(None)
        .await?
        .into_iter()
        .filter(|a| {
            a.event_id == event.id
                || a.result_event_id.as_deref() == Some(event.id.as_str())
                || event.parent_id.as_deref() == Some(a.event_id.as_str())
        })
        .collect();
    for a in related {
        let votes = store.votes(&a.id).await?.into_iter().map(vote).collect();
        approvals.push(ApprovalPart {
            approval_id: a.id,
            kind: a.kind.as_str().to_owned(),
            status: a.status.as_str().to_owned(),
            required_role: a.required_role,
            required_count: a.required_count,
            requested_at: a.requested_at,
            decided_at: a.decided_at,
            held_event: a.event_id,
            result_event: a.result_event_id,
            votes,
        });
    }

    let parent = match &event.parent_id {
        Some(p) => store.event(p).await?.as_ref().map(linked),
        None => None,
    };
    let children = store
        .child_events(&event.id)
        .await?
        .iter()
        .map(linked)
        .collect();

    let proof = proof(gateway, &event.id).await;

    Ok(Explanation {
        event_id: event.id.clone(),
        kind: event.kind,
        channel: event.channel.clone(),
        started_at: event.started_at,
        finished_at: event.finished_at,
        who: Who {
            agent: event.agent.clone(),
            owner: agent.map(|a| a.owner.clone()),
            purpose: agent.map(|a| a.purpose.clone()),
            user: event.user.clone(),
            task: event.task.clone(),
            session: event.session.clone(),
            operator: event.operator.clone(),
        },
        what: What {
            action: event.action.clone(),
            mode: event.mode.map(|m| format!("{m:?}").to_lowercase()),
            args_digest: event.args_digest.clone(),
            result_digest: event.result_digest.clone(),
            arguments,
            result,
        },
        policy: PolicyPart {
            bundle_hash: event.bundle_hash.clone(),
            verdict: format!("{:?}", event.verdict).to_lowercase(),
            deciding,
            bundle_known: policies.is_some(),
        },
        approvals,
        approvers: event.approvers.clone(),
        outcome: event.outcome.as_str().to_owned(),
        reason: event.reason.clone(),
        findings: event.findings.clone(),
        linked: Linked { parent, children },
        proof,
        reader: Reader {
            name: reader.name.clone(),
            role: reader.role,
            clearance,
            read_event_id,
        },
    })
}

async fn payload(
    gateway: &Gateway,
    event: &AuditEvent,
    artifact: Artifact,
    tool: Option<&ToolName>,
    clearance: Option<&str>,
) -> PayloadPart {
    let Some(clearance) = clearance else {
        return PayloadPart::DigestOnly;
    };
    let shared = gateway.shared();
    let record = match shared.store.evidence(&event.id, artifact).await {
        Ok(Some(r)) => r,
        Ok(None) => return PayloadPart::NotKept,
        Err(e) => {
            return PayloadPart::Unreadable {
                reason: e.to_string(),
            };
        }
    };
    let class = record.class.clone();
    match gateway.open_evidence(&event.id, artifact).await {
        Ok(EvidencePayload::Present(mut value)) => {
            let level = shared
                .config
                .classes
                .level(clearance)
                .unwrap_or(warden_core::ClassLevel(0));
            let redacted = match tool {
                Some(t) => match shared.protection.redact_for_reader(
                    t,
                    level,
                    &mut value,
                    artifact == Artifact::Result,
                ) {
                    Ok(n) => n,
                    Err(e) => {
                        return PayloadPart::Unreadable {
                            reason: format!("it could not be redacted for this reader: {e}"),
                        };
                    }
                },
                None => 0,
            };
            // A record above the reader's clearance that DLP found nothing to mask in is still
            // above it: show nothing rather than trust the detectors.
            let record_level = shared
                .config
                .classes
                .level(&class)
                .unwrap_or(warden_core::ClassLevel(0));
            if redacted == 0 && record_level > level && tool.is_none() {
                return PayloadPart::DigestOnly;
            }
            PayloadPart::Shown {
                value,
                redacted,
                class,
            }
        }
        Ok(EvidencePayload::Shredded { at }) => PayloadPart::Erased { at },
        Ok(EvidencePayload::Missing) => PayloadPart::NotKept,
        Err(e) => PayloadPart::Unreadable {
            reason: e.to_string(),
        },
    }
}

async fn proof(gateway: &Gateway, event_id: &str) -> ProofPart {
    let shared = gateway.shared();
    let Some(log) = shared.store.audit_log() else {
        return ProofPart::Unavailable {
            reason: "this store keeps no tamper-evident log".into(),
        };
    };
    match crate::checkpointer::prove_event(log, event_id).await {
        Ok(p) => {
            let key_path = crate::checkpointer::verifier_key_path(&shared.config);
            let signature_checked = match std::fs::read_to_string(&key_path)
                .ok()
                .and_then(|t| warden_audit::VerifierKey::parse(t.trim()).ok())
            {
                Some(key) => match warden_audit::checkpoint::verify(&p.checkpoint, &key) {
                    Ok(cp) if cp.size == p.size => true,
                    Ok(_) | Err(_) => {
                        return ProofPart::Unavailable {
                            reason: "the latest checkpoint's signature does not verify with the published key".into(),
                        };
                    }
                },
                None => false,
            };
            ProofPart::Verified {
                index: p.index,
                size: p.size,
                root: p.root,
                proof: p.proof,
                checkpoint: p.checkpoint,
                signature_checked,
            }
        }
        Err(e) => ProofPart::Unavailable {
            reason: e.to_string(),
        },
    }
}
