//! The policy engine, scenario by scenario.

mod common;

use common::*;
use serde_json::json;
use warden_core::{Mode, ToolName};
use warden_policy::{AuthzRequest, PolicyEffect, TaskScope};

#[test]
fn a_support_agent_may_read_a_customer_but_not_refund() {
    let b = bundle();
    let read = decide(
        &b,
        "support-bot",
        None,
        "crm.get_customer",
        json!({"id": "c-1"}),
    );
    assert!(read.allowed, "{}", read.reason);
    assert_eq!(read.policies, ["support-read"]);
    assert_eq!(
        read.reason,
        "allowed for agent support-bot by policy support-read"
    );

    let refund = decide(
        &b,
        "support-bot",
        None,
        "payments.refund",
        json!({"amount": 10, "currency": "EUR", "customer_id": "c-1"}),
    );
    assert!(!refund.allowed);
    assert!(refund.is_default_deny());
    assert_eq!(
        refund.reason,
        "no policy permits agent support-bot to call tool payments.refund"
    );
}

#[test]
fn a_refund_within_the_limit_is_allowed_for_the_finance_agent() {
    let d = decide(
        &bundle(),
        "finance-bot",
        None,
        "payments.refund",
        json!({"amount": 1000, "currency": "EUR", "customer_id": "c-1"}),
    );
    assert!(d.allowed, "{}", d.reason);
    assert_eq!(d.policies, ["finance-refund"]);
}

#[test]
fn a_refund_above_the_limit_is_denied_by_the_refund_limit_policy() {
    let d = decide(
        &bundle(),
        "finance-bot",
        None,
        "payments.refund",
        json!({"amount": 5000, "currency": "EUR", "customer_id": "c-1"}),
    );
    assert!(!d.allowed);
    assert_eq!(d.policies, ["refund-limit"]);
    assert_eq!(
        d.reason,
        "denied by policy refund-limit for agent finance-bot"
    );
}

#[test]
fn an_agent_acting_for_a_user_without_the_finance_role_is_denied() {
    let b = bundle();
    let input = json!({"amount": 10, "currency": "EUR", "customer_id": "c-1"});
    let d = decide(
        &b,
        "finance-bot",
        Some("alice"),
        "payments.refund",
        input.clone(),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        "denied for user alice (on whose behalf agent finance-bot acts): no policy permits user alice to call tool payments.refund"
    );

    let d = decide(&b, "finance-bot", Some("bob"), "payments.refund", input);
    assert!(d.allowed, "{}", d.reason);
    assert_eq!(
        d.reason,
        "allowed for agent finance-bot acting for user bob by policy finance-refund"
    );
}

#[test]
fn a_user_cannot_lend_an_agent_rights_the_agent_lacks() {
    let d = decide(
        &bundle(),
        "support-bot",
        Some("bob"),
        "payments.refund",
        json!({"amount": 10, "currency": "EUR", "customer_id": "c"}),
    );
    assert!(!d.allowed);
    assert!(d.reason.contains("agent support-bot"), "{}", d.reason);
}

#[test]
fn an_agent_without_delegation_cannot_act_for_a_user() {
    let d = decide(
        &bundle(),
        "solo-bot",
        Some("bob"),
        "payments.refund",
        json!({"amount": 10, "currency": "EUR", "customer_id": "c"}),
    );
    assert!(!d.allowed);
    assert!(d.reason.contains("delegation is off"), "{}", d.reason);
}

#[test]
fn unknown_agents_users_and_tools_are_denied_by_name() {
    let b = bundle();
    let d = decide(&b, "mallory", None, "crm.get_customer", json!({"id": "c"}));
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "unknown agent `mallory`")
    );
    let d = decide(
        &b,
        "support-bot",
        Some("eve"),
        "crm.get_customer",
        json!({"id": "c"}),
    );
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "unknown user `eve`")
    );
    let d = decide(&b, "support-bot", None, "crm.drop_database", json!({}));
    assert_eq!(
        (d.allowed, d.reason.as_str()),
        (false, "unknown tool `crm.drop_database`")
    );
}

