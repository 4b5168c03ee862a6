//! authorize: the task grant's scope, then Cedar — as the agent, and again as its user.

use async_trait::async_trait;
use chrono::Utc;
use warden_policy::{AuthzRequest, TaskScope};

use super::Stage;
use crate::call::{Call, Flow, Refusal, StageError};
use crate::gateway::Shared;
use warden_core::Verdict;

/// The id recorded when a task grant, not a Cedar policy, refused a call.
pub const TASK_SCOPE_POLICY: &str = "warden:task-scope";

pub struct Authorize;

#[async_trait]
impl Stage for Authorize {
    fn name(&self) -> &'static str {
        "authorize"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let tool = call.tool_info()?.clone();
        let task = call.principal.task.as_ref().map(|t| task_scope(shared, t));
        if let Some(grant) = &call.principal.task
            && !grant.tools.iter().any(|t| t == tool.name.as_str()) {
                call.event.verdict = Verdict::Deny;
                call.event.policies = vec![TASK_SCOPE_POLICY.into()];
                return Ok(Flow::Answer(Refusal::denied(
                    format!(
                        "task `{}` does not include tool `{}`",
                        grant.task_id, tool.name
                    ),
                    vec![TASK_SCOPE_POLICY.into()],
                )));
            }
        let input = serde_json::Value::Object(std::mem::take(&mut call.input));
        let snapshot = shared.snapshot();
        let decision = snapshot.bundle.authorize(&AuthzRequest {
            agent: &call.principal.agent,
            user: call.user.as_deref(),
            task: task.as_ref(),
            tool: &tool.name,
            input: &input,
            mode: call.mode,
            session: call.request.session.as_deref(),
            now: Utc::now(),
        });
        if let serde_json::Value::Object(map) = input {
            call.input = map;
        }
        call.event.policies = decision.policies.clone();
        if decision.allowed {
            call.event.verdict = Verdict::Allow;
            Ok(Flow::Continue)
        } else {
            call.event.verdict = Verdict::Deny;
            Ok(Flow::Answer(Refusal::denied(
                decision.reason,
                decision.policies,
            )))
        }
    }
}

fn task_scope(shared: &Shared, grant: &warden_core::store::TaskGrant) -> TaskScope {
    TaskScope {
        id: grant.task_id.clone(),
        tools: grant.tools.clone(),
        max_clearance: grant
            .max_class
            .as_deref()
            .and_then(|c| shared.config.classes.level(c))
            .map(|l| l.0),
    }
}
