//! A call in flight, and what the pipeline answers.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use warden_core::config::Agent;
use warden_core::store::TaskGrant;
use warden_core::{AuditEvent, Mode, Outcome, ToolInfo};

/// Who presented a valid credential: an agent key, or a task token of that agent.
#[derive(Debug, Clone)]
pub struct Principal {
    pub agent: String,
    /// The public id of the agent key used, when it was a key.
    pub key_id: Option<String>,
    /// The task grant, when a task token was used.
    pub task: Option<Arc<TaskGrant>>,
}

/// Where a call came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Mcp,
    Rest,
    Cli,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mcp => "mcp",
            Self::Rest => "rest",
            Self::Cli => "cli",
        }
    }
}

/// What an edge hands the gateway for one `tools/call`.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub channel: Channel,
    /// The tool name as the agent sent it (the exposed name).
    pub tool: String,
    /// The arguments as sent; anything but an object (or absent) is rejected.
    pub arguments: Option<Value>,
    /// The user the agent says it acts for.
    pub user: Option<String>,
    /// An explicit session id the agent sent (`_meta.session`, REST `session`).
    pub session: Option<String>,
    /// The transport's session (MCP `Mcp-Session-Id`); it takes precedence over a task grant
    /// and an explicit id (see `session::session_key`).
    pub mcp_session: Option<String>,
    /// From `traceparent`, when the caller sent one.
    pub correlation_id: Option<String>,
}

/// A call as the stages see it: who, what, and everything learned so far.
#[derive(Debug)]
pub struct Call {
    pub principal: Principal,
    pub request: CallRequest,
    /// The audit record, filled in as the call proceeds; `record` commits it.
    pub event: AuditEvent,
    pub agent: Option<Arc<Agent>>,
    pub tool: Option<Arc<ToolInfo>>,
    pub input: Map<String, Value>,
    pub user: Option<String>,
    pub mode: Mode,
    /// The upstream the call goes to (a sandbox twin in sandbox mode).
    pub target_upstream: Option<String>,
    /// The upstream's `CallToolResult`, as JSON.
    pub result: Option<Value>,
    /// Whether the upstream answered with a tool error (before inspection changed the result).
    pub upstream_error: bool,
    /// Who approved, when this call runs an approved request.
    pub approved_by: Option<Vec<String>>,
    /// What policy requires before this call may run (set by authorize, enforced by gate).
    pub obligation: Option<Obligation>,
    /// The approval request this call was parked as.
    pub approval_id: Option<String>,
    /// What the arguments hold (classes, detector kinds), found before authorization.
    pub data: Option<crate::protection::ArgumentData>,
    /// The session this call belongs to (`mcp:`, `task:` or `id:` key), if any.
    pub session_key: Option<String>,
    /// What the session did before this call (loaded by authorize).
    pub session: Option<warden_core::session::SessionState>,
    /// The session's lock, from authorize until the call is dropped after record: calls of
    /// one session are decided and counted one at a time.
    pub session_guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Set by execute just before the upstream is called: the call counts in its session.
    pub attempted: bool,
    /// A difference between the active and the shadow bundle's decision, recorded after the
    /// audit event commits.
    pub shadow_diff: Option<warden_core::session::ShadowDiff>,
    /// The upstream's raw result, sealed for the evidence vault; record commits it in the
    /// event's own transaction.
    pub result_evidence: Option<warden_core::store::EvidenceRecord>,
}

/// A human approval that policy requires: `@approval("ROLE")` (and `@approvers("N")`) on the
/// forbid policies that `context.approved` lifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obligation {
    pub role: Option<String>,
    pub count: u32,
    pub policies: Vec<String>,
}

impl Call {
    pub fn new(principal: Principal, request: CallRequest, event: AuditEvent) -> Self {
        Self {
            principal,
            request,
            event,
            agent: None,
            tool: None,
            input: Map::new(),
            user: None,
            mode: Mode::Execute,
            target_upstream: None,
            result: None,
            upstream_error: false,
            approved_by: None,
            obligation: None,
            approval_id: None,
            data: None,
            session_key: None,
            session: None,
            session_guard: None,
            attempted: false,
            shadow_diff: None,
            result_evidence: None,
        }
    }