#[test]
fn arguments_of_the_wrong_type_are_denied_not_errored_open() {
    let b = bundle();
    // A string amount would make `context.input.amount > 1000` an evaluation error, which Cedar
    // skips: the refund-limit forbid would silently not apply. It must never reach Cedar.
    let d = decide(
        &b,
        "finance-bot",
        None,
        "payments.refund",
        json!({"amount": "5000", "currency": "EUR", "customer_id": "c"}),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        "arguments do not fit the input schema of tool payments.refund: at `amount`: expected an integer, got a string"
    );

    let d = decide(
        &b,
        "finance-bot",
        None,
        "payments.refund",
        json!({"currency": "EUR", "customer_id": "c"}),
    );
    assert!(!d.allowed);
    assert!(
        d.reason
            .ends_with("at `amount`: required argument is missing"),
        "{}",
        d.reason
    );

    let d = decide(
        &b,
        "finance-bot",
        None,
        "payments.refund",
        json!({"amount": 10.5, "currency": "EUR", "customer_id": "c"}),
    );
    assert!(!d.allowed, "a fractional amount is not an integer");

    let d = decide(
        &b,
        "finance-bot",
        None,
        "payments.refund",
        json!("refund everything"),
    );
    assert!(!d.allowed);
}

#[test]
fn arguments_the_schema_does_not_type_are_projected_away() {
    let d = decide(
        &bundle(),
        "support-bot",
        None,
        "crm.get_customer",
        json!({"id": "c", "debug": {"deep": [1, 2]}}),
    );
    assert!(d.allowed, "{}", d.reason);
}

#[test]
fn a_policy_naming_an_unknown_tool_fails_validation_at_its_line() {
    let text = "// refunds\n\npermit(principal, action == Warden::Action::\"payments.refund_all\", resource);\n";
    let err = bundle_of(&[("policies/refunds.cedar", text)]).unwrap_err();
    let d = &err.0[0];
    assert_eq!(d.file.to_str(), Some("policies/refunds.cedar"));
    assert_eq!((d.line, d.column), (3, 29), "{d}");
    assert!(
        d.message
            .contains("unrecognized action `Warden::Action::\"payments.refund_all\"`"),
        "{d}"
    );
}

#[test]
fn a_policy_testing_an_argument_the_tool_does_not_have_fails_validation() {
    let text = "@id(\"colour\")\npermit(principal, action == Warden::Action::\"crm.get_customer\", resource)\nwhen { context.input.colour == \"red\" };\n";
    let err = bundle_of(&[("p.cedar", text)]).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    let d = &err.0[0];
    assert_eq!(d.line, 3, "{d}");
    assert!(d.message.contains("`input.colour`"), "{d}");
    assert_eq!(d.help.as_deref(), Some("did you mean `id`?"));
}

#[test]
fn a_policy_comparing_an_argument_with_the_wrong_type_fails_validation() {
    let text = "permit(principal, action == Warden::Action::\"payments.refund\", resource)\nwhen { context.input.amount == \"lots\" };";
    let err = bundle_of(&[("p.cedar", text)]).unwrap_err();
    assert_eq!(err.0[0].line, 2, "{err}");
}

#[test]
fn a_syntax_error_is_reported_at_its_line_and_column() {
    let err = bundle_of(&[(
        "p.cedar",
        "permit(principal, action, resource);\nforbid(principal, action, resource) when { 1 + };\n",
    )])
    .unwrap_err();
    assert_eq!((err.0[0].line, err.0[0].column), (2, 48), "{err}");
}

#[test]
fn every_problem_in_every_file_is_reported() {
    let err = bundle_of(&[
        (
            "a.cedar",
            "permit(principal, action == Warden::Action::\"nope.x\", resource);",
        ),
        (
            "b.cedar",
            "permit(principal, action, resource) when { context.input.x };",
        ),
        ("c.cedar", "permit(principal, action"),
    ])
    .unwrap_err();
    let files: Vec<&str> = err.iter().filter_map(|d| d.file.to_str()).collect();
    assert!(
        files.contains(&"a.cedar") && files.contains(&"b.cedar") && files.contains(&"c.cedar"),
        "{err}"
    );
}

