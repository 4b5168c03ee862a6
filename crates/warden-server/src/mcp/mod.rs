//! The MCP edge: `POST /mcp`, MCP Streamable HTTP (2025-11-25 and 2026-07-28) through `rmcp`.
//!
//! Authentication and body checks run first, as axum middleware ([`guard`]), so a request that
//! cannot be attributed or parsed is answered (and recorded) before MCP sees it. A plain
//! `tools/call` the guard then answers itself (module `direct`); rmcp serves everything else, and
//! its handler reads the caller's [`Principal`] from the HTTP request parts rmcp hands it.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData as McpError;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ResultType,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use warden_core::{AuditEvent, EventKind, Outcome, ToolInfo};
use warden_gateway::{
    CallRequest, CallResponse, Channel, FirstAnswer, Gateway, HeldCall, ListRequest, Principal,
};

use crate::AppState;

mod direct;

/// The rmcp service for `/mcp`: stateless, so any replica can answer any request.
pub fn service(state: &AppState) -> StreamableHttpService<WardenMcp, NeverSessionManager> {
    let gateway = state.gateway.clone();
    let mut hosts: Vec<String> = direct::DEFAULT_HOSTS.map(str::to_owned).to_vec();
    hosts.extend(state.gateway.config().server.allowed_hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(state.gateway.config().server.max_body_bytes);
    StreamableHttpService::new(
        move || {
            Ok(WardenMcp {
                gateway: gateway.clone(),
            })
        },
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

#[derive(Clone)]
pub struct WardenMcp {
    gateway: Arc<Gateway>,
}

impl ServerHandler for WardenMcp {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("warden", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Warden governs these tools: every call is authorized by policy and recorded. \
             A refused call returns a tool error naming the reason, the deciding policies and the audit event."
                .into(),
        );
        info
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = principal(&context)?;
        let user = request
            .as_ref()
            .and_then(|r| r.meta.as_ref())
            .and_then(|m| m.get("user"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| meta_str(&context, "user"));
        let tools = self.gateway.list_tools(&principal, &ListRequest { user });
        let listed: Vec<Value> = tools.iter().map(tool_json).collect();
        let tools: Vec<Tool> = serde_json::from_value(Value::Array(listed)).map_err(|e| {
            McpError::internal_error(format!("cannot build the tool list: {e}"), None)
        })?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let principal = principal(&context)?;
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let meta = request.meta.as_ref();
        let meta_field = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| meta_str(&context, k))
        };
        let call = call_request(
            parts.map(|p| &p.headers),
            request.name.to_string(),
            request.arguments,
            meta_field("user"),
            meta_field("session"),
        );
        let progress = progress_reporter(&context);
        let response = self
            .gateway
            .call_tool_with_progress(principal, call, progress)
            .await;
        crate::metrics::record_call(&response);
        crate::metrics::record_mcp_call(crate::metrics::McpPath::Rmcp);
        Ok(CallToolResponse::from(to_mcp_result(response)))
    }
}

/// The gateway's request for a `tools/call` of `tool`, from the MCP request and its HTTP headers.
fn call_request(
    headers: Option<&HeaderMap>,
    tool: String,
    arguments: Option<serde_json::Map<String, Value>>,
    user: Option<String>,
    session: Option<String>,
) -> CallRequest {
    CallRequest {
        channel: Channel::Mcp,
        tool,
        arguments: arguments.map(Value::Object),
        user,
        session,
        mcp_session: headers.and_then(|h| header_str(h, "mcp-session-id")),
        correlation_id: headers.and_then(crate::correlation_id),
    }
}

/// Answer a plain `tools/call` without rmcp (see [`direct`]): in a JSON body, or, for a call
/// held for approval whose agent asked for progress, on an event stream that carries the
/// progress notifications and then the answer.
async fn call_directly(
    state: &AppState,
    principal: Principal,
    headers: &HeaderMap,
    call: direct::DirectCall,
) -> Response {
    let direct::DirectCall {
        id,
        name,
        arguments,
        user,
        session,
        progress_token,
        revision,
    } = call;
    let request = call_request(Some(headers), name, arguments, user, session);
    crate::metrics::record_mcp_call(crate::metrics::McpPath::Edge);
    let gateway = &state.gateway;
    let response = match (gateway.start_call(principal, request).await, progress_token) {
        (FirstAnswer::Final(response), _) => response,
        (FirstAnswer::Held(held), None) => gateway.finish_held(held, None).await,
        (FirstAnswer::Held(held), Some(token)) => {
            return progress_stream(gateway.clone(), held, id, revision, token);
        }
    };
    crate::metrics::record_call(&response);
    direct::response(id, revision, to_mcp_result(response))
}

/// An event stream that carries a held call's progress notifications, then its answer.
fn progress_stream(
    gateway: Arc<Gateway>,
    held: HeldCall,
    id: Value,
    revision: direct::Revision,
    token: Value,
) -> Response {
    use axum::response::sse::{Event, Sse};
    let (events, received) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let progress: warden_gateway::Progress = Arc::new({
        let events = events.clone();
        move |update: warden_gateway::ProgressUpdate| {
            // A closed stream (the agent went away) only ends the reports.
            let _ = events.send(direct::progress_message(&token, &update));
        }
    });
    tokio::spawn(async move {
        let response = gateway.finish_held(held, Some(progress)).await;
        crate::metrics::record_call(&response);
        let _ = events.send(direct::response_message(
            id,
            revision,
            to_mcp_result(response),
        ));
    });
    let stream = futures::stream::unfold(received, |mut received| async move {
        let message = received.recv().await?;
        let event = Event::default().data(message.to_string());
        Some((Ok::<_, std::convert::Infallible>(event), received))
    });
    Sse::new(stream).into_response()
}

/// When the client asked for progress (`_meta.progressToken`), report a waiting call's progress
/// as `notifications/progress` on the same request's stream.
fn progress_reporter(context: &RequestContext<RoleServer>) -> Option<warden_gateway::Progress> {
    let token = context.meta.get_progress_token()?;
    let peer = context.peer.clone();
    Some(std::sync::Arc::new(
        move |update: warden_gateway::ProgressUpdate| {
            let param = ProgressNotificationParam::new(token.clone(), update.elapsed.as_secs_f64())
                .with_total(update.wait.as_secs_f64())
                .with_message(update.message);
            let peer = peer.clone();
            tokio::spawn(async move {
                if let Err(e) = peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "could not send a progress notification");
                }
            });
        },
    ))
}

