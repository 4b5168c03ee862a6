//! `context.session`: policies that depend on what the agent's session did before this call.

mod common;

use common::*;
use serde_json::{Value, json};
use warden_core::session::{SessionState, UNTRUSTED_OUTPUT};
use warden_core::{Mode, ToolName};
use warden_policy::{AuthzRequest, Decision, PolicyBundle};

const SESSION_POLICIES: &str = r#"
@id("support-email")
permit(principal in Warden::Role::"support", action == Warden::Action::"email.send", resource);

// After untrusted content (an email, a result with injected instructions), mail to anyone
// outside example.com waits for a support approver.
@id("external-email-after-untrusted-content")
@approval("support")
forbid(principal, action == Warden::Action::"email.send", resource)
when { context.session.untrusted && !(context.input.to like "*@example.com") }
unless { context.approved };

@id("three-refunds-per-session")
forbid(principal, action == Warden::Action::"payments.refund", resource)
when { context.session.counts["payments.refund"] >= 3 };

@id("no-refunds-after-regulated-data")
forbid(principal, action == Warden::Action::"payments.refund", resource)
when { context.session.classes.contains("regulated") };
"#;

fn session_bundle() -> PolicyBundle {
    bundle_of(&[
        ("policies/main.cedar", POLICIES),
        ("policies/session.cedar", SESSION_POLICIES),
    ])
    .unwrap_or_else(|d| panic!("{d}"))
}

fn decide_in(
    bundle: &PolicyBundle,
    agent: &str,
    tool: &str,
    input: Value,
    session: Option<&SessionState>,
) -> Decision {
    let tool: ToolName = tool.parse().expect("valid tool name");
    bundle.authorize(&AuthzRequest {
        agent,
        user: None,
        task: None,
        tool: &tool,
        input: &input,
        mode: Mode::Execute,
        session,
        now: noon(),
        classes: &[],
        findings: &[],
    })
}

fn session_with(agent: &str, tools: &[(&str, u64)], findings: &[&str]) -> SessionState {
    let mut s = SessionState::new(agent, "id:s-1");
    for (tool, n) in tools {
        s.tools.insert((*tool).to_owned(), *n);
    }
    s.findings = findings.iter().map(|f| (*f).to_owned()).collect();
    s
}

fn external_mail() -> Value {
    json!({"to": "someone@elsewhere.test", "subject": "hi", "body": "hello"})
}

#[test]
fn after_untrusted_content_external_email_needs_approval_but_internal_email_does_not() {
    let b = session_bundle();
    let fresh = session_with("support-bot", &[], &[]);
    assert!(
        decide_in(
            &b,
            "support-bot",
            "email.send",
            external_mail(),
            Some(&fresh)
        )
        .allowed
    );
    assert!(decide_in(&b, "support-bot", "email.send", external_mail(), None).allowed);

    let after_inbox = session_with(
        "support-bot",
        &[("crm.get_customer", 1)],
        &[UNTRUSTED_OUTPUT],
    );
    let d = decide_in(
        &b,
        "support-bot",
        "email.send",
        external_mail(),
        Some(&after_inbox),
    );
    assert!(!d.allowed);
    assert_eq!(d.policies, ["external-email-after-untrusted-content"]);
    assert_eq!(
        b.annotation("external-email-after-untrusted-content", "approval"),
        Some("support")
    );
    let tool: ToolName = "email.send".parse().unwrap();
    let input = external_mail();
    let req = AuthzRequest {
        agent: "support-bot",
        user: None,
        task: None,
        tool: &tool,
        input: &input,
        mode: Mode::Execute,
        session: Some(&after_inbox),
        now: noon(),
        classes: &[],
        findings: &[],
    };
    assert!(
        b.authorize_approved(&req, &["carol".to_owned()]).allowed,
        "approval lifts it"
    );

    let internal = json!({"to": "c001@example.com", "subject": "hi", "body": "hello"});
    assert!(
        decide_in(
            &b,
            "support-bot",
            "email.send",
            internal,
            Some(&after_inbox)
        )
        .allowed
    );
}

#[test]
fn an_injection_finding_makes_the_session_untrusted() {
    let b = session_bundle();
    let injected = session_with("support-bot", &[], &["injection.ignore_instructions"]);
    let d = decide_in(
        &b,
        "support-bot",
        "email.send",
        external_mail(),
        Some(&injected),
    );
    assert_eq!(d.policies, ["external-email-after-untrusted-content"]);
    let merely_personal = session_with("support-bot", &[], &["dlp.email"]);
    assert!(
        decide_in(
            &b,
            "support-bot",
            "email.send",
            external_mail(),
            Some(&merely_personal)
        )
        .allowed
    );
}

#[test]
fn a_fourth_refund_in_one_session_is_denied() {
    let b = session_bundle();
    let refund = || json!({"amount": 100, "currency": "EUR", "customer_id": "C1"});
    for done in 0..3 {
        let s = session_with(
            "finance-bot",
            &[("payments.refund", done), ("crm.get_customer", 7)],
            &[],
        );
        let d = decide_in(&b, "finance-bot", "payments.refund", refund(), Some(&s));
        assert!(
            d.allowed,
            "refund {} of the session: {}",
            done + 1,
            d.reason
        );
    }
    let s = session_with("finance-bot", &[("payments.refund", 3)], &[]);
    let d = decide_in(&b, "finance-bot", "payments.refund", refund(), Some(&s));
    assert!(!d.allowed);
    assert_eq!(d.policies, ["three-refunds-per-session"]);
}

#[test]
fn data_classes_seen_earlier_in_the_session_are_visible() {
    let b = session_bundle();
    let mut s = session_with("finance-bot", &[("crm.get_customer", 1)], &[]);
    s.classes.insert("regulated".into());
    let refund = json!({"amount": 100, "currency": "EUR", "customer_id": "C1"});
    let d = decide_in(&b, "finance-bot", "payments.refund", refund, Some(&s));
    assert_eq!(d.policies, ["no-refunds-after-regulated-data"]);
}

#[test]
fn session_fields_are_typed_so_a_misspelt_one_fails_validation() {
    let bad = r#"forbid(principal, action == Warden::Action::"payments.refund", resource)
when { context.session.refunds > 3 };"#;
    assert!(bundle_of(&[("policies/bad.cedar", bad)]).is_err());
    let unknown_tool = r#"forbid(principal, action == Warden::Action::"payments.refund", resource)
when { context.session.counts["payments.refnud"] > 3 };"#;
    assert!(bundle_of(&[("policies/bad.cedar", unknown_tool)]).is_err());
    let ok = r#"forbid(principal, action, resource)
when { context.session.calls > 100 || context.session.class_level > 3 || context.session.tools.contains("crm.get_customer") || context.session.findings.contains("untrusted_output") || context.session.id == "x" };"#;
    assert!(bundle_of(&[("policies/ok.cedar", ok)]).is_ok());
}

#[test]
fn listing_does_not_depend_on_the_session() {
    // A tool forbidden only for some sessions is still listed; refusing happens at call time.
    let b = session_bundle();
    assert!(may_list(&b, "finance-bot", None, "payments.refund"));
    assert!(may_list(&b, "support-bot", None, "email.send"));
}
