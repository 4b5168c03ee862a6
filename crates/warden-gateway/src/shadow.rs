//! Shadow policies: a candidate bundle (`[policy] shadow`) decides every call beside the active
//! one. It decides nothing: its answer is compared with the active one and, when the decision or
//! the deciding policies differ, the difference is recorded in the store (after the call's
//! audit event commits), for `warden policy shadow-report`. Nothing it does — an evaluation
//! error, a panic, a store failure — reaches the live call; an error is recorded as a
//! difference whose shadow decision is `error`.
//!
//! Only Cedar's decision is compared. A call refused before Cedar runs (unknown tool, kill
//! switch, a task grant that does not list the tool) or by a gate after it (mode, rate limit)
//! is refused the same way whichever bundle is active, so it has no difference to record.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use serde::Serialize;
use warden_core::session::ShadowDiff;
use warden_policy::{AuthzRequest, Decision, PolicyBundle};

/// A decision as the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `allow`, `deny`, `approval` or `error`.
    pub decision: &'static str,
    pub policies: Vec<String>,
    pub error: Option<String>,
}

/// Name a decision: `approval` when only `@approval` forbids denied and approval would lift
/// them (what the gate parks), `error` when a policy failed to evaluate.
pub fn verdict(
    bundle: &PolicyBundle,
    request: &AuthzRequest<'_>,
    decision: &Decision,
    approved: bool,
) -> Verdict {
    let label = if decision.allowed {
        "allow"
    } else if !decision.errors.is_empty() {
        "error"
    } else if !approved
        && crate::stages::approval_obligation(bundle, &decision.policies).is_some()
        && bundle.authorize_approved(request, &[]).allowed
    {
        "approval"
    } else {
        "deny"
    };
    Verdict {
        decision: label,
        policies: decision.policies.clone(),
        error: (!decision.errors.is_empty()).then(|| decision.errors.join("; ")),
    }
}

/// Decide `request` with the shadow bundle, never panicking.
pub fn decide(
    bundle: &PolicyBundle,
    request: &AuthzRequest<'_>,
    approvers: Option<&[String]>,
) -> Verdict {
    let run = || {
        let decision = match approvers {
            Some(a) => bundle.authorize_approved(request, a),
            None => bundle.authorize(request),
        };
        verdict(bundle, request, &decision, approvers.is_some())
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| Verdict {
        decision: "error",
        policies: Vec::new(),
        error: Some("the shadow bundle's evaluation panicked".into()),
    })
}

/// The difference to record, if the shadow decided otherwise.
pub fn difference(
    event_id: &str,
    request: &AuthzRequest<'_>,
    active: &Verdict,
    active_bundle: &str,
    shadow: &Verdict,
    shadow_bundle: &str,
) -> Option<ShadowDiff> {
    if active.decision == shadow.decision && active.policies == shadow.policies {
        return None;
    }
    Some(ShadowDiff {
        event_id: event_id.to_owned(),
        at: Utc::now(),
        agent: request.agent.to_owned(),
        user: request.user.map(str::to_owned),
        tool: request.tool.as_str().to_owned(),
        active: active.decision.to_owned(),
        active_policies: active.policies.clone(),
        shadow: shadow.decision.to_owned(),
        shadow_policies: shadow.policies.clone(),
        shadow_error: shadow.error.clone(),
        active_bundle: active_bundle.to_owned(),
        shadow_bundle: shadow_bundle.to_owned(),
    })
}

/// What `warden policy shadow-report` and `GET /v1/policy/shadow-report` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShadowReport {
    /// Differences summarized (at most the limit asked for).
    pub differences: u64,
    pub since: Option<DateTime<Utc>>,
    /// Per tool, then per direction (`allow -> deny`), how many.
    pub by_tool: BTreeMap<String, BTreeMap<String, u64>>,
    /// Up to `examples` recent differences per tool and direction.
    pub examples: Vec<ShadowDiff>,
}

/// Summarize differences: counts per tool and direction, and the latest few of each.
pub fn report(diffs: &[ShadowDiff], since: Option<DateTime<Utc>>, examples: usize) -> ShadowReport {
    let mut by_tool: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut shown: BTreeMap<(String, String), Vec<ShadowDiff>> = BTreeMap::new();
    for d in diffs {
        let direction = direction(d);
        *by_tool
            .entry(d.tool.clone())
            .or_default()
            .entry(direction.clone())
            .or_insert(0) += 1;
        let list = shown.entry((d.tool.clone(), direction)).or_default();
        list.push(d.clone());
        if list.len() > examples {
            list.remove(0);
        }
    }
    ShadowReport {
        differences: u64::try_from(diffs.len()).unwrap_or(u64::MAX),
        since,
        by_tool,
        examples: shown.into_values().flatten().collect(),
    }
}

/// `active -> shadow`, e.g. `allow -> deny`; same decisions with other policies are
/// `allow -> allow (other policies)`.
pub fn direction(d: &ShadowDiff) -> String {
    if d.active == d.shadow {
        format!("{} -> {} (other policies)", d.active, d.shadow)
    } else {
        format!("{} -> {}", d.active, d.shadow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(tool: &str, active: &str, shadow: &str, event: &str) -> ShadowDiff {
        ShadowDiff {
            event_id: event.into(),
            at: Utc::now(),
            agent: "bot".into(),
            user: None,
            tool: tool.into(),
            active: active.into(),
            active_policies: vec!["a".into()],
            shadow: shadow.into(),
            shadow_policies: vec!["b".into()],
            shadow_error: None,
            active_bundle: "x".into(),
            shadow_bundle: "y".into(),
        }
    }

    #[test]
    fn a_report_counts_per_tool_and_direction_and_keeps_the_latest_examples() {
        let diffs = [
            diff("payments.refund", "allow", "deny", "e1"),
            diff("payments.refund", "allow", "deny", "e2"),
            diff("payments.refund", "allow", "deny", "e3"),
            diff("payments.refund", "deny", "deny", "e4"),
            diff("email.send", "allow", "error", "e5"),
        ];
        let r = report(&diffs, None, 2);
        assert_eq!(r.differences, 5);
        assert_eq!(r.by_tool["payments.refund"]["allow -> deny"], 3);
        assert_eq!(
            r.by_tool["payments.refund"]["deny -> deny (other policies)"],
            1
        );
        assert_eq!(r.by_tool["email.send"]["allow -> error"], 1);
        let ids: Vec<&str> = r.examples.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(ids, ["e5", "e2", "e3", "e4"]);
    }
}
