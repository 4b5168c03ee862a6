//! Scenarios for the `payments` sample.

use serde_json::json;
use warden_samples::SampleKind;

use crate::support::{call_err, call_ok, connect};

#[tokio::test]
async fn a_refund_succeeds_and_can_be_cancelled_once() {
    let payments = connect(SampleKind::Payments).await;
    let refund = call_ok(
        &payments,
        "refund",
        json!({"amount": 2500, "currency": "usd", "customer_id": "C001", "reason": "duplicate charge"}),
    )
    .await;
    assert_eq!(
        refund,
        json!({
            "refund_id": "R0001",
            "status": "succeeded",
            "amount": 2500,
            "currency": "USD",
            "customer_id": "C001",
            "reason": "duplicate charge",
        })
    );

    let cancelled = call_ok(&payments, "cancel_refund", json!({"refund_id": "R0001"})).await;
    assert_eq!(
        cancelled,
        json!({"refund_id": "R0001", "status": "cancelled"})
    );

    let again = call_err(&payments, "cancel_refund", json!({"refund_id": "R0001"})).await;
    assert!(again.contains("already cancelled"), "{again}");

    let listed = call_ok(&payments, "list_refunds", json!({})).await;
    assert_eq!(listed["refunds"][0]["status"], "cancelled");
    payments.cancel().await.expect("close");
}

#[tokio::test]
async fn cancelling_an_unknown_refund_is_a_tool_error() {
    let payments = connect(SampleKind::Payments).await;
    let message = call_err(&payments, "cancel_refund", json!({"refund_id": "R0042"})).await;
    assert!(message.contains("R0042"), "{message}");
    payments.cancel().await.expect("close");
}

#[tokio::test]
async fn refunds_are_numbered_in_order_and_listed_per_customer() {
    let payments = connect(SampleKind::Payments).await;
    assert_eq!(
        call_ok(&payments, "list_refunds", json!({})).await,
        json!({"refunds": []}),
        "the ledger starts empty"
    );
    for (amount, customer) in [(100, "C001"), (200, "C002"), (300, "C001")] {
        call_ok(
            &payments,
            "refund",
            json!({"amount": amount, "currency": "EUR", "customer_id": customer}),
        )
        .await;
    }
    let all = call_ok(&payments, "list_refunds", json!({})).await;
    let ids: Vec<_> = all["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|r| r["refund_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["R0001", "R0002", "R0003"]);
    assert!(
        all["refunds"][0].get("reason").is_none(),
        "no reason given, none stored"
    );

    let alice = call_ok(&payments, "list_refunds", json!({"customer_id": "c001"})).await;
    let amounts: Vec<_> = alice["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|r| r["amount"].as_u64().expect("amount"))
        .collect();
    assert_eq!(amounts, [100, 300]);
    payments.cancel().await.expect("close");
}

#[tokio::test]
async fn invalid_refunds_are_rejected_without_moving_money() {
    let payments = connect(SampleKind::Payments).await;
    let cases = [
        json!({"amount": 0, "currency": "USD", "customer_id": "C001"}),
        json!({"amount": -5, "currency": "USD", "customer_id": "C001"}),
        json!({"amount": 1.5, "currency": "USD", "customer_id": "C001"}),
        json!({"amount": "10", "currency": "USD", "customer_id": "C001"}),
        json!({"amount": 10, "currency": "DOLLARS", "customer_id": "C001"}),
        json!({"amount": 10, "currency": "U$D", "customer_id": "C001"}),
        json!({"amount": 10, "currency": "USD", "customer_id": "  "}),
        json!({"amount": 10, "currency": "USD"}),
    ];
    for arguments in cases {
        let message = call_err(&payments, "refund", arguments.clone()).await;
        assert!(!message.is_empty(), "{arguments}");
    }
    assert_eq!(
        call_ok(&payments, "list_refunds", json!({})).await,
        json!({"refunds": []})
    );
    payments.cancel().await.expect("close");
}
