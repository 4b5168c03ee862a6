//! Decisions: may this agent (and the user it acts for) call this tool with these arguments?
//!
//! Every path that is not a clean Cedar `Allow` for the agent — and for the user, when there is
//! one — is a deny with a reason: unknown names, arguments that do not fit the tool's schema,
//! and policy evaluation errors all fail closed.

use cedar_policy::{Context, Decision as CedarDecision, EntityUid, Request, RestrictedExpression};
use chrono::{DateTime, Datelike, Timelike, Utc};
use warden_core::session::SessionState;
use warden_core::{Mode, ToolName};

use crate::bundle::{PolicyBundle, ToolSlice};

/// A task grant's narrowing, as policies see it in `context.task`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TaskScope {
    pub id: String,
    /// Canonical tool names the task may use.
    pub tools: Vec<String>,
    /// Highest data class rank the task may touch; `None` means no narrowing (the highest class).
    pub max_clearance: Option<u8>,
}

/// One call to decide.
#[derive(Debug, Clone, Copy)]
pub struct AuthzRequest<'a> {
    pub agent: &'a str,
    /// The user the agent acts for, if any: the call is then also decided with the user as
    /// principal, and allowed only when both are allowed.
    pub user: Option<&'a str>,
    pub task: Option<&'a TaskScope>,
    pub tool: &'a ToolName,
    pub input: &'a serde_json::Value,
    /// The effective mode for this call (`context.mode`).
    pub mode: Mode,
    /// What the agent's session did before this call (`context.session`); `None` for a call
    /// outside any session, which policies see as an empty session with id `""`.
    pub session: Option<&'a SessionState>,
    pub now: DateTime<Utc>,
    /// Data classes present in the arguments (`context.classes`): names from `[classes] order`.
    /// `context.class_level` is the rank of the most sensitive (an unknown name ranks highest).
    /// Empty (`&[]`) when the caller classified nothing.
    pub classes: &'a [String],
    /// Finding kinds in the arguments (`context.findings`), e.g. `dlp.payment_card`.
    pub findings: &'a [String],
}

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// The determining policies: the permits when allowed; when denied, the forbids (or the
    /// policies that failed to evaluate). Empty on a deny means no policy permitted the call
    /// (Cedar's default deny) or the call was refused before policy (see `reason`).
    pub policies: Vec<String>,
    /// For people: who was allowed or denied, by which policies or why.
    pub reason: String,
    /// Policy evaluation errors, if any (each one denies the call).
    pub errors: Vec<String>,
}

impl Decision {
    fn deny(reason: impl Into<String>) -> Self {
        Self {
            allowed: false,
            policies: Vec::new(),
            reason: reason.into(),
            errors: Vec::new(),
        }
    }
    /// Denied with no determining policy: nothing permitted the call, or it never reached policy.
    pub fn is_default_deny(&self) -> bool {
        !self.allowed && self.policies.is_empty()
    }
}

/// Approval state of a call re-authorized after approval (`context.approved`, `context.approvers`).
#[derive(Debug, Clone, Copy)]
struct Approval<'a> {
    approvers: &'a [String],
}

/// One principal's verdict from Cedar.
struct Verdict {
    allowed: bool,
    determining: Vec<String>,
    errors: Vec<String>,
}

/// Who a verdict is about, for reasons.
#[derive(Clone, Copy)]
enum Who<'a> {
    Agent(&'a str),
    User(&'a str),
}

impl Who<'_> {
    fn describe(self) -> String {
        match self {
            Who::Agent(a) => format!("agent {a}"),
            Who::User(u) => format!("user {u}"),
        }
    }
}

impl PolicyBundle {
    /// Decide a call. See [`Decision`] for what comes back; this never fails open.
    pub fn authorize(&self, req: &AuthzRequest<'_>) -> Decision {
        self.decide(req, None)
    }

