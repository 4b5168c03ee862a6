//! The REST API under `/v1`: the same pipeline as MCP for agents, plus the operator API.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::Outcome;
use warden_core::store::{OperatorRole, OperatorToken};
use warden_gateway::gateway::{AdminError, OperatorAuthError, SwitchTarget};
use warden_gateway::{CallRequest, Channel, ListRequest, Principal, TaskRequest};

use crate::AppState;

pub mod evidence;

/// An error answer: `{"error": {"code", "message", "event_id"?}}`.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    event_id: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            event_id: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "event_id": self.event_id } });
        (self.status, Json(body)).into_response()
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let (status, code) = match &e {
            AdminError::UnknownAgent(_) => (StatusCode::NOT_FOUND, "unknown_agent"),
            AdminError::HasKey(_) => (StatusCode::CONFLICT, "conflict"),
            AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            AdminError::Audit(_) | AdminError::Store(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
        };
        Self::new(status, code, e.to_string())
    }
}

async fn agent(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let bearer = crate::bearer(headers);
    state
        .gateway
        .authenticate(bearer.as_deref(), Channel::Rest)
        .await
        .map_err(|f| {
            crate::metrics::record_auth_failure();
            ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthenticated",
                message: f.error.to_string(),
                event_id: f.event_id,
            }
        })
}

pub(crate) async fn operator(
    state: &AppState,
    headers: &HeaderMap,
    role: OperatorRole,
) -> Result<OperatorToken, ApiError> {
    let bearer = crate::bearer(headers);
    state
        .gateway
        .authenticate_operator(bearer.as_deref(), role)
        .await
        .map_err(|e| match e {
            OperatorAuthError::Auth(a) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", a.to_string())
            }
            forbidden @ OperatorAuthError::Forbidden { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", forbidden.to_string())
            }
        })
}

#[derive(Deserialize, Default)]
pub struct ToolsQuery {
    user: Option<String>,
}

