//! Property tests: redaction never leaves a detected value behind, and nothing panics on
//! arbitrary UTF-8.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::json;
use warden_core::{ClassLevel, DataClasses};
use warden_dlp::{
    DlpConfig, FieldAction, FieldRules, Inspector, PseudonymKey, Scanner, inspect_arguments,
    inspect_call_tool_result, keep_only, redact_text, scan_injection,
};

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(&DlpConfig::default()).expect("default config"))
}

/// Values every detector family should find, with the context some of them need.
const PLANTED: &[&str] = &[
    "jane.doe@example.com",
    "+44 20 7946 0958",
    "(415) 555-0101",
    "4111 1111 1111 1111",
    "5555555555554444",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "ssn 234567890",
    "192.168.10.20",
    "2001:db8::8a2e:370:7334",
    "DOB: 1990-01-31",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "xoxb-123456789012-abcdefghijkl",
    "sk_live_51H8abcdefGHIJKLmnop",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
    "Bearer abcDEF123456ghiJKL789",
    "password: hunter22",
    "api_key=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
];

/// Filler text (any printable characters) with planted values between spaces.
fn text_with_planted_values() -> impl Strategy<Value = String> {
    let filler = "\\PC{0,24}";
    let piece = prop_oneof![
        2 => filler.prop_map(|s| s),
        1 => prop::sample::select(PLANTED).prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.join(" "))
}

fn actions() -> Vec<FieldAction> {
    let key = PseudonymKey::new(b"property key").expect("key");
    vec![
        FieldAction::Mask,
        FieldAction::Drop,
        FieldAction::Pseudonym(key),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn redaction_never_leaves_a_detected_value_in_the_output(text in text_with_planted_values()) {
        let scanner = scanner();
        let spans = scanner.scan(&text);
        for action in actions() {
            let (out, tally) = redact_text(&text, &spans, ClassLevel(0), &action, scanner.classes());
            for span in &spans {
                let value = &text[span.start..span.end];
                if value.chars().count() >= 6 {
                    prop_assert!(!out.contains(value), "{action:?} left `{value}` ({}) in {out:?}", span.kind);
                }
            }
            prop_assert_eq!(tally.changed() as usize, spans.len());
        }
    }

    #[test]
    fn planted_values_are_found(value in prop::sample::select(PLANTED), before in "[a-z ]{0,12}", after in "[a-z ]{0,12}") {
        let text = format!("{before} {value} {after}");
        let spans = scanner().scan(&text);
        prop_assert!(!spans.is_empty(), "nothing found in {text:?}");
    }

    #[test]
    fn scanning_arbitrary_utf8_never_panics_and_spans_are_well_formed(text in any::<String>()) {
        check_everything(&text)?;
    }

    #[test]
    fn scanning_number_soup_never_panics(text in "[0-9 +().:/@a-fA-F_=-]{0,80}") {
        check_everything(&text)?;
    }

    #[test]
    fn scanning_lossy_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_everything(&String::from_utf8_lossy(&bytes))?;
    }
}

fn check_everything(text: &str) -> Result<(), TestCaseError> {
    let scanner = scanner();
    let spans = scanner.scan(text);
    for s in &spans {
        prop_assert!(s.start < s.end && s.end <= text.len());
        prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
    }
    prop_assert!(spans.windows(2).all(|w| w[0].end <= w[1].start));
    for action in actions() {
        let (out, _) = redact_text(text, &spans, ClassLevel(1), &action, scanner.classes());
        prop_assert!(out.len() <= text.len() + 32 * spans.len());
    }
    for f in scan_injection(text, &["example.com"]) {
        prop_assert!(f.start < f.end && f.end <= text.len());
        prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    }
    let rules = FieldRules::unclassified(&DataClasses::default(), "internal").expect("rules");
    let action = FieldAction::Mask;
    let inspector = Inspector {
        scanner,
        rules: &rules,
        clearance: ClassLevel(1),
        action: &action,
        allowed_hosts: &[],
    };
    let mut result = json!({
        "content": [{"type": "text", "text": text}, {"type": "text", "text": format!("{{\"k\": {}}}", json!(text))}],
        "structuredContent": {"notes": text, text: [text]},
    });
    prop_assert!(inspect_call_tool_result(&mut result, &inspector).is_ok());
    let mut args = json!({"body": text});
    prop_assert!(inspect_arguments(&mut args, &inspector).is_ok());
    let _ = keep_only(&mut args, &[format!("/{text}")]);
    Ok(())
}
