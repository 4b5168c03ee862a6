//! `warden policy test` case files.

mod common;

use common::*;
use warden_policy::{Expectation, load_policy_dir, run_policy_tests};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn passing_and_failing_cases_are_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "refunds.toml",
        r#"
[[case]]
name = "support reads a customer"
agent = "support-bot"
tool = "crm.get_customer"
input = { id = "c-1" }
expect = "allow"
policies = ["support-read"]

[[case]]
name = "a big refund is denied by the limit"
agent = "finance-bot"
tool = "payments.refund"
input = { amount = 5000, currency = "EUR", customer_id = "c-1" }
expect = "deny"
policies = ["refund-limit"]

[[case]]
name = "alice cannot refund through the finance bot"
agent = "finance-bot"
user = "alice"
tool = "payments.refund"
input = { amount = 10, currency = "EUR", customer_id = "c-1" }
expect = "deny"

[[case]]
name = "wrongly expects support to refund"
agent = "support-bot"
tool = "payments.refund"
input = { amount = 10, currency = "EUR", customer_id = "c-1" }
expect = "allow"

[[case]]
name = "wrong deciding policy"
agent = "finance-bot"
tool = "payments.refund"
input = { amount = 10, currency = "EUR", customer_id = "c-1" }
expect = "allow"
policies = ["support-read"]
"#,
    );
    let report = run_policy_tests(&bundle(), &file).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!((report.passed(), report.failed()), (3, 2), "{report}");
    let failed: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| !c.passed())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        failed,
        ["wrongly expects support to refund", "wrong deciding policy"]
    );
    let text = report.to_string();
    assert!(
        text.contains("FAIL  wrongly expects support to refund ("),
        "{text}"
    );
    assert!(
        text.contains("expected allow, got deny: no policy permits agent support-bot"),
        "{text}"
    );
    assert!(
        text.contains("expected deciding policies [support-read], got [finance-refund]"),
        "{text}"
    );
    assert!(text.ends_with("3 passed, 2 failed"), "{text}");
}

#[test]
fn approval_cases_expect_a_deny_by_approval_policies_that_approval_lifts() {
    let dir = tempfile::tempdir().unwrap();
    let policies = r#"
        @id("refunds") permit(principal in Warden::Role::"finance", action == Warden::Action::"payments.refund", resource);
        @id("big") @approval("finance")
        forbid(principal, action == Warden::Action::"payments.refund", resource) when { context.input.amount > 1000 } unless { context.approved };
    "#;
    let b = bundle_of(&[("p.cedar", policies)]).unwrap();
    let file = write(
        &dir,
        "t.toml",
        r#"
[[case]]
name = "a big refund waits for finance"
agent = "finance-bot"
tool = "payments.refund"
input = { amount = 5000, currency = "EUR", customer_id = "c" }
expect = "approval"

[[case]]
name = "once approved it runs"
agent = "finance-bot"
tool = "payments.refund"
input = { amount = 5000, currency = "EUR", customer_id = "c" }
approvers = ["carol"]
expect = "allow"

[[case]]
name = "a plain deny is not an approval"
agent = "support-bot"
tool = "payments.refund"
input = { amount = 5000, currency = "EUR", customer_id = "c" }
expect = "approval"
"#,
    );
    let report = run_policy_tests(&b, &file).unwrap();
    assert_eq!(
        report.cases.iter().map(|c| c.passed()).collect::<Vec<_>>(),
        [true, true, false],
        "{report}"
    );
    assert_eq!(report.cases[0].expected, Expectation::Approval);
}

#[test]
fn cases_may_give_the_data_classes_and_findings_of_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let policies = r#"
        @id("mail") permit(principal, action == Warden::Action::"email.send", resource);
        @id("no-regulated-to-mailco") forbid(principal, action, resource)
        when { context.classes.contains("regulated") && resource.vendor == "mailco" };
    "#;
    let b = bundle_of(&[("p.cedar", policies)]).unwrap();
    let file = write(
        &dir,
        "t.toml",
        r#"
[[case]]
name = "plain mail goes out"
agent = "support-bot"
tool = "email.send"
input = { to = "a@example.com", subject = "s", body = "hello" }
expect = "allow"

[[case]]
name = "a card number does not"
agent = "support-bot"
tool = "email.send"
input = { to = "a@example.com", subject = "s", body = "4111 1111 1111 1111" }
classes = ["internal", "regulated"]
findings = ["dlp.payment_card"]
expect = "deny"
policies = ["no-regulated-to-mailco"]
"#,
    );
    let report = run_policy_tests(&b, &file).unwrap_or_else(|d| panic!("{d}"));
    assert!(report.all_passed(), "{report}");

    let bad = write(
        &dir,
        "bad.toml",
        "[[case]]\nname = \"x\"\nagent = \"support-bot\"\ntool = \"email.send\"\nexpect = \"deny\"\nclasses = [\"secret\"]\n",
    );
    let err = run_policy_tests(&b, &bad).unwrap_err();
    assert!(
        err.to_string().contains("unknown data class `secret`"),
        "{err}"
    );
    assert_eq!(err.0[0].line, 6, "{err}");
}

#[test]
fn a_case_naming_an_unknown_agent_or_tool_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "t.toml",
        "[[case]]\nname = \"x\"\nagent = \"ghost\"\ntool = \"crm.nope\"\nexpect = \"deny\"\n",
    );
    let err = run_policy_tests(&bundle(), &file).unwrap_err();
    let lines: Vec<usize> = err.iter().map(|d| d.line).collect();
    assert_eq!(lines, [3, 4], "{err}");
    assert!(err.0[0].message.contains("unknown agent `ghost`"));
}

#[test]
fn a_malformed_case_file_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "t.toml",
        "[[case]]\nname = \"x\"\nexpect = \"maybe\"\n",
    );
    let err = run_policy_tests(&bundle(), &file).unwrap_err();
    assert_eq!(err.0[0].line, 3, "{err}");
}

#[test]
fn policies_load_from_a_folder_and_build() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "main.cedar", POLICIES);
    let sources = load_policy_dir(dir.path()).unwrap();
    let b = warden_policy::PolicyBundle::build(&config(), &catalog(), &sources).unwrap();
    assert_eq!(
        b.hash(),
        bundle().hash(),
        "same file name and text, same hash"
    );
    assert_eq!(
        b.policy("support-read").map(|p| p.file.clone()),
        Some(dir.path().join("main.cedar"))
    );
}
