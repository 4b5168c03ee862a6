//! `warden policy test`: run case files against a bundle.
//!
//! ```toml
//! [[case]]
//! name = "support may read a customer"
//! agent = "support-bot"
//! user = "alice"                 # optional
//! tool = "crm.get_customer"
//! input = { id = "c-1" }         # optional, default {}
//! expect = "allow"               # "allow" | "deny" | "approval"
//! policies = ["support-read"]    # optional: the deciding policy ids, in any order
//! # optional: mode (default: the agent's), session, time (RFC 3339; default a fixed Wednesday
//! # 12:00 UTC, so results do not depend on when tests run), approvers (re-authorize as approved),
//! # task = { id = "t1", tools = ["crm.get_customer"], max_clearance = "internal" },
//! # classes = ["regulated"] and findings = ["dlp.payment_card"] (what the gateway's detectors
//! # would find in `input`; default none)
//! ```
//!
//! `approval` expects a deny whose deciding policies all carry `@approval(...)` (the call would
//! be parked for approval rather than refused) and that re-authorized as approved — by the case's
//! `approvers`, if any — is allowed.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use toml::Spanned;
use warden_core::session::SessionState;
use warden_core::{Diagnostic, Diagnostics, Mode, ToolName};

use crate::bundle::PolicyBundle;
use crate::decide::{AuthzRequest, Decision, TaskScope};

/// What a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    Allow,
    Deny,
    /// Denied only by policies that carry `@approval`: the call would wait for approval.
    Approval,
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expectation::Allow => "allow",
            Expectation::Deny => "deny",
            Expectation::Approval => "approval",
        })
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    pub name: String,
    /// Line of the case's `name` in the test file.
    pub line: usize,
    pub expected: Expectation,
    pub decision: Decision,
    /// Why the case failed; `None` when it passed.
    pub failure: Option<String>,
}

impl CaseOutcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The results of one test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    pub file: PathBuf,
    pub cases: Vec<CaseOutcome>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
    pub fn all_passed(&self) -> bool {
        self.failed() == 0
    }
}

impl fmt::Display for TestReport {
    /// One line per case, then `N passed, M failed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in &self.cases {
            match &case.failure {
                None => writeln!(f, "ok    {}", case.name)?,
                Some(why) => writeln!(
                    f,
                    "FAIL  {} ({}:{}): {why}",
                    case.name,
                    self.file.display(),
                    case.line
                )?,
            }
        }
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    case: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    agent: Spanned<String>,
    user: Option<Spanned<String>>,
    tool: Spanned<String>,
    #[serde(default)]
    input: serde_json::Value,
    expect: Expectation,
    policies: Option<Vec<String>>,
    mode: Option<Mode>,
    session: Option<RawSession>,
    time: Option<Spanned<String>>,
    approvers: Option<Vec<String>>,
    task: Option<RawTask>,
    #[serde(default)]
    classes: Vec<Spanned<String>>,
    #[serde(default)]
    findings: Vec<String>,
}

/// `session = "id"`, or what the session did before the call:
/// `session = { id = "s", tools = { "email.read_inbox" = 1 }, classes = [...], findings = [...] }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSession {
    Id(String),
    Seen(SeenSession),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeenSession {
    #[serde(default)]
    id: String,
    #[serde(default)]
    tools: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    classes: Vec<String>,
    #[serde(default)]
    findings: Vec<String>,
}

impl RawSession {
    fn into_state(self, agent: &str) -> SessionState {
        match self {
            RawSession::Id(id) => SessionState::new(agent, &id),
            RawSession::Seen(seen) => {
                let mut state = SessionState::new(agent, &seen.id);
                state.tools = seen.tools;
                state.classes = seen.classes.into_iter().collect();
                state.findings = seen.findings.into_iter().collect();
                state
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: String,
    #[serde(default)]
    tools: Vec<String>,
    max_clearance: Option<Spanned<String>>,
}

/// A case checked against the bundle and ready to run.
struct Case {
    name: String,
    line: usize,
    agent: String,
    user: Option<String>,
    tool: ToolName,
    input: serde_json::Value,
    expect: Expectation,
    policies: Option<Vec<String>>,
    mode: Mode,
    session: Option<SessionState>,
    now: DateTime<Utc>,
    approvers: Option<Vec<String>>,
    task: Option<TaskScope>,
    classes: Vec<String>,
    findings: Vec<String>,
}

/// Run every case of a test file. Problems with the file itself (syntax, an agent, user, tool or
/// data class that does not exist) are diagnostics; a case whose decision differs from its
/// expectation is a failure in the report.
pub fn run_policy_tests(bundle: &PolicyBundle, file: &Path) -> Result<TestReport, Diagnostics> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Diagnostic::new(file, 0, 0, format!("cannot read policy test file: {e}")))?;
    let raw: CaseFile = toml::from_str(&text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        Diagnostic::at_offset(file, &text, offset, e.message().trim())
    })?;
    let mut diags = Diagnostics::default();
    let cases: Vec<Case> = raw
        .case
        .into_iter()
        .filter_map(|c| check_case(bundle, file, &text, c, &mut diags))
        .collect();
    if !diags.is_empty() {
        return Err(diags);
    }
    let cases = cases.iter().map(|c| run_case(bundle, c)).collect();
    Ok(TestReport {
        file: file.to_path_buf(),
        cases,
    })
}

/// A fixed default clock (Wednesday 2026-01-07 12:00 UTC) keeps test results reproducible.
const DEFAULT_TIME: i64 = 1_767_787_200;

