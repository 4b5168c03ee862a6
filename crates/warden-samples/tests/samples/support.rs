//! Connecting a client to a sample and reading tool results.

use rmcp::{
    Peer, RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::{RunningService, ServiceError},
};
use serde_json::Value;
use warden_samples::{SampleKind, SampleServer, handler};

pub type Client = RunningService<RoleClient, ()>;

/// A client connected to a fresh `kind` sample over an in-memory pipe.
pub async fn connect(kind: SampleKind) -> Client {
    connect_to(handler(kind)).await
}

/// A client connected to `server` over an in-memory pipe.
pub async fn connect_to(server: SampleServer) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.expect("client connects")
}

/// Call `tool`; protocol errors are returned as `Err`.
pub async fn try_call(
    client: &Peer<RoleClient>,
    tool: &str,
    arguments: Value,
) -> Result<CallToolResult, ServiceError> {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be a JSON object");
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
}

/// Call `tool`, expecting an answer (success or tool error).
pub async fn call(client: &Peer<RoleClient>, tool: &str, arguments: Value) -> CallToolResult {
    try_call(client, tool, arguments)
        .await
        .unwrap_or_else(|e| panic!("{tool} got a protocol error: {e}"))
}

/// Call `tool` and return its structured result, checking it succeeded.
pub async fn call_ok(client: &Peer<RoleClient>, tool: &str, arguments: Value) -> Value {
    structured(call(client, tool, arguments).await)
}

/// Call `tool` and return its error message, checking it was a tool error.
pub async fn call_err(client: &Peer<RoleClient>, tool: &str, arguments: Value) -> String {
    tool_error(call(client, tool, arguments).await)
}

/// The structured content of a successful result, after checking that the
/// text block holds the same JSON.
pub fn structured(result: CallToolResult) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "unexpected tool error: {result:?}"
    );
    let value = result
        .structured_content
        .clone()
        .expect("result has structuredContent");
    let from_text: Value =
        serde_json::from_str(first_text(&result)).expect("text block holds JSON");
    assert_eq!(from_text, value, "text block and structuredContent differ");
    value
}

/// The message of a tool error result.
pub fn tool_error(result: CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error: {result:?}"
    );
    first_text(&result).to_owned()
}

pub fn first_text(result: &CallToolResult) -> &str {
    result
        .content
        .first()
        .and_then(|content| content.as_text())
        .map(|text| text.text.as_str())
        .expect("result has a text block")
}
