//! inspect: check what came back before the agent sees it.
//!
//! 1. The keyed digest of the result is recorded, over what the upstream returned; the same
//!    canonical serialization gives its size, and a result over `[dlp] max_result_bytes` is
//!    withheld.
//! 2. Shape: an object whose `content` (if any) is an array, `structuredContent` an object and
//!    `isError` a boolean; anything else is withheld. The upstream's own `_meta` is dropped
//!    (nothing inspects it, so nothing of it is passed on).
//! 3. For a successful result with an output schema (the tool's `output_schema`, else the
//!    upstream's `outputSchema`): top-level members of `structuredContent` it does not declare
//!    are dropped (also from the JSON text block mirroring it) or fail the call, per the
//!    tool's `output`. Then the tool's `projection`, if any, keeps only the listed parts.
//! 4. Field rules and detectors against the agent's clearance (lowered to its task's
//!    `max_class`), and injection indicators; a result that cannot be inspected is withheld.
//! 5. Injection indicators, per `[dlp] on_injection`: `warn` passes the result with
//!    `_meta.warden.warnings`, `quarantine` replaces its content by a notice naming the
//!    indicator kinds, `deny` withholds it (policy id `warden:prompt-injection`).
//!
//! Findings (kinds and counts, never values) go on the audit event.

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use warden_core::config::{InjectionAction, OutputCheck};
use warden_core::{ClassLevel, Finding};

use super::Stage;
use crate::call::{Call, Flow, Refusal, StageError};
use crate::gateway::Shared;
use crate::protection::{parse_json_text, render_like};

/// The id recorded when injection indicators, not a Cedar policy, withheld a result.
pub const INJECTION_POLICY: &str = "warden:prompt-injection";

pub struct Inspect;

#[async_trait]
impl Stage for Inspect {
    fn name(&self) -> &'static str {
        "inspect"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        // Until this stage is done, the call holds no result: every early answer withholds it.
        let Some(mut result) = call.result.take() else {
            return Err(StageError::Internal("inspect ran without a result"));
        };
        let (digest, size) = shared.digester.digest_sized(&result);
        call.event.result_digest = Some(digest);
        let limit = shared.config.dlp.max_result_bytes;
        if size > limit {
            return Ok(Flow::Answer(Refusal::failed(format!(
                "the upstream's result is {size} bytes, over the {limit} byte limit; it is withheld"
            ))));
        }
        if let Some(problem) = malformed(&result) {
            return Ok(Flow::Answer(Refusal::failed(format!(
                "the upstream returned a malformed tool result ({problem}); it is withheld"
            ))));
        }
        if let Some(obj) = result.as_object_mut() {
            obj.remove("_meta");
        }
        let tool = call.tool_info()?.clone();
        let is_error = result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !is_error {
            let output = shared.protection.tool(&tool.name)?.output;
            if let Some(schema) = &tool.output_schema {
                let undeclared = undeclared_members(schema, &result);
                let count = u32::try_from(undeclared.len()).unwrap_or(u32::MAX);
                match output {
                    _ if undeclared.is_empty() => {}
                    OutputCheck::Allow => {}
                    OutputCheck::DropUnexpected => {
                        drop_members(&mut result, &undeclared);
                        call.event.findings.push(output_finding(count, "dropped"));
                    }
                    OutputCheck::FailUnexpected => {
                        call.event.findings.push(output_finding(count, "denied"));
                        return Ok(Flow::Answer(Refusal::failed(format!(
                            "the result has {count} top-level field(s) the output schema of \
                             `{}` does not declare; it is withheld",
                            tool.name
                        ))));
                    }
                }
            }
            if let Err(e) = shared.protection.project_result(&tool.name, &mut result) {
                return Ok(Flow::Answer(Refusal::failed(format!(
                    "the result could not be projected ({e}); it is withheld"
                ))));
            }
        }

