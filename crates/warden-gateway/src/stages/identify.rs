//! identify: resolve the agent's configuration, the user it acts for, the task grant and the tool.

use async_trait::async_trait;
use serde_json::Value;

use super::Stage;
use crate::call::{Call, Flow, Refusal, StageError};
use crate::gateway::Shared;

pub struct Identify;

#[async_trait]
impl Stage for Identify {
    fn name(&self) -> &'static str {
        "identify"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let Some(agent) = shared.agent(&call.principal.agent) else {
            return Ok(Flow::Answer(Refusal::denied(
                format!(
                    "agent `{}` is no longer in the configuration",
                    call.principal.agent
                ),
                vec![],
            )));
        };
        call.mode = agent.mode;
        call.agent = Some(agent);

        if let Some(refusal) = resolve_user(shared, call) {
            return Ok(Flow::Answer(refusal));
        }

        let snapshot = shared.snapshot();
        let Some(tool) = snapshot.catalog.by_exposed_name(&call.request.tool) else {
            return Ok(Flow::Answer(Refusal::rejected(format!(
                "unknown tool `{}`",
                call.request.tool
            ))));
        };
        call.event.action = Some(tool.name.to_string());
        call.tool = Some(tool.clone());

        if let Some(blocked) = shared.pins.blocked(&tool.name) {
            return Ok(Flow::Answer(Refusal::denied(
                crate::pinning::refusal_message(&tool.name, &blocked),
                vec![crate::pinning::TOOL_PIN_POLICY.into()],
            )));
        }

        if let Some(switch) = shared
            .switches
            .stopping(&call.principal.agent, tool.name.upstream())
            .await?
        {
            return Ok(Flow::Answer(Refusal::denied(
                crate::switches::describe(&switch),
                vec![crate::switches::KILL_SWITCH_POLICY.into()],
            )));
        }

        match call.request.arguments.take() {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => call.input = map,
            Some(other) => {
                return Ok(Flow::Answer(Refusal::rejected(format!(
                    "tool arguments must be a JSON object, got {}",
                    json_kind(&other)
                ))));
            }
        }
        Ok(Flow::Continue)
    }
}

/// The user a call acts for: from the request, or from the task grant. An agent may name a user
/// only when its config allows delegation, and only a user the config knows.
fn resolve_user(shared: &Shared, call: &mut Call) -> Option<Refusal> {
    let from_task = call.principal.task.as_ref().and_then(|t| t.user.clone());
    let requested = call.request.user.clone();
    let user = match (requested, from_task) {
        (Some(r), Some(t)) if r != t => {
            return Some(Refusal::denied(
                format!("the call names user `{r}` but its task grant is for user `{t}`"),
                vec![],
            ));
        }
        (r, t) => r.or(t),
    }?;
    let agent = call.agent.as_ref()?;
    if !agent.delegation {
        return Some(Refusal::denied(
            format!(
                "agent `{}` may not act on behalf of users (delegation is off in its config)",
                agent.id
            ),
            vec![],
        ));
    }
    if shared.config.user(&user).is_none() {
        return Some(Refusal::denied(format!("unknown user `{user}`"), vec![]));
    }
    call.event.user = Some(user.clone());
    call.user = Some(user);
    None
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
