//! Session-aware policy and shadow policies through a running server and the sample upstreams.

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn call_in(
    base: &str,
    key: &str,
    session: Option<&str>,
    tool: &str,
    args: Value,
) -> (u16, Value) {
    let mut body = json!({"name": tool, "arguments": args});
    if let Some(s) = session {
        body["session"] = json!(s);
    }
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/tools/call"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn get(base: &str, token: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers")
        .json()
        .await
        .expect("JSON")
}

fn external_mail() -> Value {
    json!({"to": "partner@elsewhere.test", "subject": "Re: your order", "body": "Details attached."})
}

fn refund() -> Value {
    json!({"amount": 1500, "currency": "EUR", "customer_id": "C001"})
}

fn operator_token(server: &TestServer, name: &str, role: &str) -> String {
    let out = server.cli(&["operators", "create", name, "--role", role]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn after_the_agent_reads_an_email_sending_email_to_an_external_domain_waits_for_approval() {
    let server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    let base = &server.base;

    // Before the inbox, outside mail goes.
    let (code, body) = call_in(
        base,
        &support,
        Some("ticket-1"),
        "email.send",
        external_mail(),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let (code, body) = call_in(
        base,
        &support,
        Some("ticket-1"),
        "email.read_inbox",
        json!({}),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let (code, held) = call_in(
        base,
        &support,
        Some("ticket-1"),
        "email.send",
        external_mail(),
    )
    .await;
    assert_eq!(code, 202, "{held}");
    assert_eq!(held["outcome"], "pending");
    assert_eq!(
        held["error"]["policies"],
        json!(["external-email-after-untrusted-content"])
    );
    // Mail to a customer at example.com still goes; another session is unaffected.
    let internal = json!({"to": "c001@example.com", "subject": "Your order", "body": "Shipped."});
    let (code, body) = call_in(base, &support, Some("ticket-1"), "email.send", internal).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call_in(
        base,
        &support,
        Some("ticket-2"),
        "email.send",
        external_mail(),
    )
    .await;
    assert_eq!(code, 200, "a fresh session has read nothing: {body}");

    // Someone in support approves; the held mail then runs.
    let id = held["approval_id"]
        .as_str()
        .expect("an approval id")
        .to_owned();
    let alice = operator_token(&server, "alice", "approver");
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/approvals/{id}/approve"))
        .bearer_auth(&alice)
        .json(&json!({"reason": "the partner asked for it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (code, ran) = call_in(
        base,
        &support,
        Some("ticket-1"),
        "warden.approval_status",
        json!({"approval_id": id}),
    )
    .await;
    assert_eq!(code, 200, "{ran}");
    assert_eq!(ran["outcome"], "ok", "{ran}");

    // The audit event names the session.
    let event = get(
        base,
        &server.admin_token,
        &format!("/v1/events/{}", held["event_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(event["event"]["session"], "id:ticket-1", "{event}");
}

#[tokio::test]
async fn a_fourth_refund_in_one_session_is_denied() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    for n in 1..=3 {
        let (code, body) = call_in(
            &server.base,
            &key,
            Some("order-77"),
            "payments.refund",
            refund(),
        )
        .await;
        assert_eq!(code, 200, "refund {n}: {body}");
    }
    let (code, body) = call_in(
        &server.base,
        &key,
        Some("order-77"),
        "payments.refund",
        refund(),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["three-refunds-per-session"])
    );
    // Denied calls do not count, and other sessions have their own count.
    let (code, body) = call_in(
        &server.base,
        &key,
        Some("order-78"),
        "payments.refund",
        refund(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn six_simultaneous_refunds_in_one_session_run_only_three() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (base, key) = (server.base.clone(), key.clone());
        calls.spawn(async move {
            call_in(&base, &key, Some("order-99"), "payments.refund", refund()).await
        });
    }
    let answers = calls.join_all().await;
    let ran = answers.iter().filter(|(code, _)| *code == 200).count();
    let denied: Vec<&Value> = answers
        .iter()
        .filter(|(code, _)| *code == 403)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(ran, 3, "{answers:?}");
    assert_eq!(denied.len(), 3, "{answers:?}");
    for body in denied {
        assert_eq!(
            body["error"]["policies"],
            json!(["three-refunds-per-session"]),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_task_grant_is_a_session_and_its_refunds_count_together() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let task: Value = reqwest::Client::new()
        .post(format!("{}/v1/tasks", server.base))
        .bearer_auth(&key)
        .json(&json!({"tools": ["payments.refund"], "purpose": "order 77"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = task["token"].as_str().expect("a task token").to_owned();
    // An explicit id does not split a task's session: the grant takes precedence.
    for (n, explicit) in [Some("a"), Some("b"), None].into_iter().enumerate() {
        let (code, body) =
            call_in(&server.base, &token, explicit, "payments.refund", refund()).await;
        assert_eq!(code, 200, "refund {}: {body}", n + 1);
    }
    let (code, body) = call_in(&server.base, &token, Some("c"), "payments.refund", refund()).await;
    assert_eq!(code, 403, "{body}");
    let event = get(
        &server.base,
        &server.admin_token,
        &format!("/v1/events/{}", body["event_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        event["event"]["session"],
        format!("task:{}", task["task_id"].as_str().unwrap()),
        "{event}"
    );
}

#[tokio::test]
async fn a_finding_of_injected_instructions_in_one_call_is_visible_to_the_next_calls_policy() {
    // Without `untrusted_output` on the inbox, only the injection finding can mark the session.
    let server = TestServer::quickstart_with(
        |c| c.replace("untrusted_output = true\n", ""),
        |dir| {
            std::fs::write(
                dir.join("policies/injection.cedar"),
                r#"@id("no-mail-after-injected-instructions")
forbid (principal, action == Warden::Action::"email.send", resource)
when { context.session.findings.contains("injection.instruction_override") };
"#,
            )
            .unwrap();
        },
    );
    let support = server.create_key("support-bot");
    let base = &server.base;
    let internal = json!({"to": "c001@example.com", "subject": "Your order", "body": "Shipped."});
    let (code, body) = call_in(
        base,
        &support,
        Some("t"),
        "crm.get_customer",
        json!({"customer_id": "C001"}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call_in(base, &support, Some("t"), "email.send", internal.clone()).await;
    assert_eq!(code, 200, "nothing untrusted seen yet: {body}");

    let (code, body) = call_in(base, &support, Some("t"), "email.read_inbox", json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["result"]["_meta"]["warden"]["quarantined"], true,
        "{body}"
    );

    let (code, body) = call_in(base, &support, Some("t"), "email.send", internal.clone()).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["no-mail-after-injected-instructions"])
    );
    let (code, body) = call_in(base, &support, Some("other"), "email.send", internal).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let mut server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    for _ in 0..3 {
        let (code, body) =
            call_in(&server.base, &key, Some("s"), "payments.refund", refund()).await;
        assert_eq!(code, 200, "{body}");
    }
    server.kill_and_restart();
    let (code, body) = call_in(&server.base, &key, Some("s"), "payments.refund", refund()).await;
    assert_eq!(code, 403, "the count survives a kill -9: {body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["three-refunds-per-session"])
    );
}

#[tokio::test]
async fn a_shadow_policy_that_would_deny_refunds_records_differences_and_changes_nothing() {
    let server = TestServer::quickstart_with(
        |c| {
            c.replace(
                "dir = \"policies\"",
                "dir = \"policies\"\nshadow = \"policies-next\"",
            )
        },
        |dir| {
            let next = dir.join("policies-next");
            std::fs::create_dir_all(&next).unwrap();
            for f in ["crm.cedar", "email.cedar", "payments.cedar"] {
                std::fs::copy(dir.join("policies").join(f), next.join(f)).unwrap();
            }
            std::fs::write(
                next.join("freeze-refunds.cedar"),
                "@id(\"no-refunds-this-quarter\")\nforbid (principal, action == Warden::Action::\"payments.refund\", resource);\n",
            )
            .unwrap();
        },
    );
    let out = server.cli(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("shadow bundle"));

    let key = server.create_key("refund-bot");
    let mut refunds = Vec::new();
    for _ in 0..2 {
        let (code, body) = call_in(&server.base, &key, None, "payments.refund", refund()).await;
        assert_eq!(code, 200, "the live decision is unchanged: {body}");
        assert!(
            body["result"]["structuredContent"]["refund_id"].is_string(),
            "{body}"
        );
        refunds.push(body["event_id"].as_str().unwrap().to_owned());
    }
    let (code, _) = call_in(&server.base, &key, None, "payments.list_refunds", json!({})).await;
    assert_eq!(code, 200);

    let viewer = operator_token(&server, "dana", "viewer");
    let report = get(&server.base, &viewer, "/v1/policy/shadow-report").await;
    let r = &report["report"];
    assert_eq!(r["differences"], 2, "{report}");
    assert_eq!(
        r["by_tool"]["payments.refund"]["allow -> deny"], 2,
        "{report}"
    );
    assert!(
        r["by_tool"].get("payments.list_refunds").is_none(),
        "{report}"
    );
    let example = &r["examples"][0];
    assert!(
        refunds.contains(&example["event_id"].as_str().unwrap().to_owned()),
        "{report}"
    );
    assert_eq!(example["active_policies"], json!(["finance-refunds"]));
    assert_eq!(
        example["shadow_policies"],
        json!(["no-refunds-this-quarter"])
    );

    let out = server.cli(&["policy", "shadow-report"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("payments.refund")
            && text.contains("allow -> deny")
            && text.contains(&refunds[0]),
        "{text}"
    );
}

#[tokio::test]
async fn a_shadow_bundle_that_fails_validation_fails_the_check() {
    let server = TestServer::quickstart(|c| c);
    let next = server.dir.path().join("policies-next");
    std::fs::create_dir_all(&next).unwrap();
    std::fs::write(
        next.join("bad.cedar"),
        "forbid (principal, action == Warden::Action::\"payments.refnud\", resource);\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(server.config_path()).unwrap();
    std::fs::write(
        server.config_path(),
        config.replace(
            "dir = \"policies\"",
            "dir = \"policies\"\nshadow = \"policies-next\"",
        ),
    )
    .unwrap();
    let out = server.cli(&["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.cedar") && err.contains("payments.refnud"),
        "{err}"
    );
}