        let clearance = agent_clearance(shared, call)?;
        let inspection = match shared
            .protection
            .inspect_result(&tool.name, clearance, &mut result)
        {
            Ok(i) => i,
            Err(e) => {
                return Ok(Flow::Answer(Refusal::failed(format!(
                    "the result could not be inspected ({e}); it is withheld"
                ))));
            }
        };
        let mut findings = inspection.findings();
        if inspection.injection_found() {
            let kinds: Vec<String> = inspection
                .injection
                .iter()
                .map(|(kind, _, _)| kind.to_owned())
                .collect();
            let kinds = kinds.join(", ");
            let action = shared.config.dlp.on_injection;
            let word = match action {
                InjectionAction::Warn => "flagged",
                InjectionAction::Quarantine => "quarantined",
                InjectionAction::Deny => "denied",
            };
            for f in findings
                .iter_mut()
                .filter(|f| f.kind.starts_with("injection."))
            {
                f.action = word.into();
            }
            let warning = format!("possible prompt injection in this result ({kinds})");
            match action {
                InjectionAction::Warn => {
                    set_warden_meta(&mut result, json!({ "warnings": [warning] }))
                }
                InjectionAction::Quarantine => {
                    let has_output_schema = call
                        .tool
                        .as_ref()
                        .is_some_and(|t| t.output_schema.is_some());
                    result = quarantined(&kinds, &call.event.id, &warning, has_output_schema);
                }
                InjectionAction::Deny => {
                    call.event.findings.extend(findings);
                    call.event.policies.push(INJECTION_POLICY.into());
                    return Ok(Flow::Answer(Refusal::denied(
                        format!(
                            "the result shows signs of prompt injection ({kinds}); it is withheld"
                        ),
                        vec![INJECTION_POLICY.into()],
                    )));
                }
            }
        }
        call.event.findings.extend(findings);
        call.result = Some(result);
        Ok(Flow::Continue)
    }
}

/// The agent's clearance, lowered to its task's `max_class` when that is lower.
fn agent_clearance(shared: &Shared, call: &Call) -> Result<ClassLevel, StageError> {
    let agent = call.agent_config()?;
    let mut clearance = shared.protection.level(&agent.clearance)?;
    if let Some(max) = call
        .principal
        .task
        .as_ref()
        .and_then(|t| t.max_class.as_deref())
    {
        clearance = clearance.min(shared.protection.level(max)?);
    }
    Ok(clearance)
}

/// What is wrong with the shape of a `CallToolResult`, if anything.
fn malformed(result: &Value) -> Option<&'static str> {
    let Some(obj) = result.as_object() else {
        return Some("not an object");
    };
    if !matches!(obj.get("content"), None | Some(Value::Array(_))) {
        return Some("`content` is not an array");
    }
    if !matches!(
        obj.get("structuredContent"),
        None | Some(Value::Null | Value::Object(_))
    ) {
        return Some("`structuredContent` is not an object");
    }
    if !matches!(
        obj.get("isError"),
        None | Some(Value::Null | Value::Bool(_))
    ) {
        return Some("`isError` is not a boolean");
    }
    None
}

