//! Scenarios for the `crm` sample.

use serde_json::{Value, json};
use warden_samples::SampleKind;

use crate::support::{call_err, call_ok, connect};

fn ids(result: &Value) -> Vec<&str> {
    result["customers"]
        .as_array()
        .expect("customers list")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect()
}

fn luhn_valid(number: &str) -> bool {
    let digits: Option<Vec<u32>> = number.chars().map(|c| c.to_digit(10)).collect();
    let Some(digits) = digits else { return false };
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum.is_multiple_of(10)
}

fn plausible_ssn(ssn: &str) -> bool {
    let parts: Vec<&str> = ssn.split('-').collect();
    let [area, group, serial] = parts.as_slice() else {
        return false;
    };
    let numeric = |s: &str, len| s.len() == len && s.chars().all(|c| c.is_ascii_digit());
    numeric(area, 3)
        && numeric(group, 2)
        && numeric(serial, 4)
        && *area != "000"
        && *area != "666"
        && !area.starts_with('9')
        && *group != "00"
        && *serial != "0000"
}

#[tokio::test]
async fn search_matches_names_and_emails_case_insensitively() {
    let crm = connect(SampleKind::Crm).await;

    let by_name = call_ok(&crm, "search_customers", json!({"query": "NGUYEN"})).await;
    assert_eq!(ids(&by_name), ["C003"]);
    assert_eq!(
        by_name["customers"][0],
        json!({
            "id": "C003",
            "name": "Carol Nguyen",
            "email": "carol.nguyen@example.org",
            "phone": "+1-206-555-0103",
        }),
        "search returns only the non-sensitive fields"
    );

    let by_email = call_ok(&crm, "search_customers", json!({"query": "example.net"})).await;
    assert_eq!(ids(&by_email), ["C002", "C006", "C009"]);

    let none = call_ok(&crm, "search_customers", json!({"query": "zzz"})).await;
    assert_eq!(none, json!({"customers": []}));
    crm.cancel().await.expect("close");
}

#[tokio::test]
async fn search_returns_five_customers_unless_told_otherwise() {
    let crm = connect(SampleKind::Crm).await;
    let default = call_ok(&crm, "search_customers", json!({"query": "example"})).await;
    assert_eq!(ids(&default), ["C001", "C002", "C003", "C004", "C005"]);

    let two = call_ok(&crm, "search_customers", json!({"query": "", "limit": 2})).await;
    assert_eq!(ids(&two), ["C001", "C002"]);

    let all = call_ok(
        &crm,
        "search_customers",
        json!({"query": "", "limit": 1000}),
    )
    .await;
    assert_eq!(ids(&all).len(), 10);
    crm.cancel().await.expect("close");
}

#[tokio::test]
async fn every_customer_record_carries_plausible_sensitive_data() {
    let crm = connect(SampleKind::Crm).await;
    for n in 1..=10 {
        let id = format!("C{n:03}");
        let customer = call_ok(&crm, "get_customer", json!({"customer_id": id})).await;
        assert_eq!(customer["id"], id.as_str());
        for field in ["name", "email", "phone", "address", "tier", "notes"] {
            assert!(
                customer[field].as_str().is_some_and(|v| !v.is_empty()),
                "{id}.{field}"
            );
        }
        let ssn = customer["ssn"].as_str().expect("ssn");
        assert!(plausible_ssn(ssn), "{id} ssn {ssn}");
        let card = customer["card_number"].as_str().expect("card_number");
        assert_eq!(card.len(), 16, "{id} card {card}");
        assert!(luhn_valid(card), "{id} card {card} fails the Luhn check");
    }
    crm.cancel().await.expect("close");
}

#[tokio::test]
async fn customer_ids_are_forgiving_about_case_and_spaces() {
    let crm = connect(SampleKind::Crm).await;
    let customer = call_ok(&crm, "get_customer", json!({"customer_id": " c007 "})).await;
    assert_eq!(customer["name"], "Grace Kim");
    crm.cancel().await.expect("close");
}

#[tokio::test]
async fn an_unknown_customer_is_a_tool_error() {
    let crm = connect(SampleKind::Crm).await;
    let message = call_err(&crm, "get_customer", json!({"customer_id": "C999"})).await;
    assert!(message.contains("C999"), "{message}");

    let message = call_err(
        &crm,
        "update_customer",
        json!({"customer_id": "C999", "notes": "x"}),
    )
    .await;
    assert!(message.contains("C999"), "{message}");
    crm.cancel().await.expect("close");
}

#[tokio::test]
async fn an_update_persists_and_repeating_it_changes_nothing() {
    let crm = connect(SampleKind::Crm).await;
    let update = json!({
        "customer_id": "C002",
        "email": "bob@new.example",
        "tier": "gold",
        "notes": "Moved to gold after review.",
    });
    let updated = call_ok(&crm, "update_customer", update.clone()).await;
    assert_eq!(updated["email"], "bob@new.example");
    assert_eq!(updated["tier"], "gold");
    assert_eq!(
        updated["phone"], "+1-212-555-0102",
        "other fields unchanged"
    );

    let again = call_ok(&crm, "update_customer", update).await;
    assert_eq!(again, updated, "the update is idempotent");

    let read_back = call_ok(&crm, "get_customer", json!({"customer_id": "C002"})).await;
    assert_eq!(read_back, updated);
    let found = call_ok(&crm, "search_customers", json!({"query": "new.example"})).await;
    assert_eq!(ids(&found), ["C002"]);
    crm.cancel().await.expect("close");
}

#[tokio::test]
async fn each_handler_starts_from_the_same_seed() {
    let first = connect(SampleKind::Crm).await;
    call_ok(
        &first,
        "update_customer",
        json!({"customer_id": "C001", "name": "Changed"}),
    )
    .await;
    let second = connect(SampleKind::Crm).await;
    let fresh = call_ok(&second, "get_customer", json!({"customer_id": "C001"})).await;
    assert_eq!(fresh["name"], "Alice Johnson");
    first.cancel().await.expect("close");
    second.cancel().await.expect("close");
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_not_crashes() {
    let crm = connect(SampleKind::Crm).await;
    let cases = [
        ("search_customers", json!({})),
        ("search_customers", json!({"query": 42})),
        ("search_customers", json!({"query": "a", "limit": -1})),
        ("get_customer", json!({"id": "C001"})),
        ("update_customer", json!({"customer_id": "C001"})),
        (
            "update_customer",
            json!({"customer_id": "C001", "tier": "diamond"}),
        ),
        (
            "update_customer",
            json!({"customer_id": "C001", "email": "not an email"}),
        ),
        (
            "update_customer",
            json!({"customer_id": "C001", "name": "  "}),
        ),
    ];
    for (tool, arguments) in cases {
        let message = call_err(&crm, tool, arguments.clone()).await;
        assert!(!message.is_empty(), "{tool} {arguments}");
    }
    // The server is still healthy and nothing was changed.
    let alice = call_ok(&crm, "get_customer", json!({"customer_id": "C001"})).await;
    assert_eq!(alice["email"], "alice.johnson@example.com");
    assert_eq!(alice["tier"], "gold");
    crm.cancel().await.expect("close");
}
