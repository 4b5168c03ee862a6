//! Scenarios for `serve_http`: both protocol revisions, shared state, JSON
//! responses and shutdown.

use std::time::Duration;

use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ServiceExt,
    model::{ClientConfig, ProtocolVersion},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use warden_samples::{SampleKind, serve_http};

use crate::support::{Client, call_ok};

struct Running {
    url: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops after shutdown")
            .expect("server task")
            .expect("server exits cleanly");
    }
}

async fn start(kind: SampleKind) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_http(kind, listener, shutdown.clone()));
    Running {
        url,
        shutdown,
        task,
    }
}

/// A client that uses the 2025-11-25 `initialize` handshake.
async fn connect_2025(url: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ClientConfig> {
    ClientConfig::default()
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
        .serve(StreamableHttpClientTransport::from_uri(url.to_owned()))
        .await
        .expect("initialize over HTTP")
}

/// A client that uses the sessionless 2026-07-28 protocol (`server/discover`).
async fn connect_2026(url: &str) -> Client {
    ().serve_with_lifecycle(
        StreamableHttpClientTransport::from_uri(url.to_owned()),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("discover over HTTP")
}

#[tokio::test]
async fn a_2025_11_25_client_initializes_and_calls_tools() {
    let server = start(SampleKind::Crm).await;
    let client = connect_2025(&server.url).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);

    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 3);
    let customer = call_ok(&client, "get_customer", json!({"customer_id": "C003"})).await;
    assert_eq!(customer["name"], "Carol Nguyen");
    client.cancel().await.expect("close");
    server.stop().await;
}

#[tokio::test]
async fn a_2026_07_28_client_calls_tools_without_a_handshake() {
    let server = start(SampleKind::Echo).await;
    let client = connect_2026(&server.url).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);

    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 1);
    let payload = "x".repeat(1024);
    let echoed = call_ok(&client, "echo", json!({"payload": payload})).await;
    assert_eq!(echoed["payload"], payload.as_str());
    client.cancel().await.expect("close");
    server.stop().await;
}

#[tokio::test]
async fn state_is_shared_by_every_request_and_client() {
    let server = start(SampleKind::Payments).await;
    let modern = connect_2026(&server.url).await;
    let refund = call_ok(
        &modern,
        "refund",
        json!({"amount": 999, "currency": "GBP", "customer_id": "C004"}),
    )
    .await;
    assert_eq!(refund["refund_id"], "R0001");

    let legacy = connect_2025(&server.url).await;
    let cancelled = call_ok(&legacy, "cancel_refund", json!({"refund_id": "R0001"})).await;
    assert_eq!(cancelled["status"], "cancelled");

    let listed = call_ok(&modern, "list_refunds", json!({})).await;
    assert_eq!(listed["refunds"][0]["status"], "cancelled");
    modern.cancel().await.expect("close");
    legacy.cancel().await.expect("close");
    server.stop().await;
}

#[tokio::test]
async fn responses_are_plain_json_without_a_session() {
    let server = start(SampleKind::Echo).await;
    let http = reqwest::Client::new();
    let response = http
        .post(&server.url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        }))
        .send()
        .await
        .expect("POST initialize");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(response.headers().get("mcp-session-id").is_none());
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(body["result"]["serverInfo"]["name"], "warden-sample-echo");

    let response = http
        .post(&server.url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "echo")
        .json(&json!({
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "echo",
                "arguments": {"payload": "hi"},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        }))
        .send()
        .await
        .expect("POST tools/call");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(
        body["result"]["structuredContent"],
        json!({"payload": "hi"})
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_completes_while_a_call_is_hanging() {
    let server = start(SampleKind::Faulty).await;
    let client = connect_2026(&server.url).await;
    let hanging = tokio::spawn(async move {
        let _ = crate::support::try_call(&client, "hang", json!({})).await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await;
    hanging.abort();
}