#[test]
fn policies_without_an_id_are_named_after_their_file() {
    let text = "permit(principal in Warden::Role::\"support\", action == Warden::Action::\"crm.get_customer\", resource);\n\
                forbid(principal, action == Warden::Action::\"email.send\", resource);";
    let b = bundle_of(&[("policies/basics.cedar", text)]).unwrap();
    let ids: Vec<&str> = b.policies().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["basics:1", "basics:2"]);
    assert_eq!(
        b.policy("basics:2").map(|p| (p.line, p.effect)),
        Some((2, PolicyEffect::Forbid))
    );
    let d = decide(
        &b,
        "support-bot",
        None,
        "crm.get_customer",
        json!({"id": "c"}),
    );
    assert_eq!(d.policies, ["basics:1"]);
}

#[test]
fn a_duplicate_id_is_an_error_at_both_places() {
    let a = "@id(\"x\")\npermit(principal, action, resource);";
    let b = "// second\n@id(\"x\")\nforbid(principal, action, resource);";
    let err = bundle_of(&[("a.cedar", a), ("b.cedar", b)]).unwrap_err();
    let places: Vec<(String, usize)> = err
        .iter()
        .map(|d| (d.file.display().to_string(), d.line))
        .collect();
    assert_eq!(
        places,
        [("a.cedar".to_owned(), 1), ("b.cedar".to_owned(), 2)],
        "{err}"
    );
    assert!(
        err.0[0].message.contains("used again at b.cedar:2"),
        "{err}"
    );
    assert!(
        err.0[1].message.contains("already used at a.cedar:1"),
        "{err}"
    );
}

#[test]
fn templates_are_rejected() {
    let err = bundle_of(&[(
        "t.cedar",
        "permit(principal == ?principal, action, resource);",
    )])
    .unwrap_err();
    assert!(
        err.0[0].message.contains("templates are not supported"),
        "{err}"
    );
}

#[test]
fn with_no_policies_everything_is_denied_and_nothing_is_listed() {
    let b = bundle_of(&[]).unwrap();
    for tool in [
        "crm.get_customer",
        "crm.update_customer",
        "payments.refund",
        "email.send",
    ] {
        let d = decide(
            &b,
            "support-bot",
            None,
            tool,
            json!({"id": "c", "amount": 1, "currency": "EUR", "customer_id": "c", "to": "a", "subject": "s", "body": "b"}),
        );
        assert!(!d.allowed && d.is_default_deny(), "{tool}: {}", d.reason);
        assert!(!may_list(&b, "support-bot", None, tool), "{tool}");
        assert!(!may_list(&b, "finance-bot", Some("bob"), tool), "{tool}");
    }
}

#[test]
fn a_file_of_only_comments_adds_no_policy() {
    let b = bundle_of(&[("empty.cedar", "// nothing yet\n")]).unwrap();
    assert_eq!(b.policies().count(), 0);
    assert!(
        !decide(
            &b,
            "support-bot",
            None,
            "crm.get_customer",
            json!({"id": "c"})
        )
        .allowed
    );
}

#[test]
fn a_tool_forbidden_unconditionally_is_hidden_and_one_permitted_for_small_amounts_is_listed() {
    let text = r#"
        permit(principal, action in Warden::Action::"upstream:email", resource);
        forbid(principal, action == Warden::Action::"email.send", resource);
        permit(principal, action == Warden::Action::"payments.refund", resource) when { context.input.amount < 100 };
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap();
    assert!(!may_list(&b, "support-bot", None, "email.send"));
    assert!(may_list(&b, "support-bot", None, "payments.refund"));
    assert!(
        !may_list(&b, "support-bot", None, "crm.get_customer"),
        "no permit at all"
    );
    // Listing promises nothing about particular arguments.
    let big = decide(
        &b,
        "support-bot",
        None,
        "payments.refund",
        json!({"amount": 500, "currency": "EUR", "customer_id": "c"}),
    );
    assert!(!big.allowed);
}

