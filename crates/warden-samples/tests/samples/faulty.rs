//! Scenarios for the `faulty` sample (except `crash`, which would end the
//! test process).

use std::time::Duration;

use serde_json::json;
use warden_samples::SampleKind;

use crate::support::{call, call_ok, connect, first_text};

#[tokio::test]
async fn ok_answers_normally() {
    let faulty = connect(SampleKind::Faulty).await;
    assert_eq!(call_ok(&faulty, "ok", json!({})).await, json!({"ok": true}));
    faulty.cancel().await.expect("close");
}

#[tokio::test]
async fn garbage_answers_with_text_that_is_not_json() {
    let faulty = connect(SampleKind::Faulty).await;
    let result = call(&faulty, "garbage", json!({})).await;
    assert_ne!(result.is_error, Some(true));
    assert!(result.structured_content.is_none());
    let text = first_text(&result);
    assert!(
        serde_json::from_str::<serde_json::Value>(text).is_err(),
        "{text}"
    );
    faulty.cancel().await.expect("close");
}

#[tokio::test]
async fn hang_never_answers_but_other_calls_still_do() {
    let faulty = connect(SampleKind::Faulty).await;
    let hung = tokio::time::timeout(Duration::from_millis(300), call(&faulty, "hang", json!({})));
    assert!(hung.await.is_err(), "hang() answered");
    assert_eq!(call_ok(&faulty, "ok", json!({})).await, json!({"ok": true}));
    faulty.cancel().await.expect("close");
}