pub async fn list_tools(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ToolsQuery>,
) -> Result<Json<Value>, ApiError> {
    let principal = agent(&state, &headers).await?;
    let tools: Vec<Value> = state
        .gateway
        .list_tools(&principal, &ListRequest { user: q.user })
        .into_iter()
        .map(|t| {
            json!({
                "name": t.exposed_name, "tool": t.name.as_str(), "description": t.description,
                "inputSchema": t.input_schema, "outputSchema": t.output_schema,
                "risk": t.risk, "reversible": t.reversible,
            })
        })
        .collect();
    Ok(Json(json!({ "tools": tools })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
    user: Option<String>,
    session: Option<String>,
}

pub async fn call_tool(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CallBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = agent(&state, &headers).await?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let request = CallRequest {
        channel: Channel::Rest,
        tool: body.name,
        arguments: body.arguments,
        user: body.user,
        session: body.session,
        mcp_session: None,
        correlation_id: crate::correlation_id(&headers),
    };
    let response = state.gateway.call_tool(principal, request).await;
    crate::metrics::record_call(&response);
    let status = match response.outcome {
        Outcome::Ok | Outcome::ToolError => StatusCode::OK,
        Outcome::Proposed | Outcome::Pending => StatusCode::ACCEPTED,
        Outcome::Denied => StatusCode::FORBIDDEN,
        Outcome::Rejected => StatusCode::BAD_REQUEST,
        Outcome::Failed => StatusCode::BAD_GATEWAY,
    };
    let body = json!({
        "event_id": response.event_id,
        "outcome": response.outcome.as_str(),
        "approval_id": response.approval_id,
        "sandbox": response.sandbox,
        "result": response.result,
        "error": response.refusal.as_ref().map(|r| json!({
            "kind": r.kind, "message": r.message, "policies": r.policies, "explanation": response.explanation(),
        })),
    });
    Ok((status, Json(body)).into_response())
}

pub async fn create_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<TaskRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = agent(&state, &headers).await?;
    let Json(req) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let task = state.gateway.create_task(&principal, req).await?;
    Ok((StatusCode::CREATED, Json(task)).into_response())
}

pub async fn list_agents(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Viewer).await?;
    let keys = state.gateway.agent_keys().await?;
    let agents: Vec<Value> = state
        .gateway
        .config()
        .agents
        .iter()
        .map(|a| {
            let keys: Vec<Value> = keys
                .iter()
                .filter(|k| k.agent == a.id)
                .map(|k| json!({ "key_id": k.key_id, "created_at": k.created_at, "revoked_at": k.revoked_at }))
                .collect();
            json!({
                "id": a.id, "owner": a.owner, "purpose": a.purpose, "roles": a.roles, "mode": a.mode,
                "clearance": a.clearance, "delegation": a.delegation, "keys": keys,
            })
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// The optional body of a pause or freeze: why.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    reason: Option<String>,
}

fn reason_of(body: Option<Json<ReasonBody>>) -> Option<String> {
    body.and_then(|Json(b)| b.reason)
}

pub(crate) fn operator_label(op: &OperatorToken) -> String {
    format!("{} ({})", op.name, op.token_id)
}

async fn switch(
    state: &AppState,
    headers: &HeaderMap,
    target: SwitchTarget,
    paused: bool,
    reason: Option<String>,
) -> Result<Response, ApiError> {
    let op = operator(state, headers, OperatorRole::Admin).await?;
    state
        .gateway
        .set_switch(target, paused, &operator_label(&op), reason)
        .await?;
    let switches = state.gateway.paused().await?;
    Ok(Json(json!({ "paused": switches })).into_response())
}

/// `POST /v1/freeze` and `/v1/unfreeze`: the global kill switch.
pub async fn freeze(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<ReasonBody>>,
) -> Result<Response, ApiError> {
    switch(
        &state,
        &headers,
        SwitchTarget::Global,
        true,
        reason_of(body),
    )
    .await
}

pub async fn unfreeze(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Option<Json<ReasonBody>>,
) -> Result<Response, ApiError> {
    switch(
        &state,
        &headers,
        SwitchTarget::Global,
        false,
        reason_of(body),
    )
    .await
}

/// `POST /v1/upstreams/{name}/pause` and `.../resume`.
pub async fn upstream_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    body: Option<Json<ReasonBody>>,
) -> Result<Response, ApiError> {
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no action `{action}` on upstreams"),
            ));
        }
    };
    switch(
        &state,
        &headers,
        SwitchTarget::Upstream(name),
        paused,
        reason_of(body),
    )
    .await
}

/// `GET /v1/switches`: every kill switch that is on.
pub async fn list_switches(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Viewer).await?;
    Ok(Json(json!({ "paused": state.gateway.paused().await? })))
}

/// `POST /v1/agents/{id}/keys`, `.../rotate`, `.../revoke`, `.../pause`, `.../resume`.
pub async fn agent_key_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ReasonBody>>,
) -> Result<Response, ApiError> {
    if action == "pause" || action == "resume" {
        return switch(
            &state,
            &headers,
            SwitchTarget::Agent(id),
            action == "pause",
            reason_of(body),
        )
        .await;
    }
    let op = operator(&state, &headers, OperatorRole::Admin).await?;
    let who = operator_label(&op);
    match action.as_str() {
        "keys" | "rotate" => {
            let (key, secret) = if action == "keys" {
                state.gateway.create_agent_key(&id, &who).await?
            } else {
                state.gateway.rotate_agent_key(&id, &who).await?
            };
            let body = json!({ "agent": id, "key_id": key.key_id, "key": secret.secret,
                               "note": "this key is shown once; Warden stores only its hash" });
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        "revoke" => {
            let n = state.gateway.revoke_agent_keys(&id, &who).await?;
            Ok(Json(json!({ "agent": id, "revoked": n })).into_response())
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no action `{action}` on agents"),
        )),
    }
}

#[derive(Deserialize)]
pub struct EventsQuery {
    limit: Option<u32>,
}

