//! Human approval as a policy result: parking a call, voting on it, and running it once approved.
//!
//! A request is bound to the exact tool and a hash of its canonical arguments; the arguments
//! are kept with the request (operational state, not the audit log) so the approved call runs
//! with exactly what was approved. Running it goes through the whole pipeline again, as the
//! agent, with the approvers in the policy context: it runs only if policy and the kill switch
//! still allow it at that moment, and at most once.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use warden_core::config::Config;
use warden_core::store::{
    Approval, ApprovalKind, ApprovalStatus, OperatorToken, StoreError, Vote, VoteOutcome,
};

use crate::call::{Call, Obligation, Refusal, RefusalKind, StageError};
use crate::digest::write_canonical;
use crate::gateway::Shared;

/// The built-in tool an agent polls with an approval id.
pub const STATUS_TOOL: &str = "warden.approval_status";

/// Hex SHA-256 of the canonical arguments: what an approval is bound to.
pub fn args_hash(args: &Map<String, Value>) -> String {
    let mut buf = Vec::with_capacity(256);
    write_canonical(&Value::Object(args.clone()), &mut buf);
    hex::encode(Sha256::digest(&buf))
}

/// Hold `call` for approval: store the request, notify, and answer "pending" (with its id).
pub async fn park(
    shared: &Shared,
    call: &Call,
    obligation: &Obligation,
    kind: ApprovalKind,
) -> Result<(Refusal, String), StageError> {
    let tool = call.tool_info()?;
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(shared.config.approvals.ttl)
        .unwrap_or(chrono::Duration::hours(1));
    let approval = Approval {
        id: format!("apr_{}", uuid::Uuid::now_v7().simple()),
        kind,
        event_id: call.event.id.clone(),
        agent: call.principal.agent.clone(),
        user: call.user.clone(),
        task: call.principal.task.as_ref().map(|t| t.task_id.clone()),
        session: call.session_key.clone(),
        tool: tool.name.to_string(),
        args_hash: args_hash(&call.input),
        args: Value::Object(call.input.clone()),
        required_role: obligation.role.clone(),
        required_count: obligation.count,
        policies: obligation.policies.clone(),
        status: ApprovalStatus::Pending,
        requested_at: now,
        expires_at: now + ttl,
        decided_at: None,
        result_event_id: None,
    };
    // The request as approvers see it goes to the evidence vault first: no record, no request.
    let level = call
        .data
        .as_ref()
        .and_then(|d| d.level)
        .unwrap_or(warden_core::ClassLevel(0));
    let class = shared.protection.class_name(level)?;
    let seen = json!({
        "approval_id": approval.id, "kind": approval.kind.as_str(), "tool": approval.tool,
        "arguments": approval.args, "user": approval.user, "policies": approval.policies,
        "required_role": approval.required_role, "required_count": approval.required_count,
        "expires_at": approval.expires_at,
    });
    crate::evidence::keep(
        shared,
        &call.event.id,
        Some(&approval.agent),
        warden_core::store::Artifact::Approval,
        &class,
        &seen,
    )
    .await
    .map_err(|e| StageError::Evidence(e.to_string()))?;
    shared.store.insert_approval(&approval).await?;
    notify(&shared.config, &approval);
    let who = match &approval.required_role {
        Some(role) => format!("{} approver(s) with role `{role}`", approval.required_count),
        None => format!("{} approver(s)", approval.required_count),
    };
    let refusal = match kind {
        ApprovalKind::Proposal => Refusal {
            kind: RefusalKind::Proposed,
            message: format!(
                "agent `{}` is in suggest mode: the call to `{}` was recorded as proposal {}, not executed; an operator may execute it",
                approval.agent, approval.tool, approval.id
            ),
            policies: approval.policies.clone(),
        },
        ApprovalKind::Approval => Refusal {
            kind: RefusalKind::Pending,
            message: format!(
                "pending approval {} by {who}, until {}; poll it with the `{STATUS_TOOL}` tool",
                approval.id,
                approval.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            policies: approval.policies.clone(),
        },
    };
    Ok((refusal, approval.id))
}

/// Post the new request to the configured webhook (JSON with a Slack-compatible `text`).
/// Fire and forget: a failing webhook must not hold the agent, and is logged.
fn notify(config: &Config, approval: &Approval) {
    let Some(url) = config.approvals.webhook.clone() else {
        return;
    };
    let text = format!(
        "Warden: agent `{}` asks to call `{}`{}; needs {} approval(s){}. Request {} (expires {}).",
        approval.agent,
        approval.tool,
        approval
            .user
            .as_deref()
            .map(|u| format!(" for user `{u}`"))
            .unwrap_or_default(),
        approval.required_count,
        approval
            .required_role
            .as_deref()
            .map(|r| format!(" by role `{r}`"))
            .unwrap_or_default(),
        approval.id,
        approval.expires_at.to_rfc3339(),
    );
    let body = json!({
        "text": text,
        "approval_id": approval.id,
        "agent": approval.agent,
        "user": approval.user,
        "tool": approval.tool,
        "policies": approval.policies,
        "expires_at": approval.expires_at,
    });
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        match client
            .post(&url)
            .json(&body)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(status = %r.status(), "approval webhook refused the notification")
            }
            Err(e) => tracing::warn!(error = %e, "approval webhook failed"),
        }
    });
}

