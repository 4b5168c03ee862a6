//! The `warden` command as a user runs it: check, schema, policy test, demo.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{WARDEN, quickstart_dir};

fn warden(args: &[&str], config: &Path) -> Output {
    Command::new(WARDEN)
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .expect("run warden")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of the quickstart with one file edited.
fn edited_quickstart(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(WARDEN)
        .args(["init"])
        .arg(dir.path())
        .output()
        .expect("warden init");
    assert!(out.status.success(), "{}", text(&out));
    let path = dir.path().join(file);
    let original = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, edit(original)).expect("write");
    dir
}

#[test]
fn the_quickstart_checks_clean() {
    let out = warden(&["check"], &quickstart_dir().join("warden.toml"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok:"), "{}", text(&out));
}

#[test]
fn an_unknown_role_is_reported_with_file_and_line_and_exit_2() {
    let dir = edited_quickstart("warden.toml", |c| {
        c.replacen("roles = [\"finance\"]", "roles = [\"finanse\"]", 1)
    });
    let out = warden(&["check"], &dir.path().join("warden.toml"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let config = std::fs::read_to_string(dir.path().join("warden.toml")).unwrap();
    let line = config.lines().position(|l| l.contains("finanse")).unwrap() + 1;
    assert!(
        text(&out).contains(&format!("warden.toml:{line}:")),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("unknown role `finanse`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_policy_naming_a_tool_that_does_not_exist_fails_the_check_at_its_line() {
    let dir = edited_quickstart("policies/payments.cedar", |p| {
        p.replace("payments.list_refunds", "payments.list_refundz")
    });
    let out = warden(&["check"], &dir.path().join("warden.toml"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("payments.cedar:"), "{}", text(&out));
    assert!(text(&out).contains("list_refundz"), "{}", text(&out));
}

#[test]
fn a_policy_testing_an_argument_the_tool_lacks_fails_the_check() {
    let dir = edited_quickstart("policies/payments.cedar", |p| {
        p.replace("context.input.amount", "context.input.amount_cents")
    });
    let out = warden(&["check"], &dir.path().join("warden.toml"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("payments.cedar:"), "{}", text(&out));
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let dir = edited_quickstart("warden.toml", |c| c.replacen("[server]", "[server", 1));
    let out = warden(&["check"], &dir.path().join("warden.toml"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("warden.toml:"), "{}", text(&out));
}

#[test]
fn the_schema_has_one_action_per_tool_with_typed_input() {
    let out = warden(&["schema"], &quickstart_dir().join("warden.toml"));
    assert!(out.status.success(), "{}", text(&out));
    let schema = String::from_utf8_lossy(&out.stdout);
    assert!(schema.contains("namespace Warden"), "{schema}");
    assert!(schema.contains("\"payments.refund\""), "{schema}");
    assert!(schema.contains("amount"), "{schema}");
}

#[test]
fn the_quickstart_policy_tests_pass() {
    let q = quickstart_dir();
    let out = Command::new(WARDEN)
        .args(["policy", "test"])
        .arg(q.join("policies/tests/quickstart.toml"))
        .arg("-c")
        .arg(q.join("warden.toml"))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_demo_runs_and_shows_allow_deny_and_delegation() {
    let out = Command::new(WARDEN).arg("demo").output().expect("run demo");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for needle in [
        "allow",
        "deny",
        "refund-limit",
        "support-uses-crm",
        "proposed",
        "rejected",
        "alice",
        "bob",
        "undo payments.refund",
        "is irreversible",
    ] {
        assert!(t.contains(needle), "demo output lacks `{needle}`:\n{t}");
    }
}
