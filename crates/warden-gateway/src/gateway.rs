//! The gateway: shared state, the pipeline run, tool listing, and credential administration.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use warden_core::catalog::Catalog;
use warden_core::config::Agent;
use warden_core::session::SessionCall;
use warden_core::store::{
    AgentKey, ApprovalKind, ApprovalStatus, CallWrites, CancelScope, OperatorRole, OperatorToken,
    Store, StoreError, Switch, TaskGrant, VoteOutcome,
};
use warden_core::{
    AuditEvent, Config, EventKind, Mode, Outcome, RiskTier, ToolInfo, ToolName, Verdict,
};
use warden_policy::{PolicyBundle, TaskScope};
use warden_upstream::UpstreamPool;

use crate::approvals;
use crate::call::{
    Call, CallRequest, CallResponse, Channel, Flow, Principal, Refusal, RefusalKind,
};
use crate::digest::Digester;
use crate::identity::{AuthError, Authenticator};
use crate::protection::{self, Protection};
use crate::secrets::{self, NewSecret, SecretKind};
use crate::stages::{self, Stage};
use crate::switches::Switches;

/// The policy bundle and the tool catalog it was validated against; swapped together.
pub struct Snapshot {
    pub bundle: PolicyBundle,
    pub catalog: Catalog,
}

/// State every stage may read.
pub struct Shared {
    pub config: Arc<Config>,
    pub upstreams: UpstreamPool,
    pub store: Arc<dyn Store>,
    pub digester: Digester,
    pub switches: Switches,
    /// Detectors and field rules (`[dlp]`, tools' `classify`), built once.
    pub protection: Protection,
    /// The evidence vault's master key (see [`crate::evidence`]).
    pub vault: warden_vault::MasterKey,
    /// Tools withheld because their definitions changed since they were pinned.
    pub pins: crate::pinning::Pins,
    /// Calls of one session run one at a time between authorize and record.
    pub session_locks: crate::session::SessionLocks,
    agents: HashMap<String, Arc<Agent>>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The candidate bundle of `[policy] shadow`, set once at start.
    shadow: std::sync::OnceLock<PolicyBundle>,
}

impl Shared {
    /// The shadow (candidate) bundle, when one is loaded.
    pub fn shadow_bundle(&self) -> Option<&PolicyBundle> {
        self.shadow.get()
    }

    pub fn agent(&self, id: &str) -> Option<Arc<Agent>> {
        self.agents.get(id).cloned()
    }

    /// The bundle and catalog in force now. A call takes one snapshot and keeps it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The mode for this agent and tool: the agent's per-tool override, else the tool's, else
    /// the agent's own.
    pub fn effective_mode(&self, agent: &Agent, tool: &ToolName) -> Mode {
        agent
            .tool_modes
            .get(tool)
            .copied()
            .or_else(|| self.config.tool(tool).and_then(|t| t.mode))
            .unwrap_or(agent.mode)
    }
}

/// Everything needed to build a gateway.
pub struct GatewayParts {
    pub config: Arc<Config>,
    pub bundle: PolicyBundle,
    pub catalog: Catalog,
    pub upstreams: UpstreamPool,
    pub store: Arc<dyn Store>,
    /// Keys the digests of arguments and results in the audit log.
    pub digest_key: [u8; 32],
    /// Wraps the data key of every evidence record; never stored in the database.
    pub vault_key: warden_vault::MasterKey,
}

pub struct Gateway {
    shared: Arc<Shared>,
    stages: Vec<Box<dyn Stage>>,
    auth: Authenticator,
}

