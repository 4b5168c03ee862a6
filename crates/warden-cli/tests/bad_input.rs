//! Bad input gets a clear error — never a panic or a hang — and a consistent audit record.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

const FAULTY: &str = r#"
[[vendors]]
name = "lab"
cleared = "internal"

[[upstreams]]
name = "faulty"
vendor = "lab"
command = ["warden", "sample-upstream", "faulty"]
timeout_ms = 1000
"#;

const FAULTY_POLICY: &str = r#"@id("support-uses-faulty")
permit (principal in Warden::Role::"support", action in Warden::Action::"upstream:faulty", resource);
"#;

fn server() -> TestServer {
    TestServer::quickstart_with(
        |c| {
            format!(
                "{}\n{FAULTY}",
                c.replace(
                    "data_dir = \".warden\"",
                    "data_dir = \".warden\"\nmax_body_bytes = 8192"
                )
            )
        },
        |dir| std::fs::write(dir.join("policies/faulty.cedar"), FAULTY_POLICY).expect("policy"),
    )
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: server.base.clone(),
        }
    }

    async fn call(&self, key: Option<&str>, tool: &str, args: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/tools/call", self.base))
            .json(&json!({"name": tool, "arguments": args}));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.expect("the gateway answers");
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn mcp_raw(&self, key: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
            .await
            .expect("the gateway answers");
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn event(&self, admin: &str, id: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/v1/events/{id}", self.base))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "event {id} must be in the log");
        resp.json::<Value>().await.unwrap()["event"].clone()
    }
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_recorded() {
    let server = server();
    let key = server.create_key("support-bot");
    let c = Client::new(&server);
    let admin = server.admin_token.clone();

    // Malformed JSON-RPC: not JSON, then JSON that is not JSON-RPC.
    let (status, body) = c.mcp_raw(&key, b"{this is not json".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32700, "{body}");
    let event = c
        .event(
            &admin,
            body["error"]["data"]["event_id"]
                .as_str()
                .expect("event id"),
        )
        .await;
    assert_eq!(event["outcome"], "rejected");
    assert_eq!(event["agent"], "support-bot");

    let (status, body) = c
        .mcp_raw(&key, br#"{"id":1,"method":"tools/list"}"#.to_vec())
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32600, "{body}");

    // Oversize body.
    let big = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crm.get_customer","arguments":{"customer_id":"x".repeat(20_000)}}});
    let (status, body) = c.mcp_raw(&key, serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
    c.event(
        &admin,
        body["error"]["data"]["event_id"]
            .as_str()
            .expect("event id"),
    )
    .await;

    // Unknown tool.
    let (status, body) = c.call(Some(&key), "crm.drop_everything", json!({})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown tool"),
        "{body}"
    );
    assert_eq!(
        c.event(&admin, body["event_id"].as_str().unwrap()).await["outcome"],
        "rejected"
    );

    // Arguments that are not an object.
    let (status, body) = c.call(Some(&key), "crm.get_customer", json!([1, 2])).await;
    assert_eq!(status, 400, "{body}");

    // Missing and invalid keys.
    let (status, body) = c
        .call(None, "crm.get_customer", json!({"customer_id": "C001"}))
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no credential"),
        "{body}"
    );
    let (status, body) = c
        .call(
            Some("wdn_ak_forged"),
            "crm.get_customer",
            json!({"customer_id": "C001"}),
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["event_id"].is_string(),
        "an auth failure is recorded: {body}"
    );
}

#[tokio::test]
async fn a_revoked_key_and_an_expired_task_token_are_refused() {
    let server = server();
    let key = server.create_key("support-bot");
    let c = Client::new(&server);

    let resp = c
        .http
        .post(format!("{}/v1/tasks", c.base))
        .bearer_auth(&key)
        .json(&json!({"tools": ["crm.get_customer"], "ttl_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let task: Value = resp.json().await.unwrap();
    let token = task["token"].as_str().unwrap().to_owned();
    let (status, _) = c
        .call(
            Some(&token),
            "crm.get_customer",
            json!({"customer_id": "C001"}),
        )
        .await;
    assert_eq!(status, 200, "a fresh task token works");
    let (status, body) = c
        .call(Some(&token), "crm.search_customers", json!({"query": "a"}))
        .await;
    assert_eq!(status, 403, "a task token is limited to its tools: {body}");
    assert_eq!(body["error"]["policies"], json!(["warden:task-scope"]));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, body) = c
        .call(
            Some(&token),
            "crm.get_customer",
            json!({"customer_id": "C001"}),
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    let out = server.cli(&["agents", "revoke", "support-bot"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = c
        .call(
            Some(&key),
            "crm.get_customer",
            json!({"customer_id": "C001"}),
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
}

#[tokio::test]
async fn an_upstream_that_crashes_or_hangs_fails_the_call_and_recovers() {
    let server = server();
    let key = server.create_key("support-bot");
    let c = Client::new(&server);

    let (status, body) = c.call(Some(&key), "faulty.crash", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["outcome"], "failed");
    assert!(
        recovers(&c, &key).await,
        "the crashed upstream came back:\n{}",
        server.log()
    );

    let (status, body) = c.call(Some(&key), "faulty.hang", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{body}"
    );
    assert!(
        recovers(&c, &key).await,
        "other calls work after a hung one:\n{}",
        server.log()
    );
}

/// Whether `faulty.ok` succeeds within ten seconds (the pool restarts crashed upstreams with back-off).
async fn recovers(c: &Client, key: &str) -> bool {
    for _ in 0..50 {
        let (status, _) = c.call(Some(key), "faulty.ok", json!({})).await;
        if status == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
