//! Sessions and shadow-policy differences: what the store keeps so that policies can see what
//! an agent did earlier in its session (`context.session`), and so a candidate policy bundle can
//! be judged on live traffic before it is applied.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// The finding a session gets when a tool marked `untrusted_output` returned a result.
pub const UNTRUSTED_OUTPUT: &str = "untrusted_output";

/// What an agent's session has done so far: calls that reached their upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionState {
    pub agent: String,
    /// The session key: `mcp:<Mcp-Session-Id>`, `task:<task id>` or `id:<explicit id>`.
    pub session: String,
    /// Calls per canonical tool name.
    pub tools: BTreeMap<String, u64>,
    /// Data classes seen in arguments and results.
    pub classes: BTreeSet<String>,
    /// Inspection findings seen in results: `injection.<indicator>`, `untrusted_output`.
    pub findings: BTreeSet<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl SessionState {
    /// An empty session (nothing seen yet).
    pub fn new(agent: &str, session: &str) -> Self {
        Self {
            agent: agent.to_owned(),
            session: session.to_owned(),
            ..Self::default()
        }
    }

    /// All calls recorded in the session.
    pub fn calls(&self) -> u64 {
        self.tools.values().sum()
    }

    /// Whether untrusted content reached the agent in this session: an injection indicator in
    /// a result, or a result of a tool marked `untrusted_output`.
    pub fn untrusted(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f == UNTRUSTED_OUTPUT || f.starts_with("injection."))
    }

    /// Fold one call in (what the store does atomically).
    pub fn apply(&mut self, update: &SessionUpdate) {
        *self.tools.entry(update.tool.clone()).or_insert(0) += 1;
        self.classes.extend(update.classes.iter().cloned());
        self.findings.extend(update.findings.iter().cloned());
        self.started_at.get_or_insert(update.at);
        self.updated_at = Some(update.at);
    }
}

/// One call to add to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUpdate {
    /// Canonical tool name.
    pub tool: String,
    pub classes: Vec<String>,
    pub findings: Vec<String>,
    pub at: DateTime<Utc>,
}

/// One call to count in a session: the update of `agent`'s `session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCall {
    pub agent: String,
    pub session: String,
    pub update: SessionUpdate,
}

/// A live decision and what the shadow (candidate) bundle would have decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowDiff {
    /// The audit event of the call.
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub agent: String,
    pub user: Option<String>,
    /// Canonical tool name.
    pub tool: String,
    /// `allow`, `deny` or `approval` (denied only by `@approval` forbids).
    pub active: String,
    pub active_policies: Vec<String>,
    /// As `active`, or `error` when the shadow bundle could not decide.
    pub shadow: String,
    pub shadow_policies: Vec<String>,
    /// The shadow bundle's evaluation errors or its reason for an `error`.
    pub shadow_error: Option<String>,
    /// The hashes of both bundles.
    pub active_bundle: String,
    pub shadow_bundle: String,
}

/// Sessions and shadow differences, kept in the store so they survive restarts and are shared
/// by every replica on the database.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The session, or `None` when nothing was recorded for it.
    async fn session(&self, agent: &str, session: &str)
    -> Result<Option<SessionState>, StoreError>;
    /// Add one call to the session atomically (each count is an upsert; sets only grow) and
    /// return the session after it.
    async fn record_session_call(
        &self,
        agent: &str,
        session: &str,
        update: &SessionUpdate,
    ) -> Result<SessionState, StoreError>;
    async fn insert_shadow_diff(&self, diff: &ShadowDiff) -> Result<(), StoreError>;
    /// Differences recorded at or after `since`, oldest first, at most `limit`.
    async fn shadow_diffs(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ShadowDiff>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_untrusted_once_an_injection_or_untrusted_output_was_seen() {
        let mut s = SessionState::new("bot", "id:s");
        assert!(!s.untrusted());
        let update = |finding: &str| SessionUpdate {
            tool: "email.read_inbox".into(),
            classes: vec!["internal".into()],
            findings: vec![finding.into()],
            at: Utc::now(),
        };
        s.apply(&update("dlp.email"));
        assert!(!s.untrusted());
        s.apply(&update("injection.ignore_instructions"));
        assert!(s.untrusted());
        assert_eq!(s.calls(), 2);
        assert_eq!(s.tools["email.read_inbox"], 2);
        let mut t = SessionState::new("bot", "id:t");
        t.apply(&update(UNTRUSTED_OUTPUT));
        assert!(t.untrusted());
    }
}