pub async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Auditor).await?;
    let limit = q.limit.unwrap_or(50).min(1000);
    let events = state
        .gateway
        .shared()
        .store
        .recent(limit)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            )
        })?;
    Ok(Json(json!({ "events": events })))
}

#[derive(Deserialize)]
pub struct ApprovalsQuery {
    status: Option<String>,
}

/// `GET /v1/approvals[?status=pending]`: the queue, newest first.
pub async fn list_approvals(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ApprovalsQuery>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Approver).await?;
    let status = match q.status.as_deref() {
        None | Some("all") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("unknown status `{s}`"),
            )
        })?),
    };
    let approvals = state.gateway.approvals(status).await?;
    Ok(Json(json!({ "approvals": approvals })))
}

/// `POST /v1/approvals/{id}/approve` and `.../deny`, with an optional `{"reason": "..."}`.
pub async fn approval_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ReasonBody>>,
) -> Result<Response, ApiError> {
    let approve = match action.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no action `{action}` on approvals"),
            ));
        }
    };
    let op = operator(&state, &headers, OperatorRole::Approver).await?;
    use warden_gateway::approvals::VoteError;
    match state.gateway.vote(&id, &op, approve, reason_of(body)).await {
        Ok(v) => Ok(Json(json!({
            "approval_id": v.approval.id,
            "outcome": format!("{:?}", v.outcome),
            "execution": v.execution.map(|r| json!({
                "event_id": r.event_id, "outcome": r.outcome.as_str(), "result": r.result,
                "error": r.refusal.map(|f| f.message),
            })),
        }))
        .into_response()),
        Err(e) => {
            let (status, code) = match &e {
                VoteError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                VoteError::NotPending(_) | VoteError::AlreadyVoted(_) => {
                    (StatusCode::CONFLICT, "conflict")
                }
                VoteError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
                _ => (StatusCode::FORBIDDEN, "forbidden"),
            };
            Err(ApiError::new(status, code, e.to_string()))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorBody {
    name: String,
    role: String,
}

/// `POST /v1/operators {"name", "role"}`: a new operator token (shown once). Admin only.
pub async fn create_operator(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<OperatorBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let op = operator(&state, &headers, OperatorRole::Admin).await?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let role: OperatorRole = body
        .role
        .parse()
        .map_err(|e: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid", e))?;
    let (token, secret) = state
        .gateway
        .create_operator_token(&body.name, role, &operator_label(&op))
        .await?;
    let reply = json!({ "name": token.name, "role": token.role, "token_id": token.token_id, "token": secret.secret,
                        "note": "this token is shown once; Warden stores only its hash" });
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

/// The store's Merkle-log view, or 501 if this store keeps none.
fn audit_log(
    store: &std::sync::Arc<dyn warden_core::store::Store>,
) -> Result<&dyn warden_core::store::AuditLogStore, ApiError> {
    store.audit_log().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_supported",
            "this store keeps no tamper-evident log",
        )
    })
}

impl From<crate::checkpointer::ProofError> for ApiError {
    fn from(e: crate::checkpointer::ProofError) -> Self {
        use crate::checkpointer::ProofError as P;
        let (status, code) = match &e {
            P::UnknownEvent(_) | P::UnknownCheckpoint(_) => (StatusCode::NOT_FOUND, "not_found"),
            P::NoCheckpoint | P::NotCovered { .. } => (StatusCode::CONFLICT, "not_covered"),
            P::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid"),
            P::Inconsistent(_) => (StatusCode::INTERNAL_SERVER_ERROR, "inconsistent_log"),
            P::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        };
        if matches!(e, P::Inconsistent(_)) {
            tracing::error!(error = %e, "the stored Merkle tree disagrees with a signed checkpoint");
        }
        Self::new(status, code, e.to_string())
    }
}

/// `GET /v1/audit/checkpoint`: the latest signed checkpoint (auditors).
pub async fn audit_checkpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Auditor).await?;
    let store = state.gateway.shared().store.clone();
    let log = audit_log(&store)?;
    let cp = crate::checkpointer::latest(log).await?;
    Ok(Json(json!({
        "origin": cp.note.lines().next(),
        "size": cp.size,
        "root": cp.root,
        "note": cp.note,
        "created_at": cp.created_at,
    })))
}

