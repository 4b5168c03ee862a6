//! Action control through a running server: the kill switch.

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn call(base: &str, key: &str, tool: &str, args: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/tools/call"))
        .bearer_auth(key)
        .json(&json!({"name": tool, "arguments": args}))
        .send()
        .await
        .expect("the gateway answers");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn ok(out: std::process::Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_paused_agent_is_denied_at_once_and_stays_paused_across_a_crash() {
    let mut server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    let refund = server.create_key("refund-bot");
    let get = json!({"customer_id": "C001"});
    assert_eq!(call(&server.base, &support, "crm.get_customer", get.clone()).await.0, 200);

    ok(server.cli(&["agents", "pause", "support-bot", "--reason", "investigating a leak"]));
    let (status, body) = call(&server.base, &support, "crm.get_customer", get.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["policies"], json!(["warden:kill-switch"]));
    assert!(body["error"]["message"].as_str().unwrap().contains("investigating a leak"), "{body}");
    assert_eq!(call(&server.base, &refund, "payments.list_refunds", json!({})).await.0, 200, "other agents go on");

    server.kill_and_restart();
    let (status, _) = call(&server.base, &support, "crm.get_customer", get.clone()).await;
    assert_eq!(status, 403, "the pause survives a kill -9");

    ok(server.cli(&["agents", "resume", "support-bot"]));
    assert_eq!(call(&server.base, &support, "crm.get_customer", get).await.0, 200);
}

#[tokio::test]
async fn a_freeze_stops_everything_and_an_upstream_pause_stops_only_its_tools() {
    let server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    let refund = server.create_key("refund-bot");

    ok(server.cli(&["upstreams", "pause", "crm"]));
    assert_eq!(call(&server.base, &support, "crm.get_customer", json!({"customer_id": "C001"})).await.0, 403);
    assert_eq!(call(&server.base, &support, "email.read_inbox", json!({})).await.0, 200);
    ok(server.cli(&["upstreams", "resume", "crm"]));

    ok(server.cli(&["freeze", "--reason", "incident 42"]));
    let (status, body) = call(&server.base, &refund, "payments.list_refunds", json!({})).await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"].as_str().unwrap().contains("frozen"), "{body}");
    ok(server.cli(&["unfreeze"]));
    assert_eq!(call(&server.base, &refund, "payments.list_refunds", json!({})).await.0, 200);

    let tail = server.cli(&["audit", "tail", "-n", "50", "--json"]);
    let text = String::from_utf8_lossy(&tail.stdout);
    assert!(text.contains("switch.pause:global") && text.contains("switch.resume:upstream:crm"), "{text}");
}