#[test]
fn listing_checks_the_user_too() {
    let b = bundle();
    assert!(may_list(&b, "finance-bot", None, "payments.refund"));
    assert!(may_list(&b, "finance-bot", Some("bob"), "payments.refund"));
    assert!(!may_list(
        &b,
        "finance-bot",
        Some("alice"),
        "payments.refund"
    ));
    assert!(!may_list(&b, "mallory", None, "payments.refund"));
}

#[test]
fn a_time_window_or_approval_obligation_does_not_hide_a_tool() {
    let text = r#"
        permit(principal, action == Warden::Action::"email.send", resource) when { context.time.hour >= 9 && context.time.hour < 17 };
        permit(principal, action == Warden::Action::"payments.refund", resource);
        @approval("finance")
        forbid(principal, action == Warden::Action::"payments.refund", resource) unless { context.approved };
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap();
    assert!(may_list(&b, "support-bot", None, "email.send"));
    assert!(may_list(&b, "support-bot", None, "payments.refund"));
}

#[test]
fn an_approval_obligation_denies_until_approved_and_its_annotation_is_reachable() {
    let text = r#"
        @id("refunds")
        permit(principal in Warden::Role::"finance", action == Warden::Action::"payments.refund", resource);
        @id("big-refund-approval") @approval("finance") @approvers("2")
        forbid(principal, action == Warden::Action::"payments.refund", resource)
        when { context.input.amount > 1000 } unless { context.approvers.contains("carol") || context.approved && context.approvers.containsAll(["dave", "erin"]) };
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap();
    let tool: ToolName = "payments.refund".parse().unwrap();
    let input = json!({"amount": 5000, "currency": "EUR", "customer_id": "c"});
    let req = AuthzRequest {
        agent: "finance-bot",
        user: None,
        task: None,
        tool: &tool,
        input: &input,
        mode: Mode::Execute,
        session: None,
        now: noon(),
        classes: &[],
        findings: &[],
    };
    let pending = b.authorize(&req);
    assert_eq!(pending.policies, ["big-refund-approval"]);
    assert_eq!(
        b.annotation("big-refund-approval", "approval"),
        Some("finance")
    );
    assert_eq!(
        b.annotations("big-refund-approval")
            .and_then(|a| a.get("approvers"))
            .map(String::as_str),
        Some("2")
    );

    let approved = b.authorize_approved(&req, &["dave".to_owned(), "erin".to_owned()]);
    assert!(approved.allowed, "{}", approved.reason);
    let half = b.authorize_approved(&req, &["dave".to_owned()]);
    assert!(!half.allowed);
}

#[test]
fn the_deciding_policies_text_is_available_for_explain() {
    let b = bundle();
    let text = b.policy_text("refund-limit").unwrap();
    assert!(text.starts_with("@id(\"refund-limit\")\nforbid("), "{text}");
    assert!(
        text.ends_with("when { context.input.amount > 1000 };"),
        "{text}"
    );
    assert_eq!(b.policy("refund-limit").map(|p| p.line), Some(8));
    assert_eq!(b.policy_text("nope"), None);
}

#[test]
fn each_tool_evaluates_only_the_policies_that_can_apply_to_it() {
    let text = r#"
        @id("all") forbid(principal, action, resource) when { context.mode == "suggest" };
        @id("crm") permit(principal, action in Warden::Action::"upstream:crm", resource);
        @id("critical") forbid(principal, action in [Warden::Action::"risk:critical", Warden::Action::"risk:high"], resource) when { principal is Warden::Agent && principal.clearance < 1 };
        @id("read") permit(principal, action == Warden::Action::"crm.get_customer", resource);
        @id("mail") permit(principal, action == Warden::Action::"email.send", resource);
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap_or_else(|d| panic!("{d}"));
    let slice = |t: &str| {
        let mut ids = b.policies_for_tool(&t.parse().unwrap());
        ids.sort();
        ids
    };
    assert_eq!(slice("crm.get_customer"), ["all", "crm", "read"]);
    assert_eq!(slice("crm.update_customer"), ["all", "critical", "crm"]);
    assert_eq!(slice("payments.refund"), ["all", "critical"]);
    assert_eq!(slice("email.send"), ["all", "mail"]);
}