/// Which tool listing a principal gets.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub user: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("agent `{0}` is not in the configuration")]
    UnknownAgent(String),
    #[error("agent `{0}` already has a live key: use rotate to replace it")]
    HasKey(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the audit record could not be committed, so nothing was changed: {0}")]
    Audit(StoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A recorded vote, and the execution it triggered (approving a proposal runs it).
#[derive(Debug)]
pub struct VoteResult {
    pub approval: warden_core::store::Approval,
    pub outcome: VoteOutcome,
    pub execution: Option<CallResponse>,
}

/// What a kill switch stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchTarget {
    Global,
    Agent(String),
    Upstream(String),
}

/// A new task grant: the token (shown once) and what it allows.
#[derive(Debug, serde::Serialize)]
pub struct IssuedTask {
    pub task_id: String,
    pub token: String,
    pub tools: Vec<String>,
    pub max_class: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// What an agent asks for in `POST /v1/tasks`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Tools the task may call (exposed or canonical names).
    pub tools: Vec<String>,
    pub max_class: Option<String>,
    /// Lifetime in seconds; at most [`MAX_TASK_TTL`].
    pub ttl_seconds: Option<u64>,
    pub purpose: Option<String>,
    pub user: Option<String>,
}

/// How often a waiting call reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One report from a call that is waiting (for an approval decision).
#[derive(Debug, Clone)]
pub struct ProgressUpdate {
    pub elapsed: Duration,
    /// How long the call waits at most.
    pub wait: Duration,
    pub message: String,
}

/// Where a waiting call sends its progress reports (an MCP edge turns them into
/// `notifications/progress`). It must not block.
pub type Progress = Arc<dyn Fn(ProgressUpdate) + Send + Sync>;

/// A call's first answer ([`Gateway::start_call`]).
pub enum FirstAnswer {
    Final(CallResponse),
    /// Waiting for an approval decision: [`Gateway::finish_held`] gives the final answer.
    Held(HeldCall),
}

/// A call held for an approval decision: its agent, the approval request and its pending answer.
pub struct HeldCall {
    principal: Principal,
    approval_id: String,
    pending: CallResponse,
}

pub const MAX_TASK_TTL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_TASK_TTL: Duration = Duration::from_secs(15 * 60);

impl Gateway {
    pub fn new(parts: GatewayParts) -> Self {
        let agents = parts
            .config
            .agents
            .iter()
            .map(|a| (a.id.clone(), Arc::new(a.clone())))
            .collect();
        let auth = Authenticator::new(parts.store.clone());
        let digester = Digester::new(parts.digest_key);
        let protection = Protection::new(
            &parts.config,
            &digester.derive_key(protection::PSEUDONYM_KEY_LABEL),
        );
        let shared = Shared {
            config: parts.config,
            upstreams: parts.upstreams,
            store: parts.store.clone(),
            digester,
            protection,
            vault: parts.vault_key,
            pins: crate::pinning::Pins::default(),
            session_locks: crate::session::SessionLocks::default(),
            switches: Switches::new(
                parts.store.clone() as Arc<dyn warden_core::store::ControlStore>
            ),
            agents,
            snapshot: RwLock::new(Arc::new(Snapshot {
                bundle: parts.bundle,
                catalog: parts.catalog,
            })),
            shadow: std::sync::OnceLock::new(),
        };
        Self {
            shared: Arc::new(shared),
            stages: stages::standard(),
            auth,
        }
    }

    /// Run `bundle` as the shadow of the active one (`[policy] shadow`); only the first call
    /// takes effect.
    pub fn set_shadow_bundle(&self, bundle: PolicyBundle) -> bool {
        self.shared.shadow.set(bundle).is_ok()
    }

    /// Summarize the shadow differences recorded at or after `since` (at most `limit`).
    pub async fn shadow_report(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
        examples: usize,
    ) -> Result<crate::shadow::ShadowReport, StoreError> {
        let diffs = self.shared.store.shadow_diffs(since, limit).await?;
        Ok(crate::shadow::report(&diffs, since, examples))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Authenticate an agent credential. Failures are recorded, so an auditor sees them.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        channel: Channel,
    ) -> Result<Principal, AuthFailure> {
        match self.auth.agent(bearer).await {
            Ok(p) if self.shared.agent(&p.agent).is_some() => Ok(p),
            Ok(p) => Err(self
                .record_auth_failure(AuthError::UnknownAgent(p.agent), channel)
                .await),
            Err(e) => Err(self.record_auth_failure(e, channel).await),
        }
    }

    /// Authenticate an operator with at least `role`.
    pub async fn authenticate_operator(
        &self,
        bearer: Option<&str>,
        role: OperatorRole,
    ) -> Result<OperatorToken, OperatorAuthError> {
        let token = self
            .auth
            .operator(bearer)
            .await
            .map_err(OperatorAuthError::Auth)?;
        // Roles are not a ladder (an approver may not read evidence), except that admin holds
        // every role and any operator may view.
        let holds =
            token.role == role || token.role == OperatorRole::Admin || role == OperatorRole::Viewer;
        if !holds {
            return Err(OperatorAuthError::Forbidden {
                have: token.role,
                need: role,
            });
        }
        Ok(token)
    }

    async fn record_auth_failure(&self, error: AuthError, channel: Channel) -> AuthFailure {
        let mut event = AuditEvent::begin(EventKind::AuthFailure, channel.as_str(), None);
        if let AuthError::Revoked { agent, .. } | AuthError::UnknownAgent(agent) = &error {
            event.agent = Some(agent.clone());
        }
        event.outcome = Outcome::Denied;
        event.reason = Some(error.to_string());
        event.bundle_hash = self.shared.snapshot().bundle.hash().to_owned();
        event.finished_at = Utc::now();
        let event_id = match self.shared.store.append(&event).await {
            Ok(_) => Some(event.id),
            Err(e) => {
                tracing::error!(error = %e, "could not record an authentication failure");
                None
            }
        };
        AuthFailure { error, event_id }
    }

    /// The tools this principal may call: those policy allows for some arguments, within the
    /// task grant and the agent's mode. A tool left out here is always denied at call time.
    pub fn list_tools(&self, principal: &Principal, request: &ListRequest) -> Vec<ToolInfo> {
        let Some(agent) = self.shared.agent(&principal.agent) else {
            return Vec::new();
        };
        let user = request
            .user
            .clone()
            .or_else(|| principal.task.as_ref().and_then(|t| t.user.clone()));
        if user.is_some()
            && (!agent.delegation
                || self
                    .shared
                    .config
                    .user(user.as_deref().unwrap_or(""))
                    .is_none())
        {
            return Vec::new();
        }
        let snapshot = self.shared.snapshot();
        let task = principal.task.as_ref().map(|t| TaskScope {
            id: t.task_id.clone(),
            tools: t.tools.clone(),
            max_clearance: t
                .max_class
                .as_deref()
                .and_then(|c| self.shared.config.classes.level(c))
                .map(|l| l.0),
        });
        snapshot
            .catalog
            .iter()
            .filter(|tool| {
                let in_task = principal
                    .task
                    .as_ref()
                    .is_none_or(|t| t.tools.iter().any(|n| n == tool.name.as_str()));
                let mode = self.shared.effective_mode(&agent, &tool.name);
                let mode_allows = !(mode == Mode::ReadOnly && tool.risk != RiskTier::Read);
                in_task
                    && mode_allows
                    && !self.shared.pins.is_blocked(&tool.name)
                    && snapshot.bundle.may_list(
                        &agent.id,
                        user.as_deref(),
                        task.as_ref(),
                        &tool.name,
                        mode,
                    )
            })
            .cloned()
            .chain(std::iter::once(approval_status_tool()))
            .collect()
    }

    /// Record an approver's vote (audited first), enforcing the approval rules.
    pub async fn vote(
        &self,
        id: &str,
        operator: &OperatorToken,
        approve: bool,
        reason: Option<String>,
    ) -> Result<VoteResult, approvals::VoteError> {
        let action = format!(
            "approvals.{}:{id}",
            if approve { "approve" } else { "deny" }
        );
        let mut event = AuditEvent::begin(EventKind::Admin, "rest", None);
        event.operator = Some(operator.name.clone());
        event.action = Some(action);
        event.bundle_hash = self.shared.snapshot().bundle.hash().to_owned();
        let result = approvals::vote(&self.shared, id, operator, approve, reason.clone()).await;
        match &result {
            Ok((approval, _)) => {
                event.parent_id = Some(approval.event_id.clone());
                event.agent = Some(approval.agent.clone());
                event.outcome = Outcome::Ok;
                event.reason = reason;
            }
            Err(e) => {
                event.outcome = Outcome::Denied;
                event.reason = Some(e.to_string());
            }
        }
        event.finished_at = Utc::now();
        self.shared
            .store
            .append(&event)
            .await
            .map_err(approvals::VoteError::Store)?;
        let (approval, outcome) = result?;
        // Approving a proposal is the operator executing it, now, as the agent.
        let execution = if approval.kind == ApprovalKind::Proposal
            && outcome == VoteOutcome::Approved
        {
            let principal = Principal {
                agent: approval.agent.clone(),
                key_id: None,
                task: None,
            };
            let request = status_request(&approval.id, Channel::Rest, approval.event_id.clone());
            Some(self.approval_status(principal, request).await)
        } else {
            None
        };
        Ok(VoteResult {
            approval,
            outcome,
            execution,
        })
    }

    /// Approval requests, newest first, optionally of one status.
    pub async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<warden_core::store::Approval>, AdminError> {
        Ok(self.shared.store.approvals(status).await?)
    }

    /// Run one call through the pipeline. The answer is returned only once its audit event is
    /// committed; if the commit fails, the call's result is withheld and it fails closed.
    pub async fn call_tool(&self, principal: Principal, request: CallRequest) -> CallResponse {
        self.call_tool_with_progress(principal, request, None).await
    }

    /// [`Gateway::call_tool`], telling `progress` (about once a second) while the call waits
    /// for an approval decision, so an MCP client can show that it is waiting and why.
    pub async fn call_tool_with_progress(
        &self,
        principal: Principal,
        request: CallRequest,
        progress: Option<Progress>,
    ) -> CallResponse {
        match self.start_call(principal, request).await {
            FirstAnswer::Final(response) => response,
            FirstAnswer::Held(held) => self.finish_held(held, progress).await,
        }
    }

    /// Run one call through the pipeline up to its first answer: the final one, or — when it
    /// needs an approval and `[approvals] wait` lets it wait — a call held for the decision,
    /// which [`Gateway::finish_held`] waits for. An edge that can report progress only in some
    /// answers (a JSON body cannot, an event stream can) learns here which one it needs.
    pub async fn start_call(&self, principal: Principal, request: CallRequest) -> FirstAnswer {
        if request.tool == approvals::STATUS_TOOL {
            return FirstAnswer::Final(self.approval_status(principal, request).await);
        }
        let call = self.new_call(principal.clone(), request, None);
        let response = self.run(call).await;
        match response.approval_id.clone() {
            Some(approval_id) if !self.shared.config.approvals.wait.is_zero() => {
                FirstAnswer::Held(HeldCall {
                    principal,
                    approval_id,
                    pending: response,
                })
            }
            _ => FirstAnswer::Final(response),
        }
    }

    /// Wait for a held call's decision (up to `[approvals] wait`), telling `progress` meanwhile.
    pub async fn finish_held(&self, held: HeldCall, progress: Option<Progress>) -> CallResponse {
        let HeldCall {
            principal,
            approval_id,
            pending,
        } = held;
        self.wait_for_decision(principal, &approval_id, pending, progress)
            .await
    }

    pub(crate) fn new_call(
        &self,
        principal: Principal,
        request: CallRequest,
        parent: Option<String>,
    ) -> Call {
        let mut event = AuditEvent::begin(
            EventKind::ToolCall,
            request.channel.as_str(),
            request.correlation_id.clone(),
        );
        event.parent_id = parent;
        event.agent = Some(principal.agent.clone());
        event.task = principal.task.as_ref().map(|t| t.task_id.clone());
        let session_key = crate::session::session_key(&request, &principal);
        event.session = session_key.clone();
        event.action = Some(request.tool.clone());
        event.bundle_hash = self.shared.snapshot().bundle.hash().to_owned();
        let mut call = Call::new(principal, request, event);
        call.session_key = session_key;
        call
    }

    pub(crate) async fn run(&self, mut call: Call) -> CallResponse {
        let mut refusal = None;
        for stage in &self.stages {
            match stage.run(&self.shared, &mut call).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Answer(r)) => {
                    refusal = Some(r);
                    break;
                }
                Err(e) => {
                    tracing::error!(stage = stage.name(), error = %e, "stage failed; failing closed");
                    refusal = Some(Refusal::failed(format!(
                        "{} stage failed: {e}",
                        stage.name()
                    )));
                    break;
                }
            }
        }
        self.record(call, refusal).await
    }

    /// Hold the agent's call for up to `approvals.wait`, running it as soon as it is approved.
    async fn wait_for_decision(
        &self,
        principal: Principal,
        id: &str,
        pending: CallResponse,
        progress: Option<Progress>,
    ) -> CallResponse {
        let started = tokio::time::Instant::now();
        let wait = self.shared.config.approvals.wait;
        let deadline = started + wait;
        let mut last_report: Option<tokio::time::Instant> = None;
        while tokio::time::Instant::now() < deadline {
            if let Some(report) = &progress
                && last_report.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY)
            {
                last_report = Some(tokio::time::Instant::now());
                report(ProgressUpdate {
                    elapsed: started.elapsed(),
                    wait,
                    message: format!("waiting for approval {id}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.shared.store.approval(id).await {
                Ok(Some(a)) if a.status == ApprovalStatus::Pending => continue,
                Ok(Some(_)) => {
                    let request = status_request(id, Channel::Mcp, pending.event_id.clone());
                    return self.approval_status(principal, request).await;
                }
                Ok(None) | Err(_) => break,
            }
        }
        pending
    }

    /// The built-in `warden.approval_status` tool: the request's state, or — when it was approved
    /// and has not run — the approved call itself, run now through the whole pipeline.
    async fn approval_status(&self, principal: Principal, request: CallRequest) -> CallResponse {
        let id = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("approval_id"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let mut call = self.new_call(principal.clone(), request.clone(), None);
        call.event.action = Some(approvals::STATUS_TOOL.to_owned());
        let Some(id) = id else {
            return self
                .record(
                    call,
                    Some(Refusal::rejected("`approval_id` (a string) is required")),
                )
                .await;
        };
        let run_event = AuditEvent::begin(
            EventKind::ToolCall,
            request.channel.as_str(),
            request.correlation_id.clone(),
        );
        match approvals::claim(&self.shared, &principal.agent, &id, &run_event.id).await {
            Ok(Some(approvals::Status::Run(approval, approvers))) => {
                self.run_approved(principal, request.channel, approval, approvers, run_event)
                    .await
            }
            Ok(Some(approvals::Status::Settled(approval))) => {
                call.event.parent_id = Some(approval.event_id.clone());
                call.event.verdict = Verdict::Allow;
                call.result = Some(serde_json::json!({
                    "content": [{"type": "text", "text": format!("approval {} is {}", approval.id, approval.status)}],
                    "structuredContent": approvals::status_json(&approval),
                }));
                self.record(call, None).await
            }
            Ok(None) => {
                self.record(
                    call,
                    Some(Refusal::rejected(format!(
                        "no approval request `{id}` for this agent"
                    ))),
                )
                .await
            }
            Err(e) => {
                self.record(
                    call,
                    Some(Refusal::failed(format!("the approval store failed: {e}"))),
                )
                .await
            }
        }
    }

    /// Run an approved request as its agent, with the approvers in the policy context.
    pub(crate) async fn run_approved(
        &self,
        principal: Principal,
        channel: Channel,
        approval: warden_core::store::Approval,
        approvers: Vec<String>,
        event: AuditEvent,
    ) -> CallResponse {
        let snapshot = self.shared.snapshot();
        let exposed = approval
            .tool
            .parse::<ToolName>()
            .ok()
            .and_then(|t| snapshot.catalog.get(&t).map(|i| i.exposed_name.clone()))
            .unwrap_or_else(|| approval.tool.clone());
        let request = CallRequest {
            channel,
            tool: exposed,
            arguments: Some(approval.args.clone()),
            user: approval.user.clone(),
            session: None,
            mcp_session: None,
            correlation_id: Some(event.correlation_id.clone()),
        };
        let mut call = self.new_call(principal, request, Some(approval.event_id.clone()));
        // The approval keeps the session key of the held call.
        call.session_key = approval.session.clone();
        call.event.session = approval.session.clone();
        call.event.id = event.id;
        call.event.operator = event.operator;
        call.approved_by = Some(approvers);
        let bound = approval.args.as_object().map(approvals::args_hash);
        if bound.as_deref() != Some(approval.args_hash.as_str()) {
            return self
                .record(
                    call,
                    Some(Refusal::failed(
                        "the approved arguments do not match their hash; not run",
                    )),
                )
                .await;
        }
        self.run(call).await
    }

    /// record: commit the event (with the call's sealed result and session count, in one
    /// transaction), then answer.
    async fn record(&self, mut call: Call, refusal: Option<Refusal>) -> CallResponse {
        let writes = CallWrites {
            evidence: call.result_evidence.take().into_iter().collect(),
            session: session_call(&self.shared, &call),
        };
        let with_writes = !writes.is_empty();
        let shadow_diff = call.shadow_diff.take();
        finish_event(&mut call, refusal.as_ref());
        let event_id = call.event.id.clone();
        let committed = match self.shared.store.append_call(&call.event, writes).await {
            Ok(_) => Ok(refusal),
            // The result's record or the session count did not commit, so neither did the event:
            // record the call alone as failed and withhold the result.
            Err(e) if with_writes => {
                tracing::error!(error = %e, event = %event_id, "could not commit the call with its evidence and session; withholding the result");
                let failed = Refusal::failed(format!(
                    "the call's evidence and session could not be committed ({e}); the result is withheld"
                ));
                finish_event(&mut call, Some(&failed));
                self.shared
                    .store
                    .append(&call.event)
                    .await
                    .map(|_| Some(failed))
            }
            Err(e) => Err(e),
        };
        match committed {
            Ok(refusal) => {
                if let Some(diff) = shadow_diff
                    && let Err(e) = self.shared.store.insert_shadow_diff(&diff).await
                {
                    // The shadow bundle decides nothing, so its bookkeeping fails nothing.
                    tracing::warn!(error = %e, event = %event_id, "could not record a shadow-policy difference");
                }
                let sandbox = (call.mode == warden_core::Mode::Sandbox && call.attempted)
                    .then(|| call.target_upstream.clone())
                    .flatten();
                CallResponse {
                    approval_id: call.approval_id.clone(),
                    sandbox,
                    event_id,
                    outcome: call.event.outcome,
                    policies: call.event.policies.clone(),
                    result: if refusal.is_none() { call.result } else { None },
                    refusal,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, event = %event_id, "audit commit failed; withholding the result");
                CallResponse {
                    approval_id: None,
                    sandbox: None,
                    event_id,
                    outcome: Outcome::Failed,
                    policies: call.event.policies.clone(),
                    result: None,
                    refusal: Some(Refusal::failed(format!(
                        "the audit record could not be committed ({e}); the result is withheld"
                    ))),
                }
            }
        }
    }

    /// Issue the first key of a configured agent. The key is returned once and never stored.
    pub async fn create_agent_key(
        &self,
        agent: &str,
        operator: &str,
    ) -> Result<(AgentKey, NewSecret), AdminError> {
        self.known_agent(agent)?;
        let keys = self.shared.store.agent_keys().await?;
        if keys
            .iter()
            .any(|k| k.agent == agent && k.revoked_at.is_none())
        {
            return Err(AdminError::HasKey(agent.to_owned()));
        }
        self.issue_key(agent, operator, "agents.create").await
    }

    /// Issue a new key and revoke every other key of the agent.
    pub async fn rotate_agent_key(
        &self,
        agent: &str,
        operator: &str,
    ) -> Result<(AgentKey, NewSecret), AdminError> {
        self.known_agent(agent)?;
        let (key, secret) = self.issue_key(agent, operator, "agents.rotate").await?;
        self.shared
            .store
            .revoke_agent_keys(agent, Some(&key.key_id), Utc::now())
            .await?;
        self.auth.forget_agent(agent);
        Ok((key, secret))
    }

    /// Revoke every key of the agent; calls with them are refused from now on.
    pub async fn revoke_agent_keys(&self, agent: &str, operator: &str) -> Result<u64, AdminError> {
        self.known_agent(agent)?;
        self.admin_event(operator, "agents.revoke", Some(agent))
            .await?;
        let n = self
            .shared
            .store
            .revoke_agent_keys(agent, None, Utc::now())
            .await?;
        self.auth.forget_agent(agent);
        Ok(n)
    }

    /// Turn a kill switch on or off: `global`, `agent:<id>` or `upstream:<name>`. Turning one on
    /// denies new calls at once and cancels the approvals waiting in its scope; a call already
    /// at its upstream finishes and is recorded.
    pub async fn set_switch(
        &self,
        target: SwitchTarget,
        paused: bool,
        operator: &str,
        reason: Option<String>,
    ) -> Result<(), AdminError> {
        let (scope, cancel) = match &target {
            SwitchTarget::Global => (Switch::GLOBAL.to_owned(), CancelScope::All),
            SwitchTarget::Agent(id) => {
                self.known_agent(id)?;
                (Switch::agent_scope(id), CancelScope::Agent(id.clone()))
            }
            SwitchTarget::Upstream(name) => {
                if self.shared.config.upstream(name).is_none() {
                    return Err(AdminError::Invalid(format!("unknown upstream `{name}`")));
                }
                (
                    Switch::upstream_scope(name),
                    CancelScope::Upstream(name.clone()),
                )
            }
        };
        let action = format!("switch.{}:{scope}", if paused { "pause" } else { "resume" });
        self.admin_event(
            operator,
            &action,
            match &target {
                SwitchTarget::Agent(a) => Some(a),
                _ => None,
            },
        )
        .await?;
        let switch = Switch {
            scope,
            paused,
            reason,
            by: operator.to_owned(),
            at: Utc::now(),
        };
        self.shared.switches.set(&switch).await?;
        if paused {
            let cancelled = self.shared.store.cancel_pending_approvals(cancel).await?;
            if cancelled > 0 {
                tracing::info!(cancelled, scope = %switch.scope, "cancelled pending approvals");
            }
        }
        Ok(())
    }

    /// Every kill switch that is on.
    pub async fn paused(&self) -> Result<Vec<Switch>, AdminError> {
        Ok(self.shared.switches.paused().await?)
    }

    pub async fn agent_keys(&self) -> Result<Vec<AgentKey>, AdminError> {
        Ok(self.shared.store.agent_keys().await?)
    }

    /// Create an operator token (the bootstrap admin token, or one an admin asks for).
    pub async fn create_operator_token(
        &self,
        name: &str,
        role: OperatorRole,
        by: &str,
    ) -> Result<(OperatorToken, NewSecret), AdminError> {
        let secret = secrets::generate(SecretKind::OperatorToken);
        let token = OperatorToken {
            token_id: secret.id.clone(),
            name: name.to_owned(),
            role,
            hash: secret.hash.clone(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.admin_event(by, &format!("operators.create:{}", role.as_str()), None)
            .await?;
        self.shared.store.insert_operator_token(&token).await?;
        Ok((token, secret))
    }

    /// Grant a short-lived task token narrowing `principal` to some tools and data classes.
    /// A task token cannot mint further tokens beyond its own scope.
    pub async fn create_task(
        &self,
        principal: &Principal,
        req: TaskRequest,
    ) -> Result<IssuedTask, AdminError> {
        let agent = self.known_agent(&principal.agent)?;
        let snapshot = self.shared.snapshot();
        let mut tools = Vec::with_capacity(req.tools.len());
        for name in &req.tools {
            let tool = snapshot
                .catalog
                .by_exposed_name(name)
                .map(AsRef::as_ref)
                .or_else(|| name.parse().ok().and_then(|n| snapshot.catalog.get(&n)))
                .ok_or_else(|| AdminError::Invalid(format!("unknown tool `{name}`")))?;
            if let Some(parent) = &principal.task
                && !parent.tools.iter().any(|t| t == tool.name.as_str())
            {
                return Err(AdminError::Invalid(format!(
                    "tool `{name}` is outside the current task"
                )));
            }
            tools.push(tool.name.to_string());
        }
        if tools.is_empty() {
            return Err(AdminError::Invalid("a task needs at least one tool".into()));
        }
        let classes = &self.shared.config.classes;
        let agent_level = classes.level(&agent.clearance);
        let max_class = match &req.max_class {
            Some(c) => {
                let level = classes
                    .level(c)
                    .ok_or_else(|| AdminError::Invalid(format!("unknown data class `{c}`")))?;
                if agent_level.is_some_and(|a| level > a) {
                    return Err(AdminError::Invalid(format!(
                        "data class `{c}` is above agent `{}`'s clearance `{}`",
                        agent.id, agent.clearance
                    )));
                }
                Some(c.clone())
            }
            None => principal.task.as_ref().and_then(|t| t.max_class.clone()),
        };
        if let Some(user) = &req.user
            && (!agent.delegation || self.shared.config.user(user).is_none())
        {
            return Err(AdminError::Invalid(format!(
                "agent `{}` may not act for user `{user}`",
                agent.id
            )));
        }
        let ttl = req
            .ttl_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TASK_TTL)
            .min(MAX_TASK_TTL);
        let mut expires_at =
            Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(15));
        if let Some(parent) = &principal.task {
            expires_at = expires_at.min(parent.expires_at);
        }
        let secret = secrets::generate(SecretKind::TaskToken);
        let grant = TaskGrant {
            task_id: format!("task_{}", secret.id),
            agent: agent.id.clone(),
            hash: secret.hash.clone(),
            tools: tools.clone(),
            max_class: max_class.clone(),
            purpose: req.purpose,
            user: req
                .user
                .or_else(|| principal.task.as_ref().and_then(|t| t.user.clone())),
            created_at: Utc::now(),
            expires_at,
        };
        let mut event = AuditEvent::begin(EventKind::Admin, "rest", None);
        event.agent = Some(agent.id.clone());
        event.task = Some(grant.task_id.clone());
        event.action = Some("tasks.create".into());
        event.outcome = Outcome::Ok;
        event.bundle_hash = snapshot.bundle.hash().to_owned();
        self.shared
            .store
            .append(&event)
            .await
            .map_err(AdminError::Audit)?;
        self.shared.store.insert_task(&grant).await?;
        Ok(IssuedTask {
            task_id: grant.task_id,
            token: secret.secret,
            tools,
            max_class,
            expires_at,
        })
    }

    fn known_agent(&self, agent: &str) -> Result<Arc<Agent>, AdminError> {
        self.shared
            .agent(agent)
            .ok_or_else(|| AdminError::UnknownAgent(agent.to_owned()))
    }

    async fn issue_key(
        &self,
        agent: &str,
        operator: &str,
        action: &str,
    ) -> Result<(AgentKey, NewSecret), AdminError> {
        let secret = secrets::generate(SecretKind::AgentKey);
        let key = AgentKey {
            key_id: secret.id.clone(),
            agent: agent.to_owned(),
            hash: secret.hash.clone(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.admin_event(operator, action, Some(agent)).await?;
        self.shared.store.insert_agent_key(&key).await?;
        Ok((key, secret))
    }

    /// Record an operator's action before doing it: no record, no change.
    async fn admin_event(
        &self,
        operator: &str,
        action: &str,
        agent: Option<&str>,
    ) -> Result<String, AdminError> {
        self.record_admin_event(self.admin_event_of(operator, action, agent))
            .await
    }

    /// The admin event of an operator's action, not yet recorded.
    pub(crate) fn admin_event_of(
        &self,
        operator: &str,
        action: &str,
        agent: Option<&str>,
    ) -> AuditEvent {
        let mut event = AuditEvent::begin(EventKind::Admin, "rest", None);
        event.operator = Some(operator.to_owned());
        event.agent = agent.map(str::to_owned);
        event.action = Some(action.to_owned());
        event.outcome = Outcome::Ok;
        event.bundle_hash = self.shared.snapshot().bundle.hash().to_owned();
        event
    }

    /// Commit an admin event; returns its id.
    pub(crate) async fn record_admin_event(&self, event: AuditEvent) -> Result<String, AdminError> {
        self.shared
            .store
            .append(&event)
            .await
            .map_err(AdminError::Audit)?;
        Ok(event.id)
    }
}

/// An authentication failure and the event that recorded it.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    pub error: AuthError,
    pub event_id: Option<String>,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.event_id {
            Some(id) => write!(f, "{} [event {id}]", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorAuthError {
    #[error(transparent)]
    Auth(AuthError),
    #[error("this needs the {need:?} role; the token has {have:?}")]
    Forbidden {
        have: OperatorRole,
        need: OperatorRole,
    },
}

/// A status request for `id`, as the waiting call makes it.
fn status_request(id: &str, channel: Channel, correlation: String) -> CallRequest {
    CallRequest {
        channel,
        tool: approvals::STATUS_TOOL.to_owned(),
        arguments: Some(serde_json::json!({ "approval_id": id })),
        user: None,
        session: None,
        mcp_session: None,
        correlation_id: Some(correlation),
    }
}

/// The built-in tool agents poll an approval with.
fn approval_status_tool() -> ToolInfo {
    ToolInfo {
        name: ToolName::new("warden", "approval_status").expect("a valid built-in tool name"),
        exposed_name: approvals::STATUS_TOOL.to_owned(),
        description: Some(
            "The status of a call held for human approval. Once approved, calling this runs the held call and returns its result."
                .into(),
        ),
        input_schema: serde_json::json!({
            "type": "object",
            "properties": { "approval_id": { "type": "string", "description": "the id from the pending answer" } },
            "required": ["approval_id"],
        }),
        output_schema: None,
        risk: RiskTier::Read,
        reversible: true,
        annotations: None,
    }
}

/// Fill in the end of `call`'s event: outcome, reason, the gate's deciding rules, the time.
fn finish_event(call: &mut Call, refusal: Option<&Refusal>) {
    let outcome = match refusal {
        Some(r) => r.kind.outcome(),
        None if call.upstream_error => Outcome::ToolError,
        None => Outcome::Ok,
    };
    let event = &mut call.event;
    event.outcome = outcome;
    event.reason = refusal.map(|r| r.message.clone());
    // A gate (mode, task scope) that refused after Cedar allowed is a deciding rule too.
    for id in refusal.iter().flat_map(|r| r.policies.iter()) {
        if !event.policies.contains(id) {
            event.policies.push(id.clone());
        }
    }
    if refusal.is_some_and(|r| r.kind == RefusalKind::Denied) && event.verdict == Verdict::None {
        event.verdict = Verdict::Deny;
    }
    event.finished_at = Utc::now();
}

/// The count of an attempted call in its session: committed with the call's event, so a later
/// call's policy never misses what this one let the agent see.
fn session_call(shared: &Shared, call: &Call) -> Option<SessionCall> {
    let session = call.session_key.clone()?;
    let update = crate::session::update_of(shared, call)?;
    Some(SessionCall {
        agent: call.principal.agent.clone(),
        session,
        update,
    })
}
