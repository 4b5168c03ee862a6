//! `/v1/tools/pins`: tool pins and the definition changes waiting for an operator.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::store::OperatorRole;

use crate::AppState;
use crate::rest::{ApiError, operator, operator_label};

#[derive(Deserialize, Default)]
pub struct PinsQuery {
    /// One tool (canonical or exposed name).
    tool: Option<String>,
    /// Only tools with a changed definition waiting for approval.
    #[serde(default)]
    changed: bool,
}

/// `GET /v1/tools/pins[?tool=T][&changed=true]`: pins, with the pending change (old and new
/// definitions and their differences) where there is one. Any operator.
pub async fn list_pins(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PinsQuery>,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Viewer).await?;
    let pins = state
        .gateway
        .pin_status(q.tool.as_deref(), q.changed)
        .await?;
    Ok(Json(json!({ "pins": pins })))
}

/// `POST /v1/tools/pins/{tool}/approve`: the pending definition becomes the pin; the tool is
/// listed and callable again. Admin only.
pub async fn approve_pin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tool): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let op = operator(&state, &headers, OperatorRole::Admin).await?;
    let pin = state
        .gateway
        .approve_tool(&tool, &operator_label(&op))
        .await?;
    Ok(Json(json!({
        "tool": format!("{}.{}", pin.upstream, pin.tool),
        "hash": pin.hash,
        "approved_by": pin.approved_by,
        "pinned_at": pin.pinned_at,
    })))
}
