//! What each sample advertises: tool names, schemas and annotations.

use serde_json::{Value, json};
use warden_samples::SampleKind;

use crate::support::connect;

/// (tool, readOnly, destructive, idempotent); `None` means "not relevant"
/// (the MCP spec ignores the last two for read-only tools).
type Expected = (&'static str, bool, Option<bool>, Option<bool>);

fn expected_tools(kind: SampleKind) -> Vec<Expected> {
    match kind {
        SampleKind::Crm => vec![
            ("get_customer", true, None, None),
            ("search_customers", true, None, None),
            ("update_customer", false, Some(false), Some(true)),
        ],
        SampleKind::Payments => vec![
            ("cancel_refund", false, Some(true), Some(false)),
            ("list_refunds", true, None, None),
            ("refund", false, Some(true), Some(false)),
        ],
        SampleKind::Email => vec![
            ("list_outbox", true, None, None),
            ("read_inbox", true, None, None),
            ("send", false, Some(true), Some(false)),
        ],
        SampleKind::Echo => vec![("echo", true, None, None)],
        SampleKind::Faulty => vec![
            ("crash", true, None, None),
            ("garbage", true, None, None),
            ("hang", true, None, None),
            ("ok", true, None, None),
        ],
    }
}

#[test]
fn sample_kinds_round_trip_through_their_names() {
    for kind in SampleKind::ALL {
        assert_eq!(kind.to_string().parse::<SampleKind>(), Ok(kind));
    }
    assert_eq!("CRM".parse::<SampleKind>(), Ok(SampleKind::Crm));
    let error = "ledger".parse::<SampleKind>().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("crm, payments, email, echo, faulty")
    );
}

#[tokio::test]
async fn every_sample_lists_its_tools_with_schemas_and_honest_annotations() {
    for kind in SampleKind::ALL {
        let client = connect(kind).await;
        let info = client.peer_info().expect("server info");
        let name = info.server_info.as_ref().map(|i| i.name.as_str());
        assert_eq!(name, Some(format!("warden-sample-{kind}").as_str()));

        let tools = client.list_all_tools().await.expect("tools/list");
        let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        let expected = expected_tools(kind);
        let expected_names: Vec<_> = expected.iter().map(|e| e.0.to_owned()).collect();
        assert_eq!(names, expected_names, "{kind} tools");

        for (tool_name, read_only, destructive, idempotent) in expected {
            let tool = tools.iter().find(|t| t.name == tool_name).expect("listed");
            let what = format!("{kind}.{tool_name}");
            assert!(
                tool.description.as_deref().is_some_and(|d| !d.is_empty()),
                "{what} has a description"
            );
            let input = Value::Object((*tool.input_schema).clone());
            assert_eq!(input["type"], "object", "{what} input schema");
            if let Some(properties) = input["properties"].as_object() {
                for (property, schema) in properties {
                    assert!(
                        schema["description"].is_string(),
                        "{what}.{property} has a description"
                    );
                }
            }
            let output = tool.output_schema.as_ref().expect("outputSchema");
            assert_eq!(output.get("type"), Some(&json!("object")), "{what} output");
            for schema in [&input, &Value::Object((**output).clone())] {
                assert!(
                    !schema.to_string().contains("$ref"),
                    "{what} schemas are self-contained: {schema}"
                );
            }

            let annotations = tool.annotations.as_ref().expect("annotations");
            assert_eq!(
                annotations.read_only_hint,
                Some(read_only),
                "{what} readOnly"
            );
            if destructive.is_some() {
                assert_eq!(
                    annotations.destructive_hint, destructive,
                    "{what} destructive"
                );
            }
            if idempotent.is_some() {
                assert_eq!(annotations.idempotent_hint, idempotent, "{what} idempotent");
            }
        }
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn required_arguments_are_declared_in_the_input_schema() {
    let cases = [
        (SampleKind::Crm, "search_customers", vec!["query"]),
        (SampleKind::Crm, "get_customer", vec!["customer_id"]),
        (SampleKind::Crm, "update_customer", vec!["customer_id"]),
        (
            SampleKind::Payments,
            "refund",
            vec!["amount", "currency", "customer_id"],
        ),
        (SampleKind::Payments, "cancel_refund", vec!["refund_id"]),
        (SampleKind::Email, "send", vec!["to", "subject", "body"]),
        (SampleKind::Echo, "echo", vec!["payload"]),
    ];
    for (kind, tool_name, required) in cases {
        let client = connect(kind).await;
        let tools = client.list_all_tools().await.expect("tools/list");
        let tool = tools.iter().find(|t| t.name == tool_name).expect("listed");
        let mut declared: Vec<_> = tool.input_schema["required"]
            .as_array()
            .expect("required list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        declared.sort_unstable();
        let mut required = required;
        required.sort_unstable();
        assert_eq!(declared, required, "{kind}.{tool_name}");
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn refund_schema_states_amount_and_currency_constraints() {
    let client = connect(SampleKind::Payments).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let refund = tools.iter().find(|t| t.name == "refund").expect("listed");
    let properties = &refund.input_schema["properties"];
    assert_eq!(properties["amount"]["type"], "integer");
    assert_eq!(properties["amount"]["minimum"], 1);
    assert_eq!(properties["currency"]["pattern"], "^[A-Za-z]{3}$");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn calling_an_unknown_tool_is_a_protocol_error() {
    let client = connect(SampleKind::Echo).await;
    let outcome = crate::support::try_call(&client, "nope", json!({})).await;
    assert!(outcome.is_err(), "{outcome:?}");
    client.cancel().await.expect("close");
}
