//! inspect: check what came back before the agent sees it. For now: the result must be a
//! well-formed `CallToolResult` within the size limit, and its keyed digest is recorded.
//! Classification, redaction and injection scanning plug in here.

use async_trait::async_trait;
use serde_json::Value;

use super::Stage;
use crate::call::{Call, Flow, Refusal, StageError};
use crate::gateway::Shared;

pub struct Inspect;

#[async_trait]
impl Stage for Inspect {
    fn name(&self) -> &'static str {
        "inspect"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let Some(result) = call.result.as_ref() else {
            return Err(StageError::Internal("inspect ran without a result"));
        };
        call.event.result_digest = Some(shared.digester.digest(result));
        if !matches!(result.get("content"), Some(Value::Array(_)) | None) {
            call.result = None;
            return Ok(Flow::Answer(Refusal::failed(
                "the upstream returned a malformed tool result",
            )));
        }
        let size = serde_json::to_vec(result)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > shared.config.server.max_body_bytes {
            call.result = None;
            return Ok(Flow::Answer(Refusal::failed(format!(
                "the upstream's result is {size} bytes, over the {} byte limit",
                shared.config.server.max_body_bytes
            ))));
        }
        Ok(Flow::Continue)
    }
}