    /// Decide a call again after it was approved: `context.approved` is true and
    /// `context.approvers` holds who approved, so a `forbid ... unless { context.approved }`
    /// obligation is met while every other policy still applies.
    pub fn authorize_approved(&self, req: &AuthzRequest<'_>, approvers: &[String]) -> Decision {
        self.decide(req, Some(Approval { approvers }))
    }

    fn decide(&self, req: &AuthzRequest<'_>, approval: Option<Approval<'_>>) -> Decision {
        let Some(slice) = self.slices.get(req.tool) else {
            return Decision::deny(format!("unknown tool `{}`", req.tool));
        };
        let principals = match self.principals(req.agent, req.user) {
            Ok(p) => p,
            Err(reason) => return Decision::deny(reason),
        };
        let input = match slice
            .input
            .to_cedar_fields(req.input, slice.input_fields.as_ref())
        {
            Ok(input) => input,
            Err(e) => {
                return Decision::deny(format!(
                    "arguments do not fit the input schema of tool {}: {e}",
                    req.tool
                ));
            }
        };
        let context = match self.context(input, req, approval, &slice.session_counts) {
            Ok(c) => c,
            Err(e) => return Decision::deny(e.to_string()),
        };
        let agent = self.evaluate(&principals.agent, slice, context.clone());
        if !agent.allowed {
            return denial(Who::Agent(req.agent), req.tool, agent);
        }
        let Some(user_uid) = &principals.user else {
            return allowance(req, agent.determining);
        };
        let user_name = req.user.unwrap_or_default();
        let user = self.evaluate(user_uid, slice, context);
        if !user.allowed {
            let inner = denial(Who::User(user_name), req.tool, user);
            return Decision {
                reason: format!(
                    "denied for user {user_name} (on whose behalf agent {} acts): {}",
                    req.agent, inner.reason
                ),
                ..inner
            };
        }
        let mut policies = agent.determining;
        policies.extend(user.determining);
        policies.sort();
        policies.dedup();
        allowance(req, policies)
    }

    /// True when policy allows `tool` for some arguments: Cedar partially evaluates the request
    /// with `context.input` (and the time, approval state and session) unknown; a residual means
    /// "maybe", so the tool is listed, and only a definite deny hides it.
    ///
    /// A hidden tool is therefore denied at call time whatever the arguments, time, approval or
    /// session. A listed tool may still be denied
    /// for particular arguments. The answer depends only on the arguments and this bundle, so
    /// callers may cache it per (bundle hash, agent, user, task, tool, mode); one call costs a
    /// partial evaluation of the tool's slice, tens of microseconds.
    pub fn may_list(
        &self,
        agent: &str,
        user: Option<&str>,
        task: Option<&TaskScope>,
        tool: &ToolName,
        mode: Mode,
    ) -> bool {
        let Some(slice) = self.slices.get(tool) else {
            return false;
        };
        let Ok(principals) = self.principals(agent, user) else {
            return false;
        };
        let Ok(context) = self.unknown_input_context(user, task, mode) else {
            return false;
        };
        let may = |principal: &EntityUid| self.may_allow(principal, slice, context.clone());
        may(&principals.agent) && principals.user.as_ref().is_none_or(may)
    }

    fn may_allow(&self, principal: &EntityUid, slice: &ToolSlice, context: Context) -> bool {
        let Ok(request) = Request::new(
            principal.clone(),
            slice.action.clone(),
            slice.resource.clone(),
            context,
            None,
        ) else {
            return false;
        };
        let response = self.authorizer.is_authorized_partial(
            &request,
            &slice.policies,
            &self.entities.entities,
        );
        // A policy that errors whatever the unknowns are errors at call time too, and any error
        // denies the call.
        let always_errors = response.definitely_errored().next().is_some();
        !always_errors && response.decision() != Some(CedarDecision::Deny)
    }

