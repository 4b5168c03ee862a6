//! The audit event: one record per call, whatever its outcome.
//!
//! Events carry digests of arguments and results, never the raw values. Every field an auditor
//! relies on lives in this struct, so that the audit log's canonical encoding covers it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Mode;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An agent called a tool (or tried to).
    ToolCall,
    /// A request that could not be authenticated.
    AuthFailure,
    /// An operator changed state: keys, tasks, kill switch, approvals.
    Admin,
}

/// What policy said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    /// No decision was reached (the call failed before or during authorization).
    None,
}

/// How the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The upstream answered with a result.
    Ok,
    /// The upstream answered with a tool error (`isError: true`).
    ToolError,
    /// Policy, identity or a gate refused the call; the upstream was not called.
    Denied,
    /// The request was malformed or named something that does not exist.
    Rejected,
    /// Something failed (upstream crash, timeout, internal error); failed closed.
    Failed,
    /// Recorded as a proposal (suggest mode), not executed.
    Proposed,
    /// Held for human approval; not executed (yet).
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::Denied => "denied",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Proposed => "proposed",
            Self::Pending => "pending",
        }
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::None => "none",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// A UUIDv7: unique and sortable by time.
    pub id: String,
    /// Shared by events of one logical request chain (from `traceparent`, or new).
    pub correlation_id: String,
    /// The event this one follows from (an approval's call, an undo's original), if any.
    pub parent_id: Option<String>,
    pub kind: EventKind,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `mcp`, `rest` or `cli`.
    pub channel: String,
    pub agent: Option<String>,
    pub user: Option<String>,
    pub task: Option<String>,
    pub session: Option<String>,
    /// The operator who acted (admin events).
    pub operator: Option<String>,
    /// The canonical tool name, `upstream.tool` (for tool calls), or the admin action.
    pub action: Option<String>,
    pub mode: Option<Mode>,
    /// Hash of the policy bundle (policies + config) in force.
    pub bundle_hash: String,
    pub verdict: Verdict,
    /// Ids of the policies that decided.
    pub policies: Vec<String>,
    /// Why, in words, when denied or failed.
    pub reason: Option<String>,
    pub outcome: Outcome,
    pub upstream_latency_us: Option<u64>,
    /// Keyed HMAC-SHA256 of the canonical arguments, hex.
    pub args_digest: Option<String>,
    /// Keyed HMAC-SHA256 of the canonical result, hex.
    pub result_digest: Option<String>,
    /// Who approved, for calls that needed approval.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Types and counts of what inspection found (never the values).
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// Something a stage noticed about a call's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// e.g. `dlp.ssn`, `injection.role_marker`.
    pub kind: String,
    /// `input` or `result`.
    pub location: String,
    pub count: u32,
    /// What was done: `flagged`, `redacted`, `dropped`, `denied`.
    pub action: String,
}

impl AuditEvent {
    /// A new event for `kind`, started now, with every optional field empty.
    pub fn begin(kind: EventKind, channel: &str, correlation_id: Option<String>) -> Self {
        let id = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        Self {
            correlation_id: correlation_id.unwrap_or_else(|| id.clone()),
            id,
            parent_id: None,
            kind,
            started_at: now,
            finished_at: now,
            channel: channel.to_owned(),
            agent: None,
            user: None,
            task: None,
            session: None,
            operator: None,
            action: None,
            mode: None,
            bundle_hash: String::new(),
            verdict: Verdict::None,
            policies: Vec::new(),
            reason: None,
            outcome: Outcome::Failed,
            upstream_latency_us: None,
            args_digest: None,
            result_digest: None,
            approvers: Vec::new(),
            findings: Vec::new(),
        }
    }
}
