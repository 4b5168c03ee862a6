//! What both backends share for the action-control state ([`ControlStore`]): the vote decision,
//! checks on arguments, and decoding of stored values.
//!
//! [`ControlStore`]: warden_core::store::ControlStore

use std::str::FromStr;

use chrono::{DateTime, Utc};
use warden_core::store::{ApprovalKind, ApprovalStatus, CancelScope, StoreError, VoteOutcome};

use crate::error::corrupt;

/// The name of the switch counter in `control_versions`.
pub(crate) const SWITCHES_VERSION: &str = "switches";

/// What to do with a vote once the request row is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Before {
    /// Answer without recording the vote.
    Refuse(VoteOutcome),
    /// The request is pending but past its deadline: mark it expired and refuse the vote.
    Expire,
    /// Record the vote.
    Record,
}

/// The checks before a vote is recorded, in order: the request must be pending and before its
/// deadline, and the approver must not have voted yet.
pub(crate) fn before_vote(
    status: ApprovalStatus,
    expires_at: DateTime<Utc>,
    voted_at: DateTime<Utc>,
    already_voted: bool,
) -> Before {
    if status != ApprovalStatus::Pending {
        Before::Refuse(VoteOutcome::NotPending(status))
    } else if voted_at >= expires_at {
        Before::Expire
    } else if already_voted {
        Before::Refuse(VoteOutcome::AlreadyVoted)
    } else {
        Before::Record
    }
}

/// The outcome of a recorded vote, and the status the request moves to (if it moves), given the
/// number of distinct approve votes including this one.
pub(crate) fn after_vote(
    approve: bool,
    approvals: u32,
    required_count: u32,
) -> (VoteOutcome, Option<ApprovalStatus>) {
    if !approve {
        (VoteOutcome::Denied, Some(ApprovalStatus::Denied))
    } else if approvals >= required_count.max(1) {
        (VoteOutcome::Approved, Some(ApprovalStatus::Approved))
    } else {
        (VoteOutcome::Recorded { approvals }, None)
    }
}

/// Refuse a status move the lifecycle does not allow.
pub(crate) fn check_transition(
    id: &str,
    from: ApprovalStatus,
    to: ApprovalStatus,
) -> Result<(), StoreError> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "approval {id} cannot go from {from} to {to}"
        )))
    }
}

/// Usage amounts must be finite (SQLite cannot store NaN, and a NaN total never compares).
pub(crate) fn check_amount(key: &str, amount: f64) -> Result<(), StoreError> {
    if amount.is_finite() {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "usage amount for `{key}` must be finite, got {amount}"
        )))
    }
}

/// The `WHERE` filter a cancel scope adds, and what it binds: an agent, or the `<upstream>.`
/// prefix of tool names (compared as a prefix, not with `LIKE`, so `_` and `%` in a name are
/// plain characters).
pub(crate) enum ScopeFilter {
    All,
    Agent(String),
    ToolPrefix(String),
}

impl ScopeFilter {
    pub fn of(scope: CancelScope) -> Self {
        match scope {
            CancelScope::All => Self::All,
            CancelScope::Agent(agent) => Self::Agent(agent),
            CancelScope::Upstream(upstream) => Self::ToolPrefix(format!("{upstream}.")),
        }
    }
}

pub(crate) fn args_text(id: &str, args: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(args)
        .map_err(|e| StoreError::Database(format!("encoding the arguments of approval {id}: {e}")))
}

pub(crate) fn args_from_db(id: &str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format_args!("arguments of approval {id}"), e))
}

pub(crate) fn status_from_db(id: &str, text: &str) -> Result<ApprovalStatus, StoreError> {
    ApprovalStatus::from_str(text).map_err(|e| corrupt(format_args!("status of approval {id}"), e))
}

pub(crate) fn kind_from_db(id: &str, text: &str) -> Result<ApprovalKind, StoreError> {
    ApprovalKind::from_str(text).map_err(|e| corrupt(format_args!("kind of approval {id}"), e))
}

pub(crate) fn required_count_from_db(id: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|e| corrupt(format_args!("required_count {n} of approval {id}"), e))
}

/// A count of votes, as `count(*)` returns it.
pub(crate) fn vote_count_from_db(id: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|e| corrupt(format_args!("vote count {n} of approval {id}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn a_vote_needs_a_pending_live_request_and_a_new_approver() {
        use ApprovalStatus::*;
        assert_eq!(before_vote(Pending, t(10), t(0), false), Before::Record);
        assert_eq!(
            before_vote(Pending, t(10), t(0), true),
            Before::Refuse(VoteOutcome::AlreadyVoted)
        );
        assert_eq!(before_vote(Pending, t(10), t(10), false), Before::Expire);
        for s in [Approved, Denied, Expired, Cancelled, Executed] {
            assert_eq!(
                before_vote(s, t(10), t(0), true),
                Before::Refuse(VoteOutcome::NotPending(s)),
                "not pending wins over already voted"
            );
        }
    }

    #[test]
    fn approvals_reach_the_threshold_and_one_deny_denies() {
        use ApprovalStatus::*;
        assert_eq!(
            after_vote(true, 1, 2),
            (VoteOutcome::Recorded { approvals: 1 }, None)
        );
        assert_eq!(
            after_vote(true, 2, 2),
            (VoteOutcome::Approved, Some(Approved))
        );
        assert_eq!(
            after_vote(true, 1, 0),
            (VoteOutcome::Approved, Some(Approved))
        );
        assert_eq!(after_vote(false, 1, 2), (VoteOutcome::Denied, Some(Denied)));
    }

    #[test]
    fn only_lifecycle_moves_are_allowed() {
        use ApprovalStatus::*;
        assert!(check_transition("a", Approved, Executed).is_ok());
        assert!(matches!(
            check_transition("a", Executed, Pending),
            Err(StoreError::Conflict(m)) if m.contains("executed to pending")
        ));
    }

    #[test]
    fn amounts_must_be_finite() {
        assert!(check_amount("k", 1.5).is_ok());
        assert!(check_amount("k", f64::NAN).is_err());
        assert!(check_amount("k", f64::INFINITY).is_err());
    }

    #[test]
    fn an_upstream_scope_is_a_tool_prefix() {
        assert!(matches!(
            ScopeFilter::of(CancelScope::Upstream("my_crm".into())),
            ScopeFilter::ToolPrefix(p) if p == "my_crm."
        ));
    }
}