#[test]
fn an_evaluation_error_denies_even_when_a_permit_matches() {
    let text = r#"
        @id("everyone") permit(principal, action, resource);
        @id("overflow") forbid(principal, action == Warden::Action::"payments.refund", resource)
        when { context.input.amount * 1000000000000 > 5000000000000000 };
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap();
    let d = decide(
        &b,
        "finance-bot",
        None,
        "payments.refund",
        json!({"amount": 100000000, "currency": "EUR", "customer_id": "c"}),
    );
    assert!(!d.allowed);
    assert_eq!(d.policies, ["overflow"]);
    assert_eq!(d.errors.len(), 1);
    assert!(
        d.reason
            .starts_with("policy overflow could not be evaluated for agent finance-bot"),
        "{}",
        d.reason
    );
}

#[test]
fn odd_argument_names_nested_records_sets_and_decimals_reach_policies() {
    let text = r#"
        permit(principal, action == Warden::Action::"crm.update_customer", resource)
        when {
            context.input has "credit-limit" && context.input["credit-limit"].lessThanOrEqual(decimal("250.50")) &&
            context.input has address && context.input.address.city == "Oslo" &&
            context.input has tags && context.input.tags.contains("vip")
        };
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap_or_else(|d| panic!("{d}"));
    let call = |limit: serde_json::Value| {
        decide(
            &b,
            "support-bot",
            None,
            "crm.update_customer",
            json!({
                "id": "c", "credit-limit": limit, "address": {"city": "Oslo"}, "tags": ["vip", "eu"], "notes": null
            }),
        )
    };
    assert!(call(json!(250.5)).allowed, "{}", call(json!(250.5)).reason);
    assert!(call(json!(100)).allowed);
    assert!(!call(json!(250.51)).allowed);
    let precise = call(json!(250.50001));
    assert!(
        !precise.allowed && precise.reason.contains("cannot be represented exactly"),
        "{}",
        precise.reason
    );
}

#[test]
fn context_carries_mode_user_task_session_and_time() {
    let text = r#"
        permit(principal, action == Warden::Action::"email.send", resource)
        when {
            context.mode == "suggest" && context has user && context.user == "alice" &&
            context has task && context.task.tools.contains(resource.name) && context.task.max_clearance == 4 &&
            context.session.id == "s-1" &&
            context.time.weekday == 3 && context.time.hour == 12 && context.time.unix == 1767787200
        };
        permit(principal is Warden::User, action, resource);
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap_or_else(|d| panic!("{d}"));
    let tool: ToolName = "email.send".parse().unwrap();
    let input = json!({"to": "x@example.com", "subject": "hi", "body": "hello"});
    let task = TaskScope {
        id: "t-1".into(),
        tools: vec!["email.send".into()],
        max_clearance: None,
    };
    let session = warden_core::session::SessionState::new("support-bot", "s-1");
    let mut req = AuthzRequest {
        agent: "support-bot",
        user: Some("alice"),
        task: Some(&task),
        tool: &tool,
        input: &input,
        mode: Mode::Suggest,
        session: Some(&session),
        now: noon(),
        classes: &[],
        findings: &[],
    };
    let d = b.authorize(&req);
    assert!(d.allowed, "{}", d.reason);
    req.session = None;
    assert!(!b.authorize(&req).allowed);
}

#[test]
fn policies_can_use_agent_tool_and_upstream_attributes() {
    let text = r#"
        permit(principal is Warden::Agent, action, resource is Warden::Tool)
        when {
            principal.clearance >= 2 && principal.clearance_name == "confidential" && principal.delegation &&
            resource.risk_level == 3 && resource.risk == "critical" && !resource.reversible &&
            resource in Warden::Upstream::"payments" && resource.upstream == "payments"
        };
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap_or_else(|d| panic!("{d}"));
    let input = json!({"amount": 1, "currency": "EUR", "customer_id": "c"});
    assert!(decide(&b, "finance-bot", None, "payments.refund", input.clone()).allowed);
    assert!(
        !decide(&b, "support-bot", None, "payments.refund", input).allowed,
        "clearance internal = 1"
    );
}

