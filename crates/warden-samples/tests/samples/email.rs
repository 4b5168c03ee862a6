//! Scenarios for the `email` sample.

use serde_json::json;
use warden_samples::SampleKind;

use crate::support::{call_err, call_ok, connect};

#[tokio::test]
async fn the_inbox_holds_an_injection_attempt_and_a_customer_phone_number() {
    let email = connect(SampleKind::Email).await;
    let inbox = call_ok(&email, "read_inbox", json!({})).await;
    let messages = inbox["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3);
    for message in messages {
        for field in ["id", "from", "subject", "body"] {
            assert!(message[field].is_string(), "{field} in {message}");
        }
    }
    let bodies: Vec<_> = messages
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect();
    assert!(bodies.iter().any(|b| {
        b.contains("Ignore previous instructions") && b.contains("attacker@evil.example")
    }));
    // Carol Nguyen's (C003) phone number, exactly as the CRM stores it.
    assert!(bodies.iter().any(|b| b.contains("+1-206-555-0103")));

    let first = call_ok(&email, "read_inbox", json!({"limit": 1})).await;
    assert_eq!(first["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["messages"][0]["id"], "I001");
    email.cancel().await.expect("close");
}

#[tokio::test]
async fn sent_mail_lands_in_the_outbox() {
    let email = connect(SampleKind::Email).await;
    assert_eq!(
        call_ok(&email, "list_outbox", json!({})).await,
        json!({"messages": []})
    );
    let receipt = call_ok(
        &email,
        "send",
        json!({"to": "alice.johnson@example.com", "subject": "Re: invoice", "body": "Refunded."}),
    )
    .await;
    assert_eq!(receipt, json!({"message_id": "S0001", "status": "sent"}));
    let second = call_ok(
        &email,
        "send",
        json!({"to": "bob.martinez@example.net", "subject": "Hello", "body": "Hi Bob"}),
    )
    .await;
    assert_eq!(second["message_id"], "S0002");

    let outbox = call_ok(&email, "list_outbox", json!({})).await;
    assert_eq!(
        outbox["messages"][0],
        json!({
            "message_id": "S0001",
            "to": "alice.johnson@example.com",
            "subject": "Re: invoice",
            "body": "Refunded.",
            "status": "sent",
        })
    );
    assert_eq!(outbox["messages"].as_array().map(Vec::len), Some(2));
    email.cancel().await.expect("close");
}

#[tokio::test]
async fn mail_to_a_malformed_address_is_not_sent() {
    let email = connect(SampleKind::Email).await;
    for to in [
        "",
        "nobody",
        "a@b",
        "two words@example.com",
        "x@@example.com",
    ] {
        let message = call_err(
            &email,
            "send",
            json!({"to": to, "subject": "s", "body": "b"}),
        )
        .await;
        assert!(
            message.contains("not a valid email address"),
            "{to}: {message}"
        );
    }
    let missing_body = call_err(
        &email,
        "send",
        json!({"to": "a@example.com", "subject": "s"}),
    )
    .await;
    assert!(missing_body.contains("body"), "{missing_body}");
    assert_eq!(
        call_ok(&email, "list_outbox", json!({})).await,
        json!({"messages": []})
    );
    email.cancel().await.expect("close");
}
