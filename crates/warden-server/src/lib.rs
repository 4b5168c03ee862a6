//! The HTTP edge: MCP Streamable HTTP at `/mcp`, the REST API under `/v1`, health and metrics.
//!
//! This crate wires concrete pieces together (store, upstreams, policies) into a
//! [`warden_gateway::Gateway`] ([`assemble`]) and serves it with axum. It holds no policy or
//! pipeline logic of its own.

pub mod assemble;
pub mod checkpointer;
pub mod datadir;
pub mod explain;
pub mod mcp;
pub mod metrics;
pub mod pin_watch;
pub mod pins;
pub mod rest;
pub mod vault;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use warden_gateway::Gateway;

pub use assemble::{Assembled, StartError, assemble, check};

#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
}

/// Every route Warden serves.
pub fn router(state: AppState) -> Router {
    let limit = state.gateway.config().server.max_body_bytes;
    let mcp = Router::new()
        .nest_service("/mcp", mcp::service(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mcp::guard,
        ));
    let api = Router::new()
        .route("/v1/tools", get(rest::list_tools))
        .route("/v1/tools/call", post(rest::call_tool))
        .route("/v1/tools/pins", get(crate::pins::list_pins))
        .route(
            "/v1/tools/pins/{tool}/approve",
            post(crate::pins::approve_pin),
        )
        .route("/v1/tasks", post(rest::create_task))
        .route("/v1/agents", get(rest::list_agents))
        .route("/v1/agents/{id}/{action}", post(rest::agent_key_action))
        .route("/v1/upstreams/{name}/{action}", post(rest::upstream_action))
        .route("/v1/freeze", post(rest::freeze))
        .route("/v1/unfreeze", post(rest::unfreeze))
        .route("/v1/switches", get(rest::list_switches))
        .route("/v1/approvals", get(rest::list_approvals))
        .route("/v1/approvals/{id}/{action}", post(rest::approval_action))
        .route("/v1/operators", post(rest::create_operator))
        .route("/v1/events", get(rest::list_events))
        .route("/v1/events/{id}", get(rest::evidence::get_event))
        .route("/v1/events/{id}/undo", post(rest::undo_event))
        .route(
            "/v1/evidence/holds",
            get(rest::evidence::list_holds).post(rest::evidence::create_hold),
        )
        .route(
            "/v1/evidence/holds/{id}/release",
            post(rest::evidence::release_hold),
        )
        .route("/v1/evidence/{id}", get(rest::evidence::show))
        .route("/v1/retention/run", post(rest::evidence::run_retention))
        .route("/v1/audit/checkpoint", get(rest::audit_checkpoint))
        .route("/v1/audit/proof/{id}", get(rest::audit_proof))
        .route("/v1/audit/consistency", get(rest::audit_consistency))
        .route("/v1/policy/shadow-report", get(rest::shadow_report))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics::render(),
                )
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state);
    mcp.merge(api)
}

/// Ready when every upstream is connected.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    let statuses = state.gateway.shared().upstreams.status();
    let ready = statuses
        .iter()
        .all(|s| s.state == warden_upstream::LinkState::Ready);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(json!({ "ready": ready, "upstreams": statuses })),
    )
}

/// Serve until `shutdown` is cancelled. Sockets get TCP_NODELAY: without it, small SSE and
/// JSON replies were seen to stall for ~40 ms behind Nagle's algorithm.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(
        listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
        }),
        app,
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The trace id of a W3C `traceparent` header, used as the correlation id.
pub fn correlation_id(headers: &HeaderMap) -> Option<String> {
    let tp = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = tp.split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    (trace_id.len() == 32
        && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
        && trace_id != "0".repeat(32))
    .then(|| trace_id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_gives_its_trace_id() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            correlation_id(&h).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        h.insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(correlation_id(&h), None);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "bearer wdn_ak_x".parse().unwrap());
        assert_eq!(bearer(&h).as_deref(), Some("wdn_ak_x"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
