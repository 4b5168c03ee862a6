//! execute: the upstream call, with Warden's own credentials for the upstream.

use async_trait::async_trait;

use super::Stage;
use crate::call::{Call, Flow, Refusal, StageError};
use crate::gateway::Shared;

pub struct Execute;

#[async_trait]
impl Stage for Execute {
    fn name(&self) -> &'static str {
        "execute"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        if call.obligation.is_some() {
            // The gate parks every call with an unmet obligation; reaching here is a bug.
            return Err(StageError::Internal(
                "an approval obligation reached execute",
            ));
        }
        let tool = call.tool_info()?.clone();
        let upstream = call
            .target_upstream
            .clone()
            .ok_or(StageError::Internal("no target upstream"))?;
        let timeout = shared.config.upstream(&upstream).and_then(|u| u.timeout);
        let arguments = std::mem::take(&mut call.input);
        call.attempted = true;
        match shared
            .upstreams
            .call(&upstream, tool.name.tool(), arguments, timeout)
            .await
        {
            Ok(outcome) => {
                call.event.upstream_latency_us =
                    Some(u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX));
                call.upstream_error = outcome.is_error();
                call.result = Some(outcome.result);
                Ok(Flow::Continue)
            }
            Err(e) => Ok(Flow::Answer(Refusal::failed(format!(
                "upstream `{upstream}`: {e}"
            )))),
        }
    }
}