#[test]
fn the_bundle_hash_follows_policy_text_and_file_names() {
    let a = bundle();
    let again = bundle();
    assert_eq!(a.hash(), again.hash());
    assert_eq!(a.hash().len(), 64);
    let edited = bundle_of(&[("policies/main.cedar", &POLICIES.replace("1000", "2000"))]).unwrap();
    assert_ne!(a.hash(), edited.hash());
    let renamed = bundle_of(&[("policies/other.cedar", POLICIES)]).unwrap();
    assert_ne!(a.hash(), renamed.hash());
    let moved = bundle_of(&[("/elsewhere/main.cedar", POLICIES)]).unwrap();
    assert_eq!(
        a.hash(),
        moved.hash(),
        "only the file name counts, not the folder"
    );
}

#[test]
fn the_schema_text_parses_back_and_names_every_tool() {
    let b = bundle();
    let text = b.schema().text();
    assert!(text.contains(
        "action \"payments.refund\" in [\"upstream:payments\", \"risk:critical\"] appliesTo {"
    ));
    assert!(text.contains("\"credit-limit\"?: decimal"));
    assert!(cedar_policy::Schema::from_cedarschema_str(text).is_ok());
}

#[test]
fn policies_see_the_data_classes_and_findings_of_the_arguments_and_the_vendor() {
    let text = r#"
        @id("mail") permit(principal, action == Warden::Action::"email.send", resource);
        @id("no-regulated-to-mailco")
        forbid(principal, action, resource)
        when { context.classes.contains("regulated") && resource.vendor == "mailco" };
        @id("no-cards")
        forbid(principal, action, resource) when { context.findings.contains("dlp.payment_card") };
        @id("within-vendor-clearance")
        forbid(principal, action, resource) when { context.class_level > resource.vendor_clearance }
        unless { context.classes.isEmpty() };
    "#;
    let b = bundle_of(&[("p.cedar", text)]).unwrap_or_else(|d| panic!("{d}"));
    let tool: ToolName = "email.send".parse().unwrap();
    let input = json!({"to": "a@example.com", "subject": "s", "body": "b"});
    let decide = |classes: &[&str], findings: &[&str]| {
        let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
        let findings: Vec<String> = findings.iter().map(|c| c.to_string()).collect();
        b.authorize(&AuthzRequest {
            agent: "support-bot",
            user: None,
            task: None,
            tool: &tool,
            input: &input,
            mode: Mode::Execute,
            session: None,
            now: noon(),
            classes: &classes,
            findings: &findings,
        })
    };
    assert!(decide(&[], &[]).allowed);
    assert!(
        decide(&["internal"], &[]).allowed,
        "mailco is cleared for internal"
    );
    let regulated = decide(&["internal", "regulated"], &[]);
    let mut policies = regulated.policies.clone();
    policies.sort();
    assert_eq!(
        policies,
        ["no-regulated-to-mailco", "within-vendor-clearance"]
    );
    assert_eq!(decide(&[], &["dlp.payment_card"]).policies, ["no-cards"]);
    assert_eq!(
        decide(&["confidential"], &[]).policies,
        ["within-vendor-clearance"]
    );
    assert!(
        !decide(&["no-such-class"], &[]).allowed,
        "an unknown class ranks highest"
    );
    assert!(
        may_list(&b, "support-bot", None, "email.send"),
        "classes are unknown when listing"
    );
}

#[test]
fn a_policy_on_data_classes_must_use_them_as_declared() {
    let text = r#"forbid(principal, action, resource) when { context.classes == "regulated" };"#;
    assert!(bundle_of(&[("p.cedar", text)]).is_err());
    let text =
        r#"forbid(principal, action, resource) when { resource.vendor_clearance == "internal" };"#;
    assert!(bundle_of(&[("p.cedar", text)]).is_err());
}
