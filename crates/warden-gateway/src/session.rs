//! Sessions: what an agent did earlier in the same session, for `context.session`.
//!
//! A call's session is, in order: the MCP session (`Mcp-Session-Id`), else the task grant of the
//! task token it used, else an explicit id the agent sent (`_meta.session` on MCP, `session` in
//! the REST body). Keys are `mcp:<id>`, `task:<task id>` and `id:<id>`, and sessions are kept per
//! agent, so one agent can never read or pollute another's. The first two are chosen by Warden
//! or the operator; an explicit id is the agent's own, so an agent that changes it starts a
//! fresh session: rules that must hold whatever the agent does belong in rate limits or tasks.
//!
//! A call counts in its session once it was attempted, i.e. its arguments were sent to the
//! upstream (whatever came back): denied, parked, proposed or rejected calls did nothing and do
//! not count. The update records the tool, the data classes of its arguments and result, and
//! what inspection found in the result (`injection.<indicator>`, and `untrusted_output` for a
//! tool or upstream marked `untrusted_output = true`). Policies see the session as it was
//! before the call; two calls of one session decided at the same moment both see the state
//! before either, so a per-session count is a policy input, not an exact quota.

use chrono::Utc;
use warden_core::ToolName;
use warden_core::config::Config;
use warden_core::session::{SessionUpdate, UNTRUSTED_OUTPUT};
use warden_core::store::StoreError;

use crate::call::{Call, CallRequest, Principal};
use crate::gateway::Shared;

/// The session key of a call, if it belongs to one.
pub fn session_key(request: &CallRequest, principal: &Principal) -> Option<String> {
    let clean = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(id) = clean(&request.mcp_session) {
        return Some(format!("mcp:{id}"));
    }
    if let Some(task) = &principal.task {
        return Some(format!("task:{}", task.task_id));
    }
    clean(&request.session).map(|id| format!("id:{id}"))
}

/// Whether `tool`'s results are untrusted content: the tool's `untrusted_output`, else its
/// upstream's.
pub fn untrusted_output(config: &Config, tool: &ToolName) -> bool {
    config
        .tool(tool)
        .and_then(|t| t.untrusted_output)
        .unwrap_or_else(|| {
            config
                .upstream(tool.upstream())
                .is_some_and(|u| u.untrusted_output)
        })
}

/// Load the session of `call` (an empty one when nothing was recorded yet).
pub async fn load(shared: &Shared, call: &mut Call) -> Result<(), StoreError> {
    let Some(key) = call.session_key.clone() else {
        return Ok(());
    };
    let agent = call.principal.agent.clone();
    let state = shared
        .store
        .session(&agent, &key)
        .await?
        .unwrap_or_else(|| warden_core::session::SessionState::new(&agent, &key));
    call.session = Some(state);
    Ok(())
}

/// What a finished call adds to its session, or `None` when it does not count.
pub fn update_of(shared: &Shared, call: &Call) -> Option<SessionUpdate> {
    call.session_key.as_ref()?;
    if !call.attempted {
        return None;
    }
    let tool = call.tool.as_ref()?;
    let mut classes: Vec<String> = call
        .data
        .as_ref()
        .map(|d| d.classes.clone())
        .unwrap_or_default();
    let mut findings = Vec::new();
    for f in call
        .event
        .findings
        .iter()
        .filter(|f| f.location == "result")
    {
        if f.kind.starts_with("injection.") {
            findings.push(f.kind.clone());
        } else if let Ok(Some(class)) = shared.protection.class_of_finding(&f.kind) {
            classes.push(class);
        }
    }
    // Any answer from an untrusted source counts, even an error: its text reached the agent's
    // context or could have.
    if untrusted_output(&shared.config, &tool.name) {
        findings.push(UNTRUSTED_OUTPUT.to_owned());
    }
    classes.sort();
    classes.dedup();
    findings.sort();
    findings.dedup();
    Some(SessionUpdate {
        tool: tool.name.as_str().to_owned(),
        classes,
        findings,
        at: Utc::now(),
    })
}