    pub fn tool_info(&self) -> Result<&Arc<ToolInfo>, StageError> {
        self.tool
            .as_ref()
            .ok_or(StageError::Internal("tool not resolved before use"))
    }

    pub fn agent_config(&self) -> Result<&Arc<Agent>, StageError> {
        self.agent
            .as_ref()
            .ok_or(StageError::Internal("agent not resolved before use"))
    }
}

/// What a stage does with a call: pass it on, or answer it now.
#[derive(Debug)]
pub enum Flow {
    Continue,
    Answer(Refusal),
}

/// Why a call was answered without (or despite) running: shown to the agent and recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
    /// The policies that decided, when policy did.
    pub policies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Policy, identity or a gate said no.
    Denied,
    /// The request was malformed or named something that does not exist.
    Rejected,
    /// Recorded as a proposal, not executed (suggest mode).
    Proposed,
    /// Something failed; the call failed closed.
    Failed,
    /// Held until enough approvers approve.
    Pending,
}

impl RefusalKind {
    pub fn outcome(self) -> Outcome {
        match self {
            Self::Denied => Outcome::Denied,
            Self::Rejected => Outcome::Rejected,
            Self::Proposed => Outcome::Proposed,
            Self::Failed => Outcome::Failed,
            Self::Pending => Outcome::Pending,
        }
    }
}

impl Refusal {
    pub fn denied(message: impl Into<String>, policies: Vec<String>) -> Self {
        Self {
            kind: RefusalKind::Denied,
            message: message.into(),
            policies,
        }
    }
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::Rejected,
            message: message.into(),
            policies: Vec::new(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::Failed,
            message: message.into(),
            policies: Vec::new(),
        }
    }
}

/// A stage could not do its job. The pipeline turns this into a fail-closed answer.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("store: {0}")]
    Store(#[from] warden_core::store::StoreError),
    #[error("upstream: {0}")]
    Upstream(#[from] warden_upstream::UpstreamError),
    #[error("internal error: {0}")]
    Internal(&'static str),
    #[error(transparent)]
    Protection(#[from] crate::protection::ProtectionError),
    #[error("the evidence vault could not keep the record: {0}")]
    Evidence(String),
}

/// The gateway's answer to one call.
#[derive(Debug, Clone, Serialize)]
pub struct CallResponse {
    /// The committed audit event for this call.
    pub event_id: String,
    pub outcome: Outcome,
    /// The policies that decided (permits when allowed, forbids when denied).
    pub policies: Vec<String>,
    /// The upstream's `CallToolResult` as JSON, when the call ran.
    pub result: Option<Value>,
    /// Why it did not run (or failed), when it did not succeed.
    pub refusal: Option<Refusal>,
    /// The approval request holding this call, when it is pending.
    pub approval_id: Option<String>,
    /// The sandbox twin the call ran against instead of the tool's upstream (sandbox mode).
    pub sandbox: Option<String>,
}

impl CallResponse {
    /// One line for an agent: what happened, why, which policies, and the event to look up.
    pub fn explanation(&self) -> String {
        match &self.refusal {
            None => match &self.sandbox {
                Some(twin) => format!("ok, run in sandbox `{twin}` (event {})", self.event_id),
                None => format!("ok (event {})", self.event_id),
            },
            Some(r) => {
                let verb = match r.kind {
                    RefusalKind::Denied => "denied",
                    RefusalKind::Rejected => "rejected",
                    RefusalKind::Proposed => "recorded as a proposal, not executed",
                    RefusalKind::Failed => "failed",
                    RefusalKind::Pending => "held for approval",
                };
                let policies = if r.policies.is_empty() {
                    String::new()
                } else {
                    format!(" (policies: {})", r.policies.join(", "))
                };
                format!("{verb}: {}{policies} [event {}]", r.message, self.event_id)
            }
        }
    }
}
