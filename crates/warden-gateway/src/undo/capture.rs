//! capture: for a tool whose undo recipe is `{ capture = READ, tool = WRITE }`, read the state
//! the write will change before it runs, and keep it in the evidence vault (`prior_state` of the
//! write's event), so `warden undo` can restore it.
//!
//! The read goes to the upstream as Warden (its own credentials, no agent policy: the agent was
//! authorized for the write, and the prior state never reaches it), with the write's arguments
//! that the read tool's input schema declares (`customer_id` for `crm.get_customer`). It is
//! recorded as its own audit event, linked to the write (`parent_id`), committed before the
//! write executes. Fail closed: if the read fails, returns a tool error, has no structured
//! result, or the state cannot be kept or recorded, the write is not executed.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Map, Value};
use warden_core::config::UndoRecipe;
use warden_core::{AuditEvent, EventKind, Outcome, ToolName, Verdict};

use crate::call::{Call, Flow, Refusal, StageError};
use crate::gateway::Shared;
use crate::stages::Stage;

/// The policy id recorded on a capture read: Warden's own rule, not a Cedar decision.
pub const CAPTURE_POLICY: &str = "warden:undo-capture";
/// Who a capture read is recorded as acting (the `operator` of its event).
pub const WARDEN_ACTOR: &str = "warden";

pub struct Capture;

#[async_trait]
impl Stage for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let tool = call.tool_info()?.clone();
        let Some(UndoRecipe::Capture { capture, .. }) =
            shared.config.tool(&tool.name).and_then(|t| t.undo.as_ref())
        else {
            return Ok(Flow::Continue);
        };
        let capture = capture.clone();
        let mut event = AuditEvent::begin(
            EventKind::ToolCall,
            call.request.channel.as_str(),
            Some(call.event.correlation_id.clone()),
        );
        event.parent_id = Some(call.event.id.clone());
        event.agent = call.event.agent.clone();
        event.user = call.event.user.clone();
        event.session = call.event.session.clone();
        event.operator = Some(WARDEN_ACTOR.to_owned());
        event.action = Some(capture.to_string());
        event.mode = call.event.mode;
        event.bundle_hash = call.event.bundle_hash.clone();
        event.verdict = Verdict::Allow;
        event.policies = vec![CAPTURE_POLICY.into()];

        let read = read_prior_state(shared, call, &tool.name, &capture, &mut event).await;
        let kept = match read {
            Ok((result, prior)) => {
                super::vault::keep_prior_state(shared, call, &capture, &result, &prior)
                    .await
                    .map_err(|e| {
                        format!("the prior state could not be kept in the evidence vault: {e}")
                    })
            }
            Err(e) => Err(e),
        };
        match &kept {
            Ok(()) => event.outcome = Outcome::Ok,
            Err(reason) => {
                if event.outcome != Outcome::ToolError {
                    event.outcome = Outcome::Failed;
                }
                event.reason = Some(reason.clone());
            }
        }
        event.finished_at = Utc::now();
        let committed = shared.store.append(&event).await;
        let problem = match (kept, committed) {
            (Ok(()), Ok(_)) => return Ok(Flow::Continue),
            (Err(reason), _) => reason,
            (Ok(()), Err(e)) => format!("its audit record could not be committed ({e})"),
        };
        Ok(Flow::Answer(Refusal::failed(format!(
            "the undo recipe of `{}` reads the prior state with `{capture}` first, and that failed \
             (capture event {}): {problem}; the write was not executed",
            tool.name, event.id
        ))))
    }
}

/// Call the read tool with the write's arguments its schema declares; its result and the
/// result's structured content.
async fn read_prior_state(
    shared: &Shared,
    call: &Call,
    write: &ToolName,
    capture: &ToolName,
    event: &mut AuditEvent,
) -> Result<(Value, Value), String> {
    let snapshot = shared.snapshot();
    let info = snapshot.catalog.get(capture).ok_or_else(|| {
        format!(
            "upstream `{}` does not offer `{capture}`",
            capture.upstream()
        )
    })?;
    let arguments = capture_arguments(&call.input, &info.input_schema);
    event.args_digest = Some(shared.digester.digest(&Value::Object(arguments.clone())));
    // In sandbox mode the write goes to the twin; so does the read of what it will change.
    let upstream = match &call.target_upstream {
        Some(target) if capture.upstream() == write.upstream() => target.clone(),
        _ => capture.upstream().to_owned(),
    };
    let timeout = shared.config.upstream(&upstream).and_then(|u| u.timeout);
    let outcome = shared
        .upstreams
        .call(&upstream, capture.tool(), arguments, timeout)
        .await
        .map_err(|e| format!("upstream `{upstream}`: {e}"))?;
    event.upstream_latency_us =
        Some(u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX));
    event.result_digest = Some(shared.digester.digest(&outcome.result));
    if outcome.is_error() {
        event.outcome = Outcome::ToolError;
        return Err(format!("`{capture}` answered with a tool error"));
    }
    match super::template::structured(&outcome.result) {
        Some(v @ Value::Object(_)) => Ok((outcome.result, v)),
        _ => Err(format!(
            "`{capture}` returned no structured (JSON object) result"
        )),
    }
}

/// The write's arguments the read tool's input schema declares; all of them if it declares
/// none.
pub fn capture_arguments(
    write_args: &Map<String, Value>,
    read_schema: &Value,
) -> Map<String, Value> {
    match read_schema.get("properties").and_then(Value::as_object) {
        Some(props) if !props.is_empty() => write_args
            .iter()
            .filter(|(k, _)| props.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => write_args.clone(),
    }
}

/// The restoring call's arguments: the write's own argument names, each set to the prior
/// state's value of that name, else (an identifier such as `customer_id`, which the state
/// holds under another name) the write's value.
pub fn restore_arguments(write_args: &Map<String, Value>, prior: &Value) -> Map<String, Value> {
    write_args
        .iter()
        .map(|(k, v)| {
            let value = prior
                .get(k)
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| v.clone());
            (k.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_read_gets_only_the_arguments_it_declares() {
        let write = obj(json!({"customer_id": "C001", "email": "new@example.com"}));
        let schema = json!({"type": "object", "properties": {"customer_id": {"type": "string"}}});
        assert_eq!(
            capture_arguments(&write, &schema),
            obj(json!({"customer_id": "C001"}))
        );
        assert_eq!(capture_arguments(&write, &json!({"type": "object"})), write);
    }

    #[test]
    fn the_restore_sets_back_exactly_the_fields_the_write_changed() {
        let write = obj(json!({"customer_id": "C001", "email": "new@example.com", "tier": "gold"}));
        let prior =
            json!({"id": "C001", "email": "old@example.com", "tier": "standard", "name": "A"});
        assert_eq!(
            restore_arguments(&write, &prior),
            obj(json!({"customer_id": "C001", "email": "old@example.com", "tier": "standard"}))
        );
    }
}
