//! The MCP edge answers a plain `tools/call` itself and leaves everything else to rmcp: both
//! give an agent the same answer, and rmcp's checks still refuse what they refused.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

struct Edge {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Edge {
    /// POST `body` to `/mcp` with the media types rmcp requires and `headers`.
    async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> (u16, String, Value) {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, content_type, body)
    }
}

fn get_customer(id: u64, meta: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": "crm.get_customer",
            "arguments": { "customer_id": "C001" },
            "_meta": meta,
        }
    })
}

/// The answer without what differs from call to call (the audit event's id).
fn comparable(mut result: Value) -> Value {
    if let Some(warden) = result
        .pointer_mut("/_meta/warden")
        .and_then(Value::as_object_mut)
    {
        warden.remove("event_id");
    }
    result
}

#[tokio::test]
async fn a_tools_call_gets_the_same_answer_from_the_edge_and_from_rmcp() {
    let server = TestServer::quickstart(|c| c);
    let edge = Edge {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        url: server.mcp_url(),
        key: server.create_key("support-bot"),
    };
    let v2025 = [("mcp-protocol-version", "2025-11-25")];

    // Answered by the edge: a plain call with a progress token, as rmcp's client sends it.
    let (status, content_type, direct) = edge
        .post(&get_customer(1, json!({ "progressToken": 1 })), &v2025)
        .await;
    assert_eq!(status, 200, "{direct}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(direct["jsonrpc"], "2.0");
    assert_eq!(direct["id"], 1);
    assert_eq!(
        direct["result"]["_meta"]["warden"]["outcome"], "ok",
        "{direct}"
    );
    assert_eq!(direct["result"]["isError"], false, "{direct}");

    // An `Origin` header (which rmcp checks only against a configured allow-list) sends the
    // same call through rmcp.
    let (status, _, through_rmcp) = edge
        .post(
            &get_customer(2, json!({ "progressToken": 2 })),
            &[v2025[0], ("origin", "http://localhost")],
        )
        .await;
    assert_eq!(status, 200, "{through_rmcp}");
    assert_eq!(through_rmcp["id"], 2);
    assert_eq!(
        comparable(direct["result"].clone()),
        comparable(through_rmcp["result"].clone()),
        "the same call answered two ways"
    );
    assert_ne!(
        direct["result"]["_meta"]["warden"]["event_id"],
        through_rmcp["result"]["_meta"]["warden"]["event_id"],
        "each call has its own audit event"
    );

    // 2026-07-28: with the request metadata and standard headers, answered by the edge ...
    let v2026 = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "crm.get_customer"),
    ];
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "edge-test", "version": "1" },
    });
    let (status, _, inline) = edge.post(&get_customer(3, meta.clone()), &v2026).await;
    assert_eq!(status, 200, "{inline}");
    // As rmcp shapes results: `resultType` only for 2026-07-28 agents.
    assert_eq!(direct["result"].get("resultType"), None, "{direct}");
    let mut inline_result = comparable(inline["result"].clone());
    assert_eq!(
        inline_result
            .as_object_mut()
            .and_then(|r| r.remove("resultType")),
        Some(json!("complete")),
        "{inline}"
    );
    assert_eq!(inline_result, comparable(direct["result"].clone()));

    // ... and without them, refused by rmcp as before, before anything runs.
    let (status, _, refused) = edge.post(&get_customer(4, json!({})), &v2026).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].is_object(), "{refused}");
    let (status, _, mismatched) = edge
        .post(
            &get_customer(5, meta),
            &[v2026[0], v2026[1], ("mcp-name", "crm.update_customer")],
        )
        .await;
    assert_eq!(status, 400, "{mismatched}");

    // The edge answered calls 1 and 3, rmcp call 2; rmcp refused 4 and 5 before its handler.
    let metrics = edge
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for line in [
        "warden_mcp_tool_calls_total{path=\"edge\"} 2",
        "warden_mcp_tool_calls_total{path=\"rmcp\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }

    // Three calls ran (and were recorded); the refused ones did not reach the pipeline.
    let tail = server.cli(&["audit", "tail", "-n", "20", "--json"]);
    let text = String::from_utf8_lossy(&tail.stdout);
    let calls = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "crm.get_customer" && e["agent"] == "support-bot")
        .count();
    assert_eq!(calls, 3, "{text}");
}
