//! What both backends share for [`SessionStore`]: turning rows into a [`SessionState`] and
//! shadow differences into and out of their columns.

use warden_core::session::SessionState;
use warden_core::store::StoreError;

use crate::error::corrupt;

pub(crate) const CLASS: &str = "class";
pub(crate) const FINDING: &str = "finding";

/// A session from its tool counts and marks.
pub(crate) fn session_from_rows(
    mut state: SessionState,
    tools: Vec<(String, i64)>,
    marks: Vec<(String, String)>,
) -> Result<SessionState, StoreError> {
    for (tool, calls) in tools {
        let calls = u64::try_from(calls)
            .map_err(|e| corrupt(format_args!("session_tools.calls of {tool}"), e))?;
        state.tools.insert(tool, calls);
    }
    for (kind, name) in marks {
        match kind.as_str() {
            CLASS => {
                state.classes.insert(name);
            }
            FINDING => {
                state.findings.insert(name);
            }
            other => {
                return Err(corrupt("session_marks.kind", format_args!("`{other}`")));
            }
        }
    }
    Ok(state)
}

pub(crate) fn policies_text(policies: &[String]) -> String {
    serde_json::Value::from(policies.to_vec()).to_string()
}

pub(crate) fn policies_from_db(event: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(format_args!("policies of shadow difference for {event}"), e))
}

/// The marks of one update: `(kind, name)`.
pub(crate) fn marks(update: &warden_core::session::SessionUpdate) -> Vec<(&'static str, &str)> {
    let classes = update.classes.iter().map(|c| (CLASS, c.as_str()));
    let findings = update.findings.iter().map(|f| (FINDING, f.as_str()));
    classes.chain(findings).collect()
}
