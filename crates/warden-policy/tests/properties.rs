//! Properties that must hold for any policies and any arguments.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Arguments for `payments.refund`, well- and ill-typed.
fn refund_input() -> impl Strategy<Value = Value> {
    let amount = prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-2000i64..2000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,8}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!([1, 2])),
    ];
    let text = prop_oneof![
        ".{0,12}".prop_map(Value::from),
        Just(Value::Null),
        any::<i32>().prop_map(Value::from)
    ];
    (
        proptest::option::of(amount),
        proptest::option::of(text.clone()),
        proptest::option::of(text),
    )
        .prop_map(|(amount, currency, customer)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("amount", amount),
                ("currency", currency),
                ("customer_id", customer),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

/// A policy that can never permit finance-bot's refund: other principals, other tools, a
/// contradiction, or any forbid.
fn non_matching_policy() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1000).prop_map(|i| format!("permit(principal == Warden::Agent::\"ghost-{i}\", action, resource);")),
        Just("permit(principal, action == Warden::Action::\"email.send\", resource);".to_owned()),
        Just("permit(principal in Warden::Role::\"support\", action in Warden::Action::\"upstream:payments\", resource);".to_owned()),
        (-5000i64..5000).prop_map(|x| format!(
            "permit(principal, action == Warden::Action::\"payments.refund\", resource) when {{ context.input.amount > {x} && context.input.amount < {x} }};"
        )),
        (-5000i64..5000).prop_map(|x| format!(
            "forbid(principal, action, resource) when {{ context.mode == \"execute\" || {x} > 0 }};"
        )),
        Just("permit(principal is Warden::User, action, resource);".to_owned()),
    ]
}

fn decide_refund(bundle: &warden_policy::PolicyBundle, input: Value) -> warden_policy::Decision {
    decide(bundle, "finance-bot", None, "payments.refund", input)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn nothing_is_allowed_when_no_permit_matches(
        policies in proptest::collection::vec(non_matching_policy(), 0..30),
        inputs in proptest::collection::vec(refund_input(), 1..8),
    ) {
        let bundle = bundle_of(&[("p.cedar", &policies.join("\n"))]).unwrap_or_else(|d| panic!("{d}"));
        for input in inputs {
            let d = decide_refund(&bundle, input.clone());
            prop_assert!(!d.allowed, "allowed {input} with {policies:?}: {}", d.reason);
        }
        // Listing over-approximates: a permit whose condition on the arguments can never hold
        // (`amount > x && amount < x`) still lists the tool, so only check argument-free sets.
        if !policies.iter().any(|p| p.contains("context.input")) {
            prop_assert!(!may_list(&bundle, "finance-bot", None, "payments.refund"));
        }
    }

    #[test]
    fn a_limit_allows_exactly_the_well_typed_refunds_below_it(limit in -1000i64..1000, input in refund_input()) {
        let text = format!(
            "permit(principal, action == Warden::Action::\"payments.refund\", resource) when {{ context.input.amount < {limit} }};"
        );
        let bundle = bundle_of(&[("p.cedar", &text)]).unwrap_or_else(|d| panic!("{d}"));
        let well_typed = input.get("amount").is_some_and(|a| a.is_i64() || a.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.2e18))
            && input.get("currency").is_some_and(Value::is_string)
            && input.get("customer_id").is_some_and(Value::is_string);
        let below = input.get("amount").and_then(Value::as_f64).is_some_and(|a| a < limit as f64);
        let d = decide_refund(&bundle, input.clone());
        prop_assert_eq!(d.allowed, well_typed && below, "{} -> {}", input, d.reason);
    }

    #[test]
    fn a_hidden_tool_is_denied_whatever_the_arguments(
        permit_above in proptest::option::of(-100i64..100),
        forbid_above in proptest::option::of(-100i64..100),
        forbid_all in any::<bool>(),
        inputs in proptest::collection::vec(refund_input(), 1..8),
    ) {
        let mut text = String::new();
        if let Some(x) = permit_above {
            text += &format!("permit(principal, action == Warden::Action::\"payments.refund\", resource) when {{ context.input.amount > {x} }};\n");
        }
        if let Some(x) = forbid_above {
            text += &format!("forbid(principal, action, resource) when {{ {x} > 0 || context.input has currency }};\n");
        }
        if forbid_all {
            text += "forbid(principal in Warden::Role::\"finance\", action in Warden::Action::\"risk:critical\", resource);\n";
        }
        let bundle = bundle_of(&[("p.cedar", &text)]).unwrap_or_else(|d| panic!("{d}"));
        if !may_list(&bundle, "finance-bot", None, "payments.refund") {
            for input in inputs {
                let d = decide_refund(&bundle, input.clone());
                prop_assert!(!d.allowed, "hidden but allowed: {input} with {text}");
            }
        }
    }
}
