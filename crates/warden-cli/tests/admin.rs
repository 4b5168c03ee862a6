//! Operators and agents through a running server: keys, rotation, the audit trail, task grants,
//! delegation over REST.

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn call(base: &str, key: &str, body: Value) -> (u16, Value) {
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

#[tokio::test]
async fn rotating_a_key_retires_the_old_one_and_the_audit_trail_shows_it() {
    let server = TestServer::quickstart(|c| c);
    let old = server.create_key("refund-bot");
    let again = server.cli(&["agents", "create", "refund-bot"]);
    assert!(
        !again.status.success(),
        "a second create must point to rotate"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("rotate"));

    let out = server.cli(&["agents", "rotate", "refund-bot"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_ne!(old, new);

    let args = json!({"name": "payments.list_refunds", "arguments": {}});
    assert_eq!(call(&server.base, &new, args.clone()).await.0, 200);
    let (status, body) = call(&server.base, &old, args).await;
    assert_eq!(status, 401, "{body}");

    let list = server.cli(&["agents", "list"]);
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains("refund-bot") && listing.contains("1 live"),
        "{listing}"
    );

    let tail = server.cli(&["audit", "tail", "-n", "10", "--json"]);
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let events: Vec<Value> = String::from_utf8_lossy(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["agents.create", "agents.rotate", "payments.list_refunds"] {
        assert!(
            actions.contains(&expected),
            "audit lacks {expected}: {actions:?}"
        );
    }
    assert!(
        events.iter().any(|e| e["kind"] == "auth_failure"),
        "the refused old key is recorded"
    );
    let call_event = events
        .iter()
        .find(|e| e["action"] == "payments.list_refunds")
        .unwrap();
    for field in [
        "bundle_hash",
        "args_digest",
        "result_digest",
        "correlation_id",
        "upstream_latency_us",
    ] {
        assert!(
            !call_event[field].is_null(),
            "event lacks {field}: {call_event}"
        );
    }
    assert_eq!(call_event["policies"], json!(["finance-refunds"]));
}

#[tokio::test]
async fn an_agent_acting_for_a_user_can_never_do_what_the_user_could_not() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("support-bot");
    let update = |user: &str| json!({"name": "crm.update_customer", "user": user, "arguments": {"customer_id": "C004", "tier": "gold"}});
    let (status, body) = call(&server.base, &key, update("alice")).await;
    assert_eq!(status, 200, "alice (support) may: {body}");
    let (status, body) = call(&server.base, &key, update("bob")).await;
    assert_eq!(status, 403, "bob (analyst) may not: {body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("bob"),
        "{body}"
    );
    let (status, body) = call(&server.base, &key, update("mallory")).await;
    assert_eq!(status, 403, "an unknown user is refused: {body}");

    // refund-bot has no delegation in its config: naming a user is refused outright.
    let refund = server.create_key("refund-bot");
    let (status, body) = call(
        &server.base,
        &refund,
        json!({"name": "payments.list_refunds", "user": "alice", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delegation"),
        "{body}"
    );
}

#[tokio::test]
async fn a_task_grant_cannot_exceed_the_agents_own_rights() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("support-bot");
    let http = reqwest::Client::new();
    let grant = |body: Value| {
        http.post(format!("{}/v1/tasks", server.base))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    // Above the agent's clearance: refused.
    let resp = grant(json!({"tools": ["crm.get_customer"], "max_class": "restricted"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // A tool the agent's policy forbids can be named, but the token still cannot call it.
    let resp = grant(json!({"tools": ["payments.refund", "crm.get_customer"]}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let token = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = call(
        &server.base,
        &token,
        json!({"name": "payments.refund", "arguments": {"amount": 10, "currency": "EUR", "customer_id": "C001"}}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let tools = http
        .get(format!("{}/v1/tools", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let listed: Value = tools.json().await.unwrap();
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .filter(|n| !n.starts_with("warden."))
        .collect();
    assert_eq!(
        names,
        vec!["crm.get_customer"],
        "the task lists only what it may call (besides Warden's own tools)"
    );
}
