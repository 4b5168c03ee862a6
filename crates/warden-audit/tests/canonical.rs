//! The canonical event encoding: covers every field, round-trips, is canonical JSON.

mod common;

use common::{arb_event, full_event, time};
use proptest::prelude::*;
use serde_json::Value;
use warden_audit::canonical::{
    CanonicalError, PREFIX_V1, canonical_bytes, canonical_json, decode, differing_fields, normalize,
};
use warden_core::event::{AuditEvent, EventKind, Finding, Outcome, Verdict};
use warden_core::model::Mode;

type Mutation = (&'static str, fn(&mut AuditEvent));

/// One change per field (and per finding sub-field), each the smallest that matters.
const MUTATIONS: &[Mutation] = &[
    ("id", |e| e.id.push('x')),
    ("correlation_id", |e| e.correlation_id.push('x')),
    ("parent_id", |e| e.parent_id = None),
    ("kind", |e| e.kind = EventKind::Admin),
    ("started_at", |e| {
        e.started_at += chrono::Duration::microseconds(1)
    }),
    ("finished_at", |e| {
        e.finished_at += chrono::Duration::microseconds(1)
    }),
    ("channel", |e| e.channel = "rest".into()),
    ("agent", |e| e.agent = None),
    ("user", |e| e.user = Some(String::new())),
    ("task", |e| e.task = None),
    ("session", |e| e.session = None),
    ("operator", |e| e.operator = None),
    ("action", |e| e.action = Some("payments.refund2".into())),
    ("mode", |e| e.mode = Some(Mode::Sandbox)),
    ("bundle_hash", |e| e.bundle_hash.clear()),
    ("verdict", |e| e.verdict = Verdict::Deny),
    ("policies", |e| e.policies.reverse()),
    ("reason", |e| e.reason = None),
    ("outcome", |e| e.outcome = Outcome::ToolError),
    ("upstream_latency_us", |e| {
        e.upstream_latency_us = Some(1235)
    }),
    ("args_digest", |e| e.args_digest = None),
    ("result_digest", |e| e.result_digest = Some("cc".into())),
    ("approvers", |e| e.approvers.clear()),
    ("findings", |e| e.findings.clear()),
    ("findings.kind", |e| e.findings[0].kind.push('x')),
    ("findings.location", |e| {
        e.findings[0].location = "input".into()
    }),
    ("findings.count", |e| e.findings[0].count += 1),
    ("findings.action", |e| {
        e.findings[0].action = "flagged".into()
    }),
    ("mode -> None", |e| e.mode = None),
    ("latency -> None", |e| e.upstream_latency_us = None),
    ("approvers +1", |e| e.approvers.push(String::new())),
    ("policies +1", |e| e.policies.push(String::new())),
];

#[test]
fn every_field_change_changes_the_bytes() {
    let base = full_event();
    let base_bytes = canonical_bytes(&base);
    let mut seen = vec![base_bytes.clone()];
    for (name, mutate) in MUTATIONS {
        let mut e = full_event();
        mutate(&mut e);
        assert_ne!(e, base, "mutation {name} changed nothing");
        let bytes = canonical_bytes(&e);
        assert!(
            !seen.contains(&bytes),
            "mutation {name} did not change the bytes"
        );
        seen.push(bytes.clone());
        let mut want = e.clone();
        normalize(&mut want);
        assert_eq!(
            decode(&bytes),
            Ok(want),
            "mutation {name} does not round-trip"
        );
    }
}

/// Every field of the Rust struct (as serde sees it) is a key of the canonical object, and
/// each top-level field has a mutation above.
#[test]
fn the_encoding_covers_every_field() {
    let e = full_event();
    let serde_keys = keys(&serde_json::to_value(&e).unwrap());
    let canonical_keys = keys(&parse(&canonical_bytes(&e)));
    assert_eq!(serde_keys, canonical_keys);
    assert_eq!(canonical_keys.len(), 24);
    for key in &canonical_keys {
        assert!(
            MUTATIONS.iter().any(|(name, _)| name == key),
            "no mutation for field {key}"
        );
    }
    let finding_keys = keys(&serde_json::to_value(&e.findings[0]).unwrap());
    for key in finding_keys {
        let name = format!("findings.{key}");
        assert!(
            MUTATIONS.iter().any(|(n, _)| *n == name),
            "no mutation for {name}"
        );
    }
}

#[test]
fn known_event_has_known_bytes() {
    let mut e = full_event();
    e.reason = Some("quote \" backslash \\ tab \t nul \u{0} é \u{2028}".into());
    let bytes = canonical_bytes(&e);
    let text = std::str::from_utf8(&bytes).unwrap();
    let want = concat!(
        "warden-event-v1\n",
        r#"{"action":"payments.refund","agent":"billing-bot","approvers":["bob"],"#,
        r#""args_digest":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","#,
        r#""bundle_hash":"b3f1c2","channel":"mcp","#,
        r#""correlation_id":"0190f5c6-7d7e-7a3b-9c1d-000000000001","#,
        r#""findings":[{"action":"redacted","count":2,"kind":"dlp.ssn","location":"result"}],"#,
        r#""finished_at":"2025-01-02T03:04:05.223456Z","#,
        r#""id":"0190f5c6-7d7e-7a3b-9c1d-2e3f4a5b6c7d","kind":"tool_call","mode":"execute","#,
        r#""operator":"ops","outcome":"ok","#,
        r#""parent_id":"0190f5c6-7d7e-7a3b-9c1d-000000000000","#,
        r#""policies":["refunds-small","default"],"#,
        "\"reason\":\"quote \\\" backslash \\\\ tab \\t nul \\u0000 é \u{2028}\",",
        r#""result_digest":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","#,
        r#""session":"sess-7","started_at":"2025-01-02T03:04:05.123456Z","task":"task-42","#,
        r#""upstream_latency_us":1234,"user":"alice@example.com","verdict":"allow"}"#,
    );
    assert_eq!(text, want);
    let mut minimal = AuditEvent::begin(EventKind::AuthFailure, "rest", Some("c".into()));
    minimal.id = "i".into();
    minimal.started_at = time(0);
    minimal.finished_at = time(0);
    let text = String::from_utf8(canonical_bytes(&minimal)).unwrap();
    assert_eq!(
        text,
        concat!(
            "warden-event-v1\n",
            r#"{"action":null,"agent":null,"approvers":[],"args_digest":null,"bundle_hash":"","#,
            r#""channel":"rest","correlation_id":"c","findings":[],"#,
            r#""finished_at":"1970-01-01T00:00:00.000000Z","id":"i","kind":"auth_failure","#,
            r#""mode":null,"operator":null,"outcome":"failed","parent_id":null,"policies":[],"#,
            r#""reason":null,"result_digest":null,"session":null,"#,
            r#""started_at":"1970-01-01T00:00:00.000000Z","task":null,"#,
            r#""upstream_latency_us":null,"user":null,"verdict":"none"}"#
        )
    );
}

#[test]
fn sub_microsecond_precision_is_dropped() {
    let mut e = full_event();
    let before = canonical_bytes(&e);
    e.started_at += chrono::Duration::nanoseconds(999);
    assert_eq!(canonical_bytes(&e), before);
    normalize(&mut e);
    assert_eq!(decode(&before), Ok(e));
}

#[test]
fn leap_seconds_round_trip() {
    use chrono::NaiveDate;
    let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
        .unwrap()
        .and_utc();
    let mut e = full_event();
    e.started_at = leap;
    let bytes = canonical_bytes(&e);
    assert!(String::from_utf8_lossy(&bytes).contains("\"2016-12-31T23:59:60.500000Z\""));
    assert_eq!(decode(&bytes), Ok(e));
}

#[test]
fn decode_refuses_anything_but_the_canonical_form() {
    let good = canonical_bytes(&full_event());
    let text = String::from_utf8(good.clone()).unwrap();
    let json = &text[PREFIX_V1.len()..];
    let cases: Vec<(String, &str)> = vec![
        (json.to_owned(), "no prefix"),
        (format!("warden-event-v2\n{json}"), "other version"),
        (
            text.replacen("{\"action\"", "{ \"action\"", 1),
            "whitespace",
        ),
        (
            text.replacen("\"agent\":\"billing-bot\",", "", 1),
            "missing key",
        ),
        (text.replacen("{", "{\"extra\":1,", 1), "unknown key"),
        (
            text.replacen(
                "\"action\":\"payments.refund\",\"agent\":\"billing-bot\"",
                "\"agent\":\"billing-bot\",\"action\":\"payments.refund\"",
                1,
            ),
            "key order",
        ),
        (
            text.replacen("\"billing-bot\"", "\"billing\\u002dbot\"", 1),
            "needless escape",
        ),
        (text.replacen(".123456Z", ".123456+00:00", 1), "offset"),
        (text.replacen(".123456Z", ".1234560Z", 1), "seven digits"),
        (text.replacen(".123456Z", "Z", 1), "no fraction"),
        (
            text.replacen("\"tool_call\"", "\"ToolCall\"", 1),
            "enum name",
        ),
        (text.replacen("\"execute\"", "\"run\"", 1), "mode"),
        (text.replacen(":1234,", ":1234.0,", 1), "float"),
        (text.replacen(":1234,", ":01234,", 1), "leading zero"),
        (format!("{text} "), "trailing space"),
        (text[..text.len() - 1].to_owned(), "truncated"),
        (String::new(), "empty"),
    ];
    for (bytes, what) in cases {
        assert!(
            decode(bytes.as_bytes()).is_err(),
            "{what}: accepted {bytes}"
        );
    }
    assert!(matches!(
        decode(b"warden-event-v1\n{}"),
        Err(CanonicalError::Json(_))
    ));
}

#[test]
fn differing_fields_names_them() {
    let a = canonical_bytes(&full_event());
    let mut e = full_event();
    e.agent = None;
    e.outcome = Outcome::Failed;
    let b = canonical_bytes(&e);
    assert_eq!(differing_fields(&a, &b), ["agent", "outcome"]);
    assert_eq!(differing_fields(&a, b"junk"), ["<record>"]);
}

#[test]
fn canonical_json_sorts_keys_by_utf16() {
    let v: Value = serde_json::from_str(
        r#"{"b":1,"a":[true,null,{"z":-5,"y":"\u0007"}],"\ud83d\ude00":0,"\uffff":0}"#,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(canonical_json(&v).unwrap()).unwrap(),
        "{\"a\":[true,null,{\"y\":\"\\u0007\",\"z\":-5}],\"b\":1,\"😀\":0,\"\u{ffff}\":0}"
    );
    assert!(canonical_json(&serde_json::json!({"f": 1.5})).is_err());
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes.strip_prefix(PREFIX_V1).unwrap()).unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

proptest! {
    #[test]
    fn round_trips(event in arb_event()) {
        let bytes = canonical_bytes(&event);
        let mut want = event.clone();
        normalize(&mut want);
        prop_assert_eq!(decode(&bytes), Ok(want.clone()));
        prop_assert_eq!(canonical_bytes(&want), bytes);
    }

    /// The hand-written encoder emits exactly what the generic sorted-key serializer makes
    /// of the same JSON: keys in order, escapes minimal.
    #[test]
    fn keys_are_sorted(event in arb_event()) {
        let bytes = canonical_bytes(&event);
        let reserialized = canonical_json(&parse(&bytes)).unwrap();
        prop_assert_eq!(&bytes[PREFIX_V1.len()..], &reserialized[..]);
    }

    #[test]
    fn distinct_events_have_distinct_bytes(a in arb_event(), b in arb_event()) {
        let (mut a, mut b) = (a, b);
        normalize(&mut a);
        normalize(&mut b);
        prop_assert_eq!(a == b, canonical_bytes(&a) == canonical_bytes(&b));
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut record = PREFIX_V1.to_vec();
        record.extend_from_slice(&bytes);
        let _ = decode(&record);
        let _ = decode(&bytes);
    }
}

#[test]
fn findings_are_encoded_in_order() {
    let mut e = full_event();
    e.findings.push(Finding {
        kind: "a".into(),
        location: "input".into(),
        count: 0,
        action: "flagged".into(),
    });
    let mut swapped = e.clone();
    swapped.findings.reverse();
    assert_ne!(canonical_bytes(&e), canonical_bytes(&swapped));
}