fn check_case(
    bundle: &PolicyBundle,
    file: &Path,
    text: &str,
    raw: RawCase,
    diags: &mut Diagnostics,
) -> Option<Case> {
    let before = diags.len();
    let mut error_at = |span: std::ops::Range<usize>, message: String| {
        diags.push(Diagnostic::at_offset(file, text, span.start, message));
    };
    let agent = bundle.entities.agents.get(raw.agent.get_ref());
    if agent.is_none() {
        error_at(
            raw.agent.span(),
            format!("unknown agent `{}`", raw.agent.get_ref()),
        );
    }
    if let Some(user) = raw
        .user
        .as_ref()
        .filter(|u| !bundle.entities.users.contains_key(u.get_ref()))
    {
        error_at(user.span(), format!("unknown user `{}`", user.get_ref()));
    }
    let tool = raw
        .tool
        .get_ref()
        .parse::<ToolName>()
        .ok()
        .filter(|t| bundle.slices.contains_key(t));
    if tool.is_none() {
        error_at(
            raw.tool.span(),
            format!("unknown tool `{}`", raw.tool.get_ref()),
        );
    }
    let now = match &raw.time {
        None => DateTime::from_timestamp(DEFAULT_TIME, 0).unwrap_or_default(),
        Some(t) => match DateTime::parse_from_rfc3339(t.get_ref()) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                error_at(t.span(), format!("`time` is not an RFC 3339 time: {e}"));
                DateTime::default()
            }
        },
    };
    let task = raw.task.map(|t| {
        let max_clearance = t.max_clearance.and_then(|c| {
            let level = bundle.entities.classes.level(c.get_ref());
            if level.is_none() {
                error_at(c.span(), format!("unknown data class `{}`", c.get_ref()));
            }
            level.map(|l| l.0)
        });
        TaskScope {
            id: t.id,
            tools: t.tools,
            max_clearance,
        }
    });
    for class in &raw.classes {
        if bundle.entities.classes.level(class.get_ref()).is_none() {
            error_at(
                class.span(),
                format!("unknown data class `{}`", class.get_ref()),
            );
        }
    }
    if diags.len() > before {
        return None;
    }
    let (tool, agent_mode) = (tool?, agent?.mode);
    let session = raw.session.map(|s| s.into_state(raw.agent.get_ref()));
    Some(Case {
        line: warden_core::diag::line_col(text, raw.name.span().start).0,
        name: raw.name.into_inner(),
        agent: raw.agent.into_inner(),
        user: raw.user.map(Spanned::into_inner),
        input: raw.input,
        expect: raw.expect,
        policies: raw.policies,
        mode: raw.mode.unwrap_or(agent_mode),
        session,
        approvers: raw.approvers,
        task,
        now,
        tool,
        classes: raw.classes.into_iter().map(Spanned::into_inner).collect(),
        findings: raw.findings,
    })
}

fn run_case(bundle: &PolicyBundle, case: &Case) -> CaseOutcome {
    let req = AuthzRequest {
        agent: &case.agent,
        user: case.user.as_deref(),
        task: case.task.as_ref(),
        tool: &case.tool,
        input: &case.input,
        mode: case.mode,
        session: case.session.as_ref(),
        now: case.now,
        classes: &case.classes,
        findings: &case.findings,
    };
    let approvers = case.approvers.as_deref();
    // An approval case decides first without approval; its approvers are for the re-check.
    let decision = match (case.expect, approvers) {
        (Expectation::Approval, _) | (_, None) => bundle.authorize(&req),
        (_, Some(approvers)) => bundle.authorize_approved(&req, approvers),
    };
    let failure = match case.expect {
        Expectation::Approval => {
            approval_failure(bundle, &req, approvers.unwrap_or_default(), &decision)
        }
        expect => outcome_failure(expect, &decision),
    }
    .or_else(|| policies_failure(case.policies.as_deref(), &decision));
    CaseOutcome {
        name: case.name.clone(),
        line: case.line,
        expected: case.expect,
        decision,
        failure,
    }
}

fn outcome_failure(expect: Expectation, decision: &Decision) -> Option<String> {
    let ok = match expect {
        Expectation::Allow => decision.allowed,
        Expectation::Deny | Expectation::Approval => !decision.allowed,
    };
    (!ok).then(|| {
        let got = if decision.allowed { "allow" } else { "deny" };
        format!("expected {expect}, got {got}: {}", decision.reason)
    })
}

/// An approval case: denied now only by `@approval` policies, and allowed once approved.
fn approval_failure(
    bundle: &PolicyBundle,
    req: &AuthzRequest<'_>,
    approvers: &[String],
    decision: &Decision,
) -> Option<String> {
    if let Some(failure) = outcome_failure(Expectation::Approval, decision) {
        return Some(failure);
    }
    let only_approval_policies = !decision.policies.is_empty()
        && decision.errors.is_empty()
        && decision
            .policies
            .iter()
            .all(|id| bundle.annotation(id, "approval").is_some());
    if !only_approval_policies {
        return Some(format!(
            "expected approval, got a plain deny: {}",
            decision.reason
        ));
    }
    let approved = bundle.authorize_approved(req, approvers);
    (!approved.allowed).then(|| {
        format!(
            "expected approval, but even approved the call is denied: {}",
            approved.reason
        )
    })
}

fn policies_failure(expected: Option<&[String]>, decision: &Decision) -> Option<String> {
    let mut want = expected?.to_vec();
    want.sort();
    let mut got = decision.policies.clone();
    got.sort();
    (want != got).then(|| {
        format!(
            "expected deciding policies [{}], got [{}]",
            want.join(", "),
            got.join(", ")
        )
    })
}
