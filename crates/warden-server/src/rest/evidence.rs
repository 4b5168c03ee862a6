//! The evidence vault's operator API: reading evidence (audited), legal holds, retention runs,
//! and `explain` behind `GET /v1/events/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::store::OperatorRole;
use warden_gateway::evidence::HoldTarget;

use super::{ApiError, operator, operator_label};
use crate::AppState;
use crate::explain::ExplainError;

impl From<ExplainError> for ApiError {
    fn from(e: ExplainError) -> Self {
        match &e {
            ExplainError::UnknownEvent(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            ExplainError::Store(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            ),
            ExplainError::ReadNotRecorded(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                e.to_string(),
            ),
        }
    }
}

/// `GET /v1/events/{id}`: the event and its explanation, for any operator; how much of the
/// evidence shows depends on the operator's role (see [`crate::explain`]).
pub async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reader = operator(&state, &headers, OperatorRole::Viewer).await?;
    let store = &state.gateway.shared().store;
    let event = store
        .event(&id)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            )
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no event `{id}`"),
            )
        })?;
    let explanation = crate::explain::explain(&state.gateway, &reader, &id).await?;
    Ok(Json(json!({ "event": event, "explanation": explanation })))
}

/// `GET /v1/evidence/{event_id}`: the decrypted evidence of an event (auditor or admin). The
/// read is an audited admin event; its id is in the answer.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let reader = operator(&state, &headers, OperatorRole::Auditor).await?;
    let (audit_event, records) = state.gateway.show_evidence(&reader, &id).await?;
    Ok(Json(json!({
        "event_id": id,
        "audit_event_id": audit_event,
        "records": records,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    agent: Option<String>,
    event: Option<String>,
    reason: String,
}

/// `POST /v1/evidence/holds {"agent" | "event", "reason"}`: a legal hold (auditor or admin).
pub async fn create_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<HoldBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let op = operator(&state, &headers, OperatorRole::Auditor).await?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let target = match (body.agent, body.event) {
        (Some(a), None) => HoldTarget::Agent(a),
        (None, Some(e)) => HoldTarget::Event(e),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "a legal hold names exactly one of `agent` or `event`",
            ));
        }
    };
    let hold = state
        .gateway
        .hold_evidence(&operator_label(&op), target, &body.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "hold": hold }))).into_response())
}

/// `GET /v1/evidence/holds`: every legal hold (auditor or admin).
pub async fn list_holds(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    operator(&state, &headers, OperatorRole::Auditor).await?;
    let holds = state.gateway.legal_holds().await?;
    Ok(Json(json!({ "holds": holds })))
}

/// `POST /v1/evidence/holds/{id}/release`: lift a legal hold (auditor or admin).
pub async fn release_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let op = operator(&state, &headers, OperatorRole::Auditor).await?;
    if !state
        .gateway
        .release_hold(&operator_label(&op), &id)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no legal hold `{id}`"),
        ));
    }
    Ok(Json(json!({ "released": id })))
}

/// `POST /v1/retention/run`: shred expired evidence outside legal holds now (admin).
pub async fn run_retention(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let op = operator(&state, &headers, OperatorRole::Admin).await?;
    let report = state
        .gateway
        .run_retention(Some(&operator_label(&op)))
        .await?;
    Ok(Json(json!(report)))
}