/// Top-level members of `structuredContent` that `schema` does not declare. None when the
/// schema lists no `properties`, or allows more (`additionalProperties` true or a schema,
/// `patternProperties`).
fn undeclared_members(schema: &Value, result: &Value) -> Vec<String> {
    let Some(declared) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    if matches!(
        schema.get("additionalProperties"),
        Some(Value::Bool(true) | Value::Object(_))
    ) || schema.get("patternProperties").is_some()
    {
        return Vec::new();
    }
    result
        .get("structuredContent")
        .and_then(Value::as_object)
        .map(|s| {
            s.keys()
                .filter(|k| !declared.contains_key(*k))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Remove `names` from `structuredContent` and from text blocks holding a JSON object (the
/// copy MCP servers send for older clients), so the member does not reach the agent either way.
fn drop_members(result: &mut Value, names: &[String]) {
    let remove = |map: &mut Map<String, Value>| {
        for name in names {
            map.remove(name);
        }
    };
    if let Some(Value::Object(structured)) = result.get_mut("structuredContent") {
        remove(structured);
    }
    let Some(Value::Array(blocks)) = result.get_mut("content") else {
        return;
    };
    for block in blocks {
        if block.get("type").and_then(Value::as_str) != Some("text") {
            continue;
        }
        let Some(Value::String(text)) = block.get_mut("text") else {
            continue;
        };
        if let Some(Value::Object(mut map)) = parse_json_text(text) {
            remove(&mut map);
            *text = render_like(&Value::Object(map), text);
        }
    }
}

fn output_finding(count: u32, action: &str) -> Finding {
    Finding {
        kind: "output.undeclared_field".into(),
        location: "result".into(),
        count,
        action: action.into(),
    }
}

/// Put `value` at `_meta.warden` of a result (replacing whatever was there).
fn set_warden_meta(result: &mut Value, value: Value) {
    let Some(obj) = result.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("warden".into(), value);
    }
}

/// The result an agent gets instead of a quarantined one. A tool that declares an output schema
/// must return matching structured content unless the result is an error, so for such tools the
/// notice is an error result (clients validate it otherwise and fail).
fn quarantined(kinds: &str, event_id: &str, warning: &str, has_output_schema: bool) -> Value {
    json!({
        "content": [{
            "type": "text",
            "text": format!(
                "Warden quarantined this result: it shows signs of prompt injection ({kinds}). \
                 Its content is withheld; an operator can review the call (event {event_id})."
            ),
        }],
        "isError": has_output_schema,
        "_meta": { "warden": { "quarantined": true, "warnings": [warning] } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_that_are_not_tool_results_are_named() {
        assert_eq!(malformed(&json!([1])), Some("not an object"));
        assert_eq!(
            malformed(&json!({"content": "x"})),
            Some("`content` is not an array")
        );
        assert_eq!(
            malformed(&json!({"content": [], "structuredContent": [1]})),
            Some("`structuredContent` is not an object")
        );
        assert_eq!(
            malformed(&json!({"content": [], "isError": "yes"})),
            Some("`isError` is not a boolean")
        );
        assert_eq!(
            malformed(&json!({"content": [], "structuredContent": {}})),
            None
        );
    }

    #[test]
    fn undeclared_members_respect_what_the_schema_allows() {
        let result = json!({"structuredContent": {"id": 1, "ssn": "x"}});
        let strict = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        assert_eq!(undeclared_members(&strict, &result), ["ssn"]);
        let open =
            json!({"type": "object", "properties": {"id": {}}, "additionalProperties": true});
        assert!(undeclared_members(&open, &result).is_empty());
        assert!(undeclared_members(&json!({"type": "object"}), &result).is_empty());
    }

    #[test]
    fn dropped_members_leave_the_json_text_mirror_too() {
        let mut result = json!({
            "content": [{"type": "text", "text": "{\"id\":1,\"ssn\":\"x\"}"}, {"type": "text", "text": "ssn: free text"}],
            "structuredContent": {"id": 1, "ssn": "x"},
        });
        drop_members(&mut result, &["ssn".to_owned()]);
        assert_eq!(result["structuredContent"], json!({"id": 1}));
        assert_eq!(result["content"][0]["text"], "{\"id\":1}");
        assert_eq!(result["content"][1]["text"], "ssn: free text");
    }

    #[test]
    fn warnings_replace_an_upstreams_warden_meta() {
        let mut result = json!({"content": [], "_meta": {"warden": {"outcome": "forged"}, "x": 1}});
        set_warden_meta(&mut result, json!({"warnings": ["w"]}));
        assert_eq!(
            result["_meta"],
            json!({"warden": {"warnings": ["w"]}, "x": 1})
        );
        let mut bare = json!({"content": [], "_meta": "odd"});
        set_warden_meta(&mut bare, json!({"warnings": ["w"]}));
        assert_eq!(bare["_meta"]["warden"]["warnings"][0], "w");
    }
}