    fn principals(&self, agent: &str, user: Option<&str>) -> Result<Principals, String> {
        let agent_ref = self
            .entities
            .agents
            .get(agent)
            .ok_or_else(|| format!("unknown agent `{agent}`"))?;
        let user_uid = match user {
            None => None,
            Some(u) => {
                let uid = self
                    .entities
                    .users
                    .get(u)
                    .ok_or_else(|| format!("unknown user `{u}`"))?;
                if !agent_ref.delegation {
                    return Err(format!(
                        "agent {agent} may not act on behalf of users (delegation is off), but the call names user {u}"
                    ));
                }
                Some(uid.clone())
            }
        };
        Ok(Principals {
            agent: agent_ref.uid.clone(),
            user: user_uid,
        })
    }

    fn evaluate(&self, principal: &EntityUid, slice: &ToolSlice, context: Context) -> Verdict {
        let request = match Request::new(
            principal.clone(),
            slice.action.clone(),
            slice.resource.clone(),
            context,
            None,
        ) {
            Ok(r) => r,
            Err(e) => {
                return Verdict {
                    allowed: false,
                    determining: Vec::new(),
                    errors: vec![e.to_string()],
                };
            }
        };
        let response =
            self.authorizer
                .is_authorized(&request, &slice.policies, &self.entities.entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        if !errors.is_empty() {
            // Cedar skips a policy that errors; a skipped forbid would let the call through, so
            // any error denies, naming the failed policies.
            let failed = diagnostics
                .errors()
                .map(|e| policy_of_error(e).to_string())
                .collect();
            return Verdict {
                allowed: false,
                determining: failed,
                errors,
            };
        }
        let mut determining: Vec<String> = diagnostics.reason().map(ToString::to_string).collect();
        determining.sort();
        Verdict {
            allowed: response.decision() == CedarDecision::Allow,
            determining,
            errors,
        }
    }

    fn context(
        &self,
        input: RestrictedExpression,
        req: &AuthzRequest<'_>,
        approval: Option<Approval<'_>>,
        counted: &[String],
    ) -> Result<Context, ContextError> {
        let approvers = approval.map_or(&[][..], |a| a.approvers);
        let mut pairs = self.common_context(req.user, req.task, req.mode)?;
        pairs.extend([
            ("input".to_owned(), input),
            ("time".to_owned(), time_record(req.now)?),
            (
                "approved".to_owned(),
                RestrictedExpression::new_bool(approval.is_some()),
            ),
            ("approvers".to_owned(), string_set(approvers)),
            ("classes".to_owned(), string_set(req.classes)),
            (
                "class_level".to_owned(),
                RestrictedExpression::new_long(self.class_level(req.classes)),
            ),
            ("findings".to_owned(), string_set(req.findings)),
        ]);
        pairs.push((
            "session".to_owned(),
            self.session_record(req.session, counted)?,
        ));
        Ok(Context::from_pairs(pairs)?)
    }

    /// The listing context: whatever a call could vary is unknown.
    fn unknown_input_context(
        &self,
        user: Option<&str>,
        task: Option<&TaskScope>,
        mode: Mode,
    ) -> Result<Context, ContextError> {
        let mut pairs = self.common_context(user, task, mode)?;
        for unknown in [
            "input",
            "time",
            "approved",
            "approvers",
            "classes",
            "class_level",
            "findings",
            "session",
        ] {
            pairs.push((
                unknown.to_owned(),
                RestrictedExpression::new_unknown(unknown),
            ));
        }
        Ok(Context::from_pairs(pairs)?)
    }

    /// The context fields that are the same for a call and for listing.
    fn common_context(
        &self,
        user: Option<&str>,
        task: Option<&TaskScope>,
        mode: Mode,
    ) -> Result<Vec<(String, RestrictedExpression)>, ContextError> {
        let mut pairs = Vec::with_capacity(8);
        pairs.push((
            "mode".to_owned(),
            RestrictedExpression::new_string(mode.as_str().to_owned()),
        ));
        if let Some(user) = user {
            pairs.push((
                "user".to_owned(),
                RestrictedExpression::new_string(user.to_owned()),
            ));
        }
        if let Some(task) = task {
            pairs.push(("task".to_owned(), self.task_record(task)?));
        }
        Ok(pairs)
    }

    /// The rank of the most sensitive of `classes`; 0 for none; the highest rank for a name
    /// that is not a class (fail closed).
    fn class_level(&self, classes: &[String]) -> i64 {
        classes
            .iter()
            .map(|c| {
                self.entities
                    .classes
                    .level(c)
                    .map_or(self.entities.highest_class, |l| i64::from(l.0))
            })
            .max()
            .unwrap_or(0)
    }

    /// `context.session`: `{ id, calls, tools, counts, classes, class_level, findings,
    /// untrusted }`; `counts` has every tool the slice's policies read (0 when not called).
    fn session_record(
        &self,
        session: Option<&SessionState>,
        counted: &[String],
    ) -> Result<RestrictedExpression, ContextError> {
        let empty = SessionState::default();
        let s = session.unwrap_or(&empty);
        let count = |n: u64| RestrictedExpression::new_long(i64::try_from(n).unwrap_or(i64::MAX));
        let counts = counted.iter().map(|tool| {
            let n = s.tools.get(tool.as_str()).copied().unwrap_or(0);
            (tool.clone(), count(n))
        });
        let tools: Vec<String> = s.tools.keys().cloned().collect();
        let classes: Vec<String> = s.classes.iter().cloned().collect();
        let findings: Vec<String> = s.findings.iter().cloned().collect();
        let fields = [
            (
                "id".to_owned(),
                RestrictedExpression::new_string(s.session.clone()),
            ),
            ("calls".to_owned(), count(s.calls())),
            ("tools".to_owned(), string_set(&tools)),
            (
                "counts".to_owned(),
                RestrictedExpression::new_record(counts)?,
            ),
            ("classes".to_owned(), string_set(&classes)),
            (
                "class_level".to_owned(),
                RestrictedExpression::new_long(self.class_level(&classes)),
            ),
            ("findings".to_owned(), string_set(&findings)),
            (
                "untrusted".to_owned(),
                RestrictedExpression::new_bool(s.untrusted()),
            ),
        ];
        Ok(RestrictedExpression::new_record(fields)?)
    }

    fn task_record(&self, task: &TaskScope) -> Result<RestrictedExpression, ContextError> {
        let max = task
            .max_clearance
            .map_or(self.entities.highest_class, i64::from);
        let fields = [
            (
                "id".to_owned(),
                RestrictedExpression::new_string(task.id.clone()),
            ),
            ("tools".to_owned(), string_set(&task.tools)),
            (
                "max_clearance".to_owned(),
                RestrictedExpression::new_long(max),
            ),
        ];
        Ok(RestrictedExpression::new_record(fields)?)
    }
}

/// Building the request context failed. Arguments are checked before this, so this means a
/// Warden bug rather than bad input; the call is denied either way.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the policy context: {0}")]
struct ContextError(Box<cedar_policy::ContextCreationError>);

impl From<cedar_policy::ContextCreationError> for ContextError {
    fn from(e: cedar_policy::ContextCreationError) -> Self {
        Self(Box::new(e))
    }
}

impl From<cedar_policy::ExpressionConstructionError> for ContextError {
    fn from(e: cedar_policy::ExpressionConstructionError) -> Self {
        Self(Box::new(e.into()))
    }
}

struct Principals {
    agent: EntityUid,
    user: Option<EntityUid>,
}

fn string_set(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .iter()
            .map(|s| RestrictedExpression::new_string(s.clone())),
    )
}