/// Why an operator may not vote on a request.
#[derive(Debug, thiserror::Error)]
pub enum VoteError {
    #[error("no approval request `{0}`")]
    NotFound(String),
    #[error("approver `{0}` is not a configured user, so their roles are unknown")]
    UnknownApprover(String),
    #[error("approver `{approver}` does not hold role `{role}`")]
    MissingRole { approver: String, role: String },
    #[error("`{0}` asked for this call (or owns the agent) and may not approve it")]
    SelfApproval(String),
    #[error("the request is {0}, not pending")]
    NotPending(ApprovalStatus),
    #[error("`{0}` has already voted on this request")]
    AlreadyVoted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Record an operator's vote, enforcing the rules: the approver is a configured user holding the
/// required role, and neither the requesting user nor the agent's owner (unless allowed).
pub async fn vote(
    shared: &Shared,
    id: &str,
    operator: &OperatorToken,
    approve: bool,
    reason: Option<String>,
) -> Result<(Approval, VoteOutcome), VoteError> {
    let approval = shared
        .store
        .approval(id)
        .await?
        .ok_or_else(|| VoteError::NotFound(id.to_owned()))?;
    let approver = operator.name.clone();
    check_approver(shared, &approval, &approver)?;
    let ballot = Vote {
        approval_id: id.to_owned(),
        approver: approver.clone(),
        approve,
        reason,
        at: Utc::now(),
    };
    let outcome = shared
        .store
        .cast_vote(&ballot, approval.required_count)
        .await?;
    match outcome {
        VoteOutcome::NotPending(status) => Err(VoteError::NotPending(status)),
        VoteOutcome::AlreadyVoted => Err(VoteError::AlreadyVoted(approver)),
        other => Ok((approval, other)),
    }
}

fn check_approver(shared: &Shared, approval: &Approval, approver: &str) -> Result<(), VoteError> {
    let config = &shared.config;
    if !config.approvals.allow_self_approval {
        let owner = config.agent(&approval.agent).map(|a| a.owner.as_str());
        if approval.user.as_deref() == Some(approver) || owner == Some(approver) {
            return Err(VoteError::SelfApproval(approver.to_owned()));
        }
    }
    if let Some(role) = &approval.required_role {
        let user = config
            .user(approver)
            .ok_or_else(|| VoteError::UnknownApprover(approver.to_owned()))?;
        if !user.roles.iter().any(|r| r == role) {
            return Err(VoteError::MissingRole {
                approver: approver.to_owned(),
                role: role.clone(),
            });
        }
    }
    Ok(())
}

/// What the status tool (or a waiting call) found.
pub enum Status {
    /// Still waiting, or ended without running (denied, expired, cancelled, executed).
    Settled(Approval),
    /// Approved and claimed by this caller: run it now with these approvers.
    Run(Approval, Vec<String>),
}

/// Look at a request of `agent`'s, expiring it if its time is up, and claim it to run if it was
/// approved and has not run yet. Exactly one caller wins the claim.
pub async fn claim(
    shared: &Arc<Shared>,
    agent: &str,
    id: &str,
    result_event_id: &str,
) -> Result<Option<Status>, StoreError> {
    let Some(mut approval) = shared.store.approval(id).await? else {
        return Ok(None);
    };
    if approval.agent != agent {
        return Ok(None);
    }
    let expirable = matches!(
        approval.status,
        ApprovalStatus::Pending | ApprovalStatus::Approved
    );
    if expirable && approval.expires_at <= Utc::now() {
        shared
            .store
            .transition_approval(id, approval.status, ApprovalStatus::Expired, None)
            .await?;
        approval.status = ApprovalStatus::Expired;
        return Ok(Some(Status::Settled(approval)));
    }
    if approval.status != ApprovalStatus::Approved {
        return Ok(Some(Status::Settled(approval)));
    }
    let claimed = shared
        .store
        .transition_approval(
            id,
            ApprovalStatus::Approved,
            ApprovalStatus::Executed,
            Some(result_event_id),
        )
        .await?;
    if !claimed {
        let current = shared.store.approval(id).await?.unwrap_or(approval);
        return Ok(Some(Status::Settled(current)));
    }
    let approvers = shared
        .store
        .votes(id)
        .await?
        .into_iter()
        .filter(|v| v.approve)
        .map(|v| v.approver)
        .collect();
    Ok(Some(Status::Run(approval, approvers)))
}

/// The status of a request as the agent sees it.
pub fn status_json(approval: &Approval) -> Value {
    json!({
        "approval_id": approval.id,
        "status": approval.status.as_str(),
        "tool": approval.tool,
        "requested_at": approval.requested_at,
        "expires_at": approval.expires_at,
        "decided_at": approval.decided_at,
        "result_event_id": approval.result_event_id,
    })
}