/// A gateway answer as an MCP tool result: the upstream's result, or a tool error whose text
/// names the reason, the deciding policies and the audit event.
fn to_mcp_result(response: CallResponse) -> CallToolResult {
    let warden = json!({
        "event_id": response.event_id,
        "outcome": response.outcome.as_str(),
        "policies": response.policies,
        "approval_id": response.approval_id,
        "sandbox": response.sandbox,
    });
    if let Some(result) = response.result.clone()
        && let Ok(mut r) = serde_json::from_value::<CallToolResult>(result)
    {
        // An upstream on an older revision sends no `resultType`; 2026-07-28 clients need it.
        r.result_type.get_or_insert(ResultType::COMPLETE);
        let meta = r.meta.get_or_insert_with(Default::default);
        // Keep what inspection put there (warnings, quarantine) beside the decision.
        let merged = match (meta.get("warden").cloned(), warden) {
            (Some(Value::Object(mut from_inspect)), Value::Object(decision)) => {
                from_inspect.extend(decision);
                Value::Object(from_inspect)
            }
            (_, decision) => decision,
        };
        meta.insert("warden".into(), merged);
        return r;
    }
    let mut r = CallToolResult::error(vec![ContentBlock::text(response.explanation())]);
    r.meta
        .get_or_insert_with(Default::default)
        .insert("warden".into(), warden);
    r
}

fn tool_json(tool: &ToolInfo) -> Value {
    let mut t = json!({
        "name": tool.exposed_name,
        "inputSchema": tool.input_schema,
    });
    if let Some(d) = &tool.description {
        t["description"] = json!(d);
    }
    if let Some(o) = &tool.output_schema {
        t["outputSchema"] = o.clone();
    }
    if let Some(a) = &tool.annotations {
        t["annotations"] = a.clone();
    }
    t["_meta"] = json!({ "warden": { "tool": tool.name.as_str(), "risk": tool.risk, "reversible": tool.reversible } });
    t
}

fn principal(context: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| {
            McpError::internal_error("request reached MCP without an authenticated agent", None)
        })
}

fn meta_str(context: &RequestContext<RoleServer>, key: &str) -> Option<String> {
    context
        .meta
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Runs before MCP: authenticate the agent, read the body within the limit, and refuse
/// malformed JSON-RPC with a JSON-RPC error. Every refusal of an identified agent is recorded.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let bearer = crate::bearer(request.headers());
    let principal = match state
        .gateway
        .authenticate(bearer.as_deref(), Channel::Mcp)
        .await
    {
        Ok(p) => p,
        Err(failure) => {
            crate::metrics::record_auth_failure();
            return jsonrpc_error(StatusCode::UNAUTHORIZED, -32001, &failure.to_string(), None);
        }
    };
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(principal.clone());
    if parts.method != axum::http::Method::POST {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let limit = state.gateway.config().server.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let reason = format!("request body is over the {limit} byte limit");
            let id = record_rejection(&state, &principal, &reason).await;
            return jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, -32600, &reason, id);
        }
    };
    let (envelope, mut message) = match check_jsonrpc(&bytes) {
        Ok(checked) => checked,
        Err((code, reason)) => {
            let id = record_rejection(&state, &principal, &reason).await;
            return jsonrpc_error(StatusCode::BAD_REQUEST, code, &reason, id);
        }
    };
    let allowed_hosts = &state.gateway.config().server.allowed_hosts;
    if let Some(call) = direct::direct_call(&parts, &mut message, allowed_hosts) {
        return call_directly(&state, principal, &parts.headers, call).await;
    }
    drop(message);
    let opens_session = envelope.initialize && !parts.headers.contains_key(MCP_SESSION_ID);
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if opens_session && response.status().is_success() {
        response
            .headers_mut()
            .insert(MCP_SESSION_ID, new_mcp_session_id());
    }
    response
}