/// `{ unix, hour, weekday }` in UTC; weekday is ISO (Monday = 1 … Sunday = 7).
fn time_record(now: DateTime<Utc>) -> Result<RestrictedExpression, ContextError> {
    let fields = [
        (
            "unix".to_owned(),
            RestrictedExpression::new_long(now.timestamp()),
        ),
        (
            "hour".to_owned(),
            RestrictedExpression::new_long(i64::from(now.hour())),
        ),
        (
            "weekday".to_owned(),
            RestrictedExpression::new_long(i64::from(now.weekday().number_from_monday())),
        ),
    ];
    Ok(RestrictedExpression::new_record(fields)?)
}

fn policy_of_error(e: &cedar_policy::AuthorizationError) -> &cedar_policy::PolicyId {
    match e {
        cedar_policy::AuthorizationError::PolicyEvaluationError(inner) => inner.policy_id(),
    }
}

fn denial(who: Who<'_>, tool: &ToolName, verdict: Verdict) -> Decision {
    let reason = if !verdict.errors.is_empty() {
        format!(
            "{} could not be evaluated for {}, so the call is denied: {}",
            name_policies(&verdict.determining),
            who.describe(),
            verdict.errors.join("; ")
        )
    } else if verdict.determining.is_empty() {
        format!("no policy permits {} to call tool {tool}", who.describe())
    } else {
        format!(
            "denied by {} for {}",
            name_policies(&verdict.determining),
            who.describe()
        )
    };
    Decision {
        allowed: false,
        policies: verdict.determining,
        reason,
        errors: verdict.errors,
    }
}

