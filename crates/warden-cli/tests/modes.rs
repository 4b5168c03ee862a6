//! Modes through a running server: sandbox twins, read-only and suggest overrides per tool, and
//! the approval webhook.

mod common;

use std::time::Duration;

use common::{TestServer, rest_call as call};
use serde_json::{Value, json};

/// Give `agent` the per-tool mode overrides `modes` (TOML inline-table text).
fn with_tool_modes(config: String, agent: &str, modes: &str) -> String {
    let anchor = format!("id = \"{agent}\"\n");
    assert!(config.contains(&anchor), "the quickstart has agent {agent}");
    config.replacen(&anchor, &format!("{anchor}tool_modes = {modes}\n"), 1)
}

fn audit_event(server: &TestServer, id: &str) -> Value {
    let out = server.cli(&["audit", "tail", "-n", "50", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("event {id} is in the audit log"))
}

/// The customer record's notes; a read that withheld them would make "unchanged" vacuous.
fn notes(result: &Value) -> Value {
    let notes = result["structuredContent"]["notes"].clone();
    assert!(notes.is_string(), "the record carries its notes: {result}");
    notes
}

#[tokio::test]
async fn a_write_in_sandbox_mode_goes_to_the_twin_and_the_agent_is_told_so() {
    let server = TestServer::quickstart(|c| {
        with_tool_modes(c, "support-bot", r#"{ "crm.update_customer" = "sandbox" }"#)
    });
    let support = server.create_key("support-bot");
    let update = json!({"customer_id": "C004", "notes": "sandboxed change"});

    let (code, body) = call(&server.base, &support, "crm.update_customer", update).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["sandbox"], "crm-staging", "{body}");
    assert_eq!(notes(&body["result"]), "sandboxed change", "{body}");
    let event = audit_event(&server, body["event_id"].as_str().unwrap());
    assert_eq!(event["mode"], "sandbox", "{event}");

    // The real CRM never saw the change: reads still go to it, and are not marked sandboxed.
    let (code, read) = call(
        &server.base,
        &support,
        "crm.get_customer",
        json!({"customer_id": "C004"}),
    )
    .await;
    assert_eq!(code, 200, "{read}");
    assert_eq!(read["sandbox"], Value::Null, "{read}");
    assert_ne!(notes(&read["result"]), "sandboxed change", "{read}");
}

#[tokio::test]
async fn an_agent_in_sandbox_mode_is_denied_a_tool_whose_upstream_has_no_twin() {
    let server = TestServer::quickstart(|c| {
        with_tool_modes(c, "refund-bot", r#"{ "payments.refund" = "sandbox" }"#)
    });
    let refund = server.create_key("refund-bot");
    let (code, body) = call(
        &server.base,
        &refund,
        "payments.refund",
        json!({"amount": 500, "currency": "EUR", "customer_id": "C001"}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"]["policies"], json!(["warden:mode"]), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no sandbox twin"), "{message}");
    let event = audit_event(&server, body["event_id"].as_str().unwrap());
    assert_eq!(event["outcome"], "denied", "{event}");
}

#[tokio::test]
async fn a_read_only_override_stops_one_write_and_leaves_the_agents_other_tools_alone() {
    let server = TestServer::quickstart(|c| {
        with_tool_modes(
            c,
            "support-bot",
            r#"{ "crm.update_customer" = "read-only" }"#,
        )
    });
    let support = server.create_key("support-bot");
    let (code, body) = call(
        &server.base,
        &support,
        "crm.update_customer",
        json!({"customer_id": "C002", "notes": "never written"}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"]["policies"], json!(["warden:mode"]), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only mode"),
        "{body}"
    );

    let (code, read) = call(
        &server.base,
        &support,
        "crm.get_customer",
        json!({"customer_id": "C002"}),
    )
    .await;
    assert_eq!(code, 200, "reads still run: {read}");
    assert_ne!(notes(&read["result"]), "never written", "{read}");
}

#[tokio::test]
async fn a_tools_own_mode_applies_to_every_agent_unless_the_agent_overrides_it() {
    // Every e-mail becomes a proposal; the drafting bot's own override (read-only) wins.
    let server = TestServer::quickstart(|c| {
        let c = c.replacen(
            "name = \"email.send\"\n",
            "name = \"email.send\"\nmode = \"suggest\"\n",
            1,
        );
        with_tool_modes(c, "drafting-bot", r#"{ "email.send" = "read-only" }"#)
    });
    let support = server.create_key("support-bot");
    let drafting = server.create_key("drafting-bot");
    let mail = json!({"to": "c001@example.com", "subject": "Your order", "body": "It shipped."});

    let (code, body) = call(&server.base, &support, "email.send", mail.clone()).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["outcome"], "proposed", "{body}");
    assert!(body["approval_id"].is_string(), "a proposal id: {body}");

    let (code, body) = call(&server.base, &drafting, "email.send", mail).await;
    assert_eq!(code, 403, "the agent's override wins: {body}");
    assert_eq!(body["error"]["policies"], json!(["warden:mode"]), "{body}");
}

#[tokio::test]
async fn a_new_approval_request_is_posted_to_the_webhook_with_a_slack_text() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port for the webhook");
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let server = TestServer::quickstart(|c| {
        c.replacen(
            "[approvals]\n",
            &format!("[approvals]\nwebhook = \"{hook_url}\"\n"),
            1,
        )
    });
    let refund = server.create_key("refund-bot");
    let (code, body) = call(
        &server.base,
        &refund,
        "payments.refund",
        json!({"amount": 20000, "currency": "EUR", "customer_id": "C003"}),
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let id = body["approval_id"].as_str().unwrap();

    // A guard against a hang, not a timing claim.
    let posted = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the webhook is called")
        .expect("a body");
    assert_eq!(posted["approval_id"], id, "{posted}");
    assert_eq!(posted["tool"], "payments.refund");
    assert_eq!(posted["agent"], "refund-bot");
    let text = posted["text"].as_str().expect("a Slack-compatible text");
    assert!(text.contains(id) && text.contains("finance"), "{text}");
    assert!(
        !posted.to_string().contains("20000") && !posted.to_string().contains("C003"),
        "the notification carries no arguments: {posted}"
    );
}
