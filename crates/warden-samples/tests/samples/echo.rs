//! Scenarios for the `echo` sample.

use serde_json::json;
use warden_samples::SampleKind;

use crate::support::{call_err, call_ok, connect};

#[tokio::test]
async fn a_one_kilobyte_payload_comes_back_unchanged() {
    let echo = connect(SampleKind::Echo).await;
    let payload: String = "héllo \"wörld\" \n\t{}[]"
        .chars()
        .cycle()
        .take(1024)
        .collect();
    let result = call_ok(&echo, "echo", json!({"payload": payload})).await;
    assert_eq!(result, json!({"payload": payload}));
    echo.cancel().await.expect("close");
}

#[tokio::test]
async fn echo_without_a_payload_is_a_tool_error() {
    let echo = connect(SampleKind::Echo).await;
    let message = call_err(&echo, "echo", json!({})).await;
    assert!(message.contains("payload"), "{message}");
    echo.cancel().await.expect("close");
}
