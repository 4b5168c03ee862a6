//! Sessions: what an agent did earlier in the same session, for `context.session`.
//!
//! A call's session is, in order: the MCP session (`Mcp-Session-Id`), else the task grant of the
//! task token it used, else an explicit id the agent sent (`_meta.session` on MCP, `session` in
//! the REST body). Keys are `mcp:<id>`, `task:<task id>` and `id:<id>`, and sessions are kept per
//! agent, so one agent can never read or pollute another's. The MCP edge issues the MCP session
//! id at `initialize` (2025-11-25; 2026-07-28 has no sessions) and the operator issues task
//! grants; but an agent can initialize again or change its explicit id and so start a fresh
//! session: rules that must hold whatever the agent does belong in rate limits or tasks.
//!
//! A call counts in its session once it was attempted, i.e. its arguments were sent to the
//! upstream (whatever came back): denied, parked, proposed or rejected calls did nothing and do
//! not count. The update records the tool, the data classes of its arguments and result, and
//! what inspection found in the result (`injection.<indicator>`, and `untrusted_output` for a
//! tool or upstream marked `untrusted_output = true`). Policies see the session as it was
//! before the call.
//!
//! A gateway runs the calls of one session one at a time, from the moment authorize reads the
//! session to the moment record has counted the call ([`SessionLocks`]), so two simultaneous
//! calls cannot both see the state before either: "no more than 3 refunds per session" holds
//! under concurrency. A call whose policies (active and shadow) cannot read `context.session`
//! neither loads the session nor takes its lock: no decision of its depends on the session, and
//! its count still commits with its audit event before it answers, so a later call of the agent
//! sees it. The lock is per process: replicas sharing a database each hold their own,
//! so a quota that must hold across replicas belongs in `[limits]`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use chrono::Utc;
use tokio::sync::OwnedMutexGuard;
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

/// One lock per live session of this gateway; a lock is forgotten once no call holds it.
#[derive(Default)]
pub struct SessionLocks {
    inner: Mutex<LockTable>,
}

#[derive(Default)]
struct LockTable {
    locks: HashMap<(String, String), Weak<tokio::sync::Mutex<()>>>,
    /// Forget released locks when the table grows past this, so it stays proportional to the
    /// sessions with a call in flight.
    prune_at: usize,
}

impl SessionLocks {
    /// Wait until no other call of `agent`'s `session` is between authorize and record.
    pub async fn acquire(&self, agent: &str, session: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut table = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            let id = (agent.to_owned(), session.to_owned());
            match table.locks.get(&id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    if table.locks.len() >= table.prune_at {
                        table.locks.retain(|_, lock| lock.strong_count() > 0);
                        table.prune_at = (table.locks.len() * 2).max(1024);
                    }
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    table.locks.insert(id, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Sessions with a lock in the table (held or not yet forgotten).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .locks
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Take the session's lock (held by the call until it is recorded), then load the session of
/// `call` (an empty one when nothing was recorded yet).
pub async fn load(shared: &Shared, call: &mut Call) -> Result<(), StoreError> {
    let Some(key) = call.session_key.clone() else {
        return Ok(());
    };
    let agent = call.principal.agent.clone();
    if call.session_guard.is_none() {
        call.session_guard = Some(shared.session_locks.acquire(&agent, &key).await);
    }
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

#[cfg(test)]
mod lock_tests {
    use super::SessionLocks;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_call_of_a_session_waits_until_the_first_is_recorded() {
        let locks = SessionLocks::default();
        let first = locks.acquire("bot", "id:s1").await;
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), locks.acquire("bot", "id:s1"));
        assert!(waiting.await.is_err(), "the second call must wait");
        drop(first);
        let second =
            tokio::time::timeout(Duration::from_secs(5), locks.acquire("bot", "id:s1")).await;
        assert!(second.is_ok(), "released: the next call proceeds");
    }

    #[tokio::test]
    async fn other_sessions_and_other_agents_do_not_wait() {
        let locks = SessionLocks::default();
        let _held = locks.acquire("bot", "id:s1").await;
        for (agent, session) in [("bot", "id:s2"), ("other", "id:s1")] {
            let got =
                tokio::time::timeout(Duration::from_secs(5), locks.acquire(agent, session)).await;
            assert!(got.is_ok(), "{agent}/{session} must not wait");
        }
    }

    #[tokio::test]
    async fn released_locks_are_forgotten_as_the_table_grows() {
        let locks = SessionLocks::default();
        for n in 0..5000 {
            drop(locks.acquire("bot", &format!("id:{n}")).await);
        }
        assert!(locks.len() <= 2048, "{} locks kept", locks.len());
    }
}
