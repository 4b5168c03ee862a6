//! gate: the agent's mode for this tool decides whether an allowed call runs for real.

use async_trait::async_trait;
use warden_core::{Mode, RiskTier};

use super::Stage;
use crate::call::{Call, Flow, Obligation, Refusal, StageError};
use crate::gateway::Shared;
use crate::{approvals, limits};
use warden_core::store::ApprovalKind;

/// The id recorded when a mode, not a Cedar policy, stopped a call.
pub const MODE_POLICY: &str = "warden:mode";

pub struct Gate;

#[async_trait]
impl Stage for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let tool = call.tool_info()?.clone();
        let agent = call.agent_config()?.clone();
        let mode = shared.effective_mode(&agent, &tool.name);
        call.mode = mode;
        call.event.mode = Some(mode);
        let upstream = tool.name.upstream().to_owned();
        let is_read = tool.risk == RiskTier::Read;
        match mode {
            Mode::Execute => call.target_upstream = Some(upstream),
            Mode::ReadOnly if is_read => call.target_upstream = Some(upstream),
            Mode::Suggest if is_read => call.target_upstream = Some(upstream),
            Mode::ReadOnly => {
                return Ok(Flow::Answer(Refusal::denied(
                    format!(
                        "agent `{}` is in read-only mode and `{}` is a {}-risk tool",
                        agent.id, tool.name, tool.risk
                    ),
                    vec![MODE_POLICY.into()],
                )));
            }
            // An operator executing a proposal has approved this exact call.
            Mode::Suggest if call.approved_by.is_some() => call.target_upstream = Some(upstream),
            Mode::Suggest => {
                let obligation = Obligation {
                    role: None,
                    count: 1,
                    policies: vec![MODE_POLICY.into()],
                };
                let (refusal, id) =
                    approvals::park(shared, call, &obligation, ApprovalKind::Proposal).await?;
                call.approval_id = Some(id);
                return Ok(Flow::Answer(refusal));
            }
            Mode::Sandbox => match shared
                .config
                .upstream(&upstream)
                .and_then(|u| u.sandbox.clone())
            {
                Some(twin) => call.target_upstream = Some(twin),
                None => {
                    return Ok(Flow::Answer(Refusal::denied(
                        format!(
                            "agent `{}` is in sandbox mode and upstream `{upstream}` has no sandbox twin",
                            agent.id
                        ),
                        vec![MODE_POLICY.into()],
                    )));
                }
            },
        }
        if let Some(configured) = shared.config.tool(&tool.name)
            && call.obligation.is_none()
        {
            let caller = limits::Caller {
                agent: &agent.id,
                user: call.user.as_deref(),
            };
            if let Some(refusal) = limits::check(
                shared.store.as_ref(),
                configured,
                &caller,
                &call.input,
                chrono::Utc::now(),
            )
            .await?
            {
                return Ok(Flow::Answer(refusal));
            }
        }
        if let Some(obligation) = call.obligation.clone() {
            let (refusal, approval_id) =
                approvals::park(shared, call, &obligation, ApprovalKind::Approval).await?;
            call.approval_id = Some(approval_id);
            return Ok(Flow::Answer(refusal));
        }
        Ok(Flow::Continue)
    }
}
