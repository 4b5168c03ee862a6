//! authorize: the task grant's scope, then Cedar — as the agent, and again as its user.
//!
//! The arguments are classified first (field rules and detectors, see `protection`), so
//! policies can test `context.classes` and `context.findings`; `minimize` later holds back
//! what the destination vendor may not receive.

use async_trait::async_trait;
use chrono::Utc;
use warden_policy::{AuthzRequest, TaskScope};

use super::Stage;
use crate::call::{Call, Flow, Obligation, Refusal, StageError};
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
            && !grant.tools.iter().any(|t| t == tool.name.as_str())
        {
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
        let snapshot = shared.snapshot();
        let bundle = &snapshot.bundle;
        // A session no policy can read need not be loaded (nor its lock waited for): the call
        // is still counted in it by record.
        if bundle.reads_session(&tool.name)
            || shared
                .shadow_bundle()
                .is_some_and(|b| b.reads_session(&tool.name))
        {
            crate::session::load(shared, call).await?;
        }
        let data = shared.protection.classify(&tool.name, &call.input)?;
        call.event.findings.extend(data.findings.iter().cloned());
        let input = serde_json::Value::Object(std::mem::take(&mut call.input));
        let request = AuthzRequest {
            agent: &call.principal.agent,
            user: call.user.as_deref(),
            task: task.as_ref(),
            tool: &tool.name,
            input: &input,
            mode: call.mode,
            session: call.session.as_ref(),
            now: Utc::now(),
            classes: &data.classes,
            findings: &data.kinds,
        };
        let decision = match &call.approved_by {
            Some(approvers) => bundle.authorize_approved(&request, approvers),
            None => bundle.authorize(&request),
        };
        // Denied only by `@approval` forbids, and allowed once approved: an obligation, not a deny.
        let obligation = if decision.allowed || call.approved_by.is_some() {
            None
        } else {
            approval_obligation(bundle, &decision.policies)
                .filter(|_| bundle.authorize_approved(&request, &[]).allowed)
        };
        if let Some(shadow) = shared.shadow_bundle() {
            let active =
                crate::shadow::verdict(bundle, &request, &decision, call.approved_by.is_some());
            let candidate = crate::shadow::decide(shadow, &request, call.approved_by.as_deref());
            call.shadow_diff = crate::shadow::difference(
                &call.event.id,
                &request,
                &active,
                bundle.hash(),
                &candidate,
                shadow.hash(),
            );
        }
        if let serde_json::Value::Object(map) = input {
            call.input = map;
        }
        call.data = Some(data);
        call.event.policies = decision.policies.clone();
        call.event.approvers = call.approved_by.clone().unwrap_or_default();
        call.event.verdict = if decision.allowed {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        if decision.allowed {
            Ok(Flow::Continue)
        } else if let Some(obligation) = obligation {
            // The gate parks it, after the mode has had its say.
            call.obligation = Some(obligation);
            Ok(Flow::Continue)
        } else {
            Ok(Flow::Answer(Refusal::denied(
                decision.reason,
                decision.policies,
            )))
        }
    }
}

/// The approval the deciding policies ask for, when every one of them is an `@approval` forbid:
/// a plain forbid among them is a plain deny that no approval lifts.
pub fn approval_obligation(
    bundle: &warden_policy::PolicyBundle,
    policies: &[String],
) -> Option<Obligation> {
    if policies.is_empty() {
        return None;
    }
    let mut role = None;
    let mut count = 1u32;
    for id in policies {
        let wanted = bundle.annotation(id, "approval")?;
        if !wanted.is_empty() {
            role.get_or_insert_with(|| wanted.to_owned());
        }
        let n = bundle
            .annotation(id, "approvers")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(1);
        count = count.max(n);
    }
    Some(Obligation {
        role,
        count,
        policies: policies.to_vec(),
    })
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