/// `GET /v1/audit/proof/{event_id}`: the event's inclusion proof against the latest checkpoint.
pub async fn audit_proof(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Auditor).await?;
    let store = state.gateway.shared().store.clone();
    let log = audit_log(&store)?;
    let proof = crate::checkpointer::prove_event(log, &id).await?;
    Ok(Json(json!(proof)))
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /v1/audit/consistency?from=N&to=M`: the consistency proof between two checkpoints.
pub async fn audit_consistency(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Auditor).await?;
    let Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let store = state.gateway.shared().store.clone();
    let log = audit_log(&store)?;
    let proof = crate::checkpointer::prove_consistency(log, q.from, q.to).await?;
    Ok(Json(json!(proof)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowReportQuery {
    /// RFC 3339; differences recorded at or after it.
    since: Option<String>,
    /// At most this many differences are summarized (default 10 000).
    limit: Option<u32>,
    /// Examples kept per tool and direction (default 3).
    examples: Option<usize>,
}

/// `GET /v1/policy/shadow-report`: how the shadow bundle would have decided differently.
pub async fn shadow_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ShadowReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Viewer).await?;
    let Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("`since` is not an RFC 3339 time: {e}"),
                    )
                })?
                .with_timezone(&chrono::Utc),
        ),
    };
    let report = state
        .gateway
        .shadow_report(
            since,
            q.limit.unwrap_or(10_000).min(100_000),
            q.examples.unwrap_or(3).min(100),
        )
        .await
        .map_err(AdminError::from)?;
    let shadow = state
        .gateway
        .shared()
        .shadow_bundle()
        .map(|b| b.hash().to_owned());
    Ok(Json(json!({
        "shadow_bundle": shadow,
        "active_bundle": state.gateway.shared().snapshot().bundle.hash(),
        "report": report,
    })))
}

/// `POST /v1/events/{id}/undo`: run the event's compensation through the pipeline, as its agent
/// (admin). The answer is the compensating call's, with `undo_of`; a refusal before the
/// pipeline (not undoable, already undone) is an error naming the reason and its audit event.
pub async fn undo_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use warden_gateway::undo::UndoError;
    let op = operator(&state, &headers, OperatorRole::Admin).await?;
    let response = match state
        .gateway
        .undo(&id, &operator_label(&op), Channel::Rest)
        .await
    {
        Ok(r) => r,
        Err(refusal) => {
            let (status, code) = match &refusal.error {
                UndoError::UnknownEvent(_) => (StatusCode::NOT_FOUND, "not_found"),
                UndoError::AlreadyUndone { .. } => (StatusCode::CONFLICT, "already_undone"),
                UndoError::InProgress { .. } => (StatusCode::CONFLICT, "undo_in_progress"),
                UndoError::AwaitingApproval { .. } => (StatusCode::CONFLICT, "pending_approval"),
                UndoError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "not_undoable"),
            };
            return Err(ApiError {
                status,
                code,
                message: refusal.error.to_string(),
                event_id: refusal.event_id,
            });
        }
    };
    crate::metrics::record_call(&response);
    let status = match response.outcome {
        Outcome::Ok | Outcome::ToolError => StatusCode::OK,
        Outcome::Proposed | Outcome::Pending => StatusCode::ACCEPTED,
        Outcome::Denied => StatusCode::FORBIDDEN,
        Outcome::Rejected => StatusCode::BAD_REQUEST,
        Outcome::Failed => StatusCode::BAD_GATEWAY,
    };
    let body = json!({
        "undo_of": id,
        "event_id": response.event_id,
        "outcome": response.outcome.as_str(),
        "approval_id": response.approval_id,
        "sandbox": response.sandbox,
        "result": response.result,
        "error": response.refusal.as_ref().map(|r| json!({
            "kind": r.kind, "message": response.explanation(), "policies": r.policies,
        })),
    });
    Ok((status, Json(body)).into_response())
}