const MCP_SESSION_ID: header::HeaderName = header::HeaderName::from_static("mcp-session-id");

/// A fresh MCP session id: 128 random bits, base64url. Warden keeps no table of them: the
/// gateway keys a session by agent and id, so the id only groups one agent's calls, and any
/// replica can serve any of them.
fn new_mcp_session_id() -> header::HeaderValue {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let id = format!(
        "ms_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    header::HeaderValue::from_str(&id).expect("base64url text is a valid header value")
}

/// What the guard needs to know about a well-formed body.
#[derive(Debug, PartialEq)]
struct Envelope {
    /// A single `initialize` request: the 2025-11-25 handshake, answered with a new MCP session.
    initialize: bool,
}

/// A JSON-RPC 2.0 message or batch (with what the guard needs to know of it), or a reason it
/// is not one.
fn check_jsonrpc(bytes: &Bytes) -> Result<(Envelope, Value), (i64, String)> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| (-32700, format!("parse error: the body is not JSON ({e})")))?;
    let messages = match &value {
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        Value::Array(_) => return Err((-32600, "invalid request: empty batch".into())),
        single => vec![single],
    };
    for m in messages {
        let Some(obj) = m.as_object() else {
            return Err((
                -32600,
                "invalid request: a JSON-RPC message must be an object".into(),
            ));
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err((-32600, "invalid request: `jsonrpc` must be \"2.0\"".into()));
        }
        let is_call = obj.get("method").is_some_and(Value::is_string);
        let is_reply = obj.contains_key("result") || obj.contains_key("error");
        if !is_call && !is_reply {
            return Err((
                -32600,
                "invalid request: no `method` (or `result`/`error`)".into(),
            ));
        }
        if obj
            .get("params")
            .is_some_and(|p| !(p.is_object() || p.is_array()))
        {
            return Err((
                -32602,
                "invalid params: `params` must be an object or array".into(),
            ));
        }
    }
    let initialize = value.get("method").and_then(Value::as_str) == Some("initialize");
    Ok((Envelope { initialize }, value))
}

async fn record_rejection(state: &AppState, principal: &Principal, reason: &str) -> Option<String> {
    let mut event = AuditEvent::begin(EventKind::ToolCall, "mcp", None);
    event.agent = Some(principal.agent.clone());
    event.task = principal.task.as_ref().map(|t| t.task_id.clone());
    event.outcome = Outcome::Rejected;
    event.reason = Some(reason.to_owned());
    event.bundle_hash = state.gateway.shared().snapshot().bundle.hash().to_owned();
    event.finished_at = chrono::Utc::now();
    match state.gateway.shared().store.append(&event).await {
        Ok(_) => Some(event.id),
        Err(e) => {
            tracing::error!(error = %e, "could not record a rejected request");
            None
        }
    }
}

fn jsonrpc_error(
    status: StatusCode,
    code: i64,
    message: &str,
    event_id: Option<String>,
) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message, "data": { "event_id": event_id } },
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_jsonrpc_passes() {
        let ok =
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#);
        assert_eq!(
            check_jsonrpc(&ok).map(|c| c.0),
            Ok(Envelope { initialize: false })
        );
    }

    #[test]
    fn only_a_single_initialize_request_opens_a_session() {
        let init =
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
        assert_eq!(
            check_jsonrpc(&init).map(|c| c.0),
            Ok(Envelope { initialize: true })
        );
        let batch =
            Bytes::from_static(br#"[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}]"#);
        assert_eq!(
            check_jsonrpc(&batch).map(|c| c.0),
            Ok(Envelope { initialize: false })
        );
    }

    #[test]
    fn mcp_session_ids_are_fresh_and_visible_ascii() {
        let a = new_mcp_session_id();
        let b = new_mcp_session_id();
        assert_ne!(a, b);
        let a = a.to_str().expect("ascii");
        assert_eq!(a.len(), 3 + 22, "{a}");
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)), "{a}");
    }

    #[test]
    fn malformed_jsonrpc_is_named() {
        for (body, code) in [
            (&b"{not json"[..], -32700),
            (br#"[]"#, -32600),
            (br#"{"id":1,"method":"x"}"#, -32600),
            (br#"{"jsonrpc":"2.0","id":1}"#, -32600),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
                -32602,
            ),
            (br#"42"#, -32600),
        ] {
            let err = check_jsonrpc(&Bytes::copy_from_slice(body)).unwrap_err();
            assert_eq!(err.0, code, "{}", String::from_utf8_lossy(body));
        }
    }
}
