//! Rate limits and budgets, per agent, user or tool, counted in the store so every replica
//! shares them. Only calls that passed authorization and are about to run are counted.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use warden_core::config::{Budget, LimitScope, RateLimit, ToolConfig};
use warden_core::store::{ControlStore, StoreError};

use crate::call::Refusal;

/// The id recorded when a rate limit or budget refused a call.
pub const LIMIT_POLICY: &str = "warden:rate-limit";

/// Who is calling, for counting.
pub struct Caller<'a> {
    pub agent: &'a str,
    pub user: Option<&'a str>,
}

/// Count this call against every limit and the budget of `tool`; if one is exceeded, take the
/// counts back and refuse.
pub async fn check(
    store: &dyn ControlStore,
    tool: &ToolConfig,
    caller: &Caller<'_>,
    args: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>, StoreError> {
    let mut taken: Vec<(String, DateTime<Utc>, i64, f64)> = Vec::new();
    let refusal = count_all(store, tool, caller, args, now, &mut taken).await?;
    if refusal.is_some() {
        for (key, window, count, amount) in taken {
            store.add_usage(&key, window, -count, -amount).await?;
        }
    }
    Ok(refusal)
}

async fn count_all(
    store: &dyn ControlStore,
    tool: &ToolConfig,
    caller: &Caller<'_>,
    args: &Map<String, Value>,
    now: DateTime<Utc>,
    taken: &mut Vec<(String, DateTime<Utc>, i64, f64)>,
) -> Result<Option<Refusal>, StoreError> {
    for limit in &tool.limits {
        let key = format!(
            "rate:{}:{}:{}",
            tool.name,
            limit.per_secs,
            scope_key(limit.by, caller)
        );
        let window = window_start(now, limit.per_secs);
        let usage = store.add_usage(&key, window, 1, 0.0).await?;
        taken.push((key, window, 1, 0.0));
        if usage.count > i64::try_from(limit.calls).unwrap_or(i64::MAX) {
            return Ok(Some(rate_refusal(tool, limit)));
        }
    }
    if let Some(budget) = &tool.budget {
        let Some(amount) = args.get(&budget.argument).and_then(Value::as_f64) else {
            return Ok(Some(Refusal::denied(
                format!(
                    "`{}` has a budget over `{}`, but the call has no numeric `{}`",
                    tool.name, budget.argument, budget.argument
                ),
                vec![LIMIT_POLICY.into()],
            )));
        };
        let key = format!(
            "budget:{}:{}:{}",
            tool.name,
            budget.per_secs,
            scope_key(budget.by, caller)
        );
        let window = window_start(now, budget.per_secs);
        let usage = store.add_usage(&key, window, 1, amount).await?;
        taken.push((key, window, 1, amount));
        if usage.amount > budget.max {
            return Ok(Some(budget_refusal(tool, budget, usage.amount - amount)));
        }
    }
    Ok(None)
}

fn scope_key(scope: LimitScope, caller: &Caller<'_>) -> String {
    match scope {
        LimitScope::Agent => format!("agent:{}", caller.agent),
        LimitScope::User => match caller.user {
            Some(u) => format!("user:{u}"),
            None => format!("agent:{}", caller.agent),
        },
        LimitScope::Tool => "all".to_owned(),
    }
}

/// The start of the fixed window holding `now`.
fn window_start(now: DateTime<Utc>, per_secs: u64) -> DateTime<Utc> {
    let per = i64::try_from(per_secs.max(1)).unwrap_or(i64::MAX);
    let start = now.timestamp().div_euclid(per) * per;
    DateTime::from_timestamp(start, 0).unwrap_or(now)
}

fn scope_word(scope: LimitScope) -> &'static str {
    match scope {
        LimitScope::Agent => "per agent",
        LimitScope::User => "per user",
        LimitScope::Tool => "in total",
    }
}

fn rate_refusal(tool: &ToolConfig, limit: &RateLimit) -> Refusal {
    Refusal::denied(
        format!(
            "rate limit: `{}` allows {} call(s) every {} s {}",
            tool.name,
            limit.calls,
            limit.per_secs,
            scope_word(limit.by)
        ),
        vec![LIMIT_POLICY.into()],
    )
}

fn budget_refusal(tool: &ToolConfig, budget: &Budget, used: f64) -> Refusal {
    Refusal::denied(
        format!(
            "budget: `{}` allows a total `{}` of {} every {} s {}; {} is used",
            tool.name,
            budget.argument,
            budget.max,
            budget.per_secs,
            scope_word(budget.by),
            used
        ),
        vec![LIMIT_POLICY.into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_to_their_length() {
        let t = DateTime::from_timestamp(1_000_007, 0).unwrap();
        assert_eq!(window_start(t, 10).timestamp(), 1_000_000);
        assert_eq!(window_start(t, 86_400).timestamp(), 950_400);
    }

    #[test]
    fn a_user_limit_counts_a_call_without_user_under_its_agent() {
        let c = Caller {
            agent: "bot",
            user: None,
        };
        assert_eq!(scope_key(LimitScope::User, &c), "agent:bot");
        let c = Caller {
            agent: "bot",
            user: Some("alice"),
        };
        assert_eq!(scope_key(LimitScope::User, &c), "user:alice");
        assert_eq!(scope_key(LimitScope::Tool, &c), "all");
    }
}