fn allowance(req: &AuthzRequest<'_>, policies: Vec<String>) -> Decision {
    let who = match req.user {
        Some(user) => format!("agent {} acting for user {user}", req.agent),
        None => format!("agent {}", req.agent),
    };
    let reason = format!("allowed for {who} by {}", name_policies(&policies));
    Decision {
        allowed: true,
        policies,
        reason,
        errors: Vec::new(),
    }
}

/// "policy a" or "policies a, b".
fn name_policies(ids: &[String]) -> String {
    match ids {
        [one] => format!("policy {one}"),
        many => format!("policies {}", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use serde_json::json;

    /// The context built from arguments must be exactly what the generated schema declares,
    /// or strictly validated policies could meet values of types they were not checked for.
    #[test]
    fn the_context_of_a_call_conforms_to_the_generated_schema() {
        let bundle = fixture::bundle();
        let tool: ToolName = "crm.update_customer".parse().unwrap();
        let slice = &bundle.slices[&tool];
        let input = json!({"id": "c", "email": "a@b", "tags": ["x"], "credit-limit": 12.5,
                           "address": {"city": "Oslo", "zip": "0150", "extra": 1}, "notes": "n", "junk": true});
        let task = TaskScope {
            id: "t".into(),
            tools: vec!["crm.update_customer".into()],
            max_clearance: Some(1),
        };
        let classes = ["regulated".to_owned(), "internal".to_owned()];
        let findings = ["dlp.payment_card".to_owned()];
        let mut session = SessionState::new("support-bot", "id:s");
        session.tools.insert("crm.update_customer".into(), 2);
        session.classes.insert("regulated".into());
        session.findings.insert("injection.role_marker".into());
        let full = AuthzRequest {
            agent: "support-bot",
            user: Some("alice"),
            task: Some(&task),
            tool: &tool,
            input: &input,
            mode: Mode::Sandbox,
            session: Some(&session),
            now: fixture::noon(),
            classes: &classes,
            findings: &findings,
        };
        let minimal = AuthzRequest {
            user: None,
            task: None,
            session: None,
            classes: &[],
            findings: &[],
            ..full
        };
        let approvers = ["carol".to_owned()];
        for (req, approval) in [
            (full, None),
            (minimal, None),
            (
                full,
                Some(Approval {
                    approvers: &approvers,
                }),
            ),
        ] {
            let typed = slice.input.to_cedar(req.input).unwrap();
            // Every count, as the schema declares them; a decision carries only its slice's.
            let counted: Vec<String> = bundle.slices.keys().map(ToString::to_string).collect();
            let context = bundle.context(typed, &req, approval, &counted).unwrap();
            let principal = bundle.entities.agents["support-bot"].uid.clone();
            let checked = Request::new(
                principal,
                slice.action.clone(),
                slice.resource.clone(),
                context,
                Some(bundle.schema.schema()),
            );
            assert!(checked.is_ok(), "{:?}", checked.err());
        }
    }
}
