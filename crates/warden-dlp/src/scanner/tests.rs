use super::*;

fn scanner() -> Scanner {
    Scanner::new(&DlpConfig::default()).expect("default config builds")
}

fn kinds(text: &str) -> Vec<(DetectorKind, &str)> {
    scanner()
        .scan(text)
        .into_iter()
        .map(|s| (s.kind, &text[s.start..s.end]))
        .collect()
}

fn finds(text: &str, kind: DetectorKind, value: &str) {
    let found = kinds(text);
    assert!(
        found.iter().any(|(k, v)| *k == kind && *v == value),
        "{kind} `{value}` not found in {text:?}: {found:?}"
    );
}

fn finds_nothing(text: &str) {
    assert_eq!(kinds(text), vec![], "{text:?}");
}

#[test]
fn emails() {
    finds(
        "write to john.smith+tag@mail.example.co.uk.",
        DetectorKind::Email,
        "john.smith+tag@mail.example.co.uk",
    );
    finds_nothing("an @ sign alone, or foo@bar");
}

#[test]
fn phones() {
    for p in [
        "+1-415-555-0101",
        "+44 20 7946 0958",
        "(415) 555-0101",
        "415.555.0101",
        "+14155550101",
        "020 7946 0958",
        "01 23 45 67 89",
    ] {
        finds(&format!("call {p} today"), DetectorKind::Phone, p);
    }
    for not in [
        "order 4155550101",
        "on 2025-02-11 at noon",
        "id 12345678",
        "version 1.2.3",
        "ts 2025-02-11T10:20:30Z",
    ] {
        finds_nothing(not);
    }
}

#[test]
fn cards() {
    finds(
        "card 4111 1111 1111 1111 exp",
        DetectorKind::PaymentCard,
        "4111 1111 1111 1111",
    );
    finds(
        "amex 3782-822463-10005.",
        DetectorKind::PaymentCard,
        "3782-822463-10005",
    );
    finds(
        "n=5555555555554444",
        DetectorKind::PaymentCard,
        "5555555555554444",
    );
    finds_nothing("not a card 4111111111111112");
    finds_nothing("a long id 12345678901234567890123");
}

#[test]
fn ibans() {
    finds(
        "pay DE89 3704 0044 0532 0130 00 now",
        DetectorKind::Iban,
        "DE89 3704 0044 0532 0130 00",
    );
    finds(
        "IBAN:GB82WEST12345698765432",
        DetectorKind::Iban,
        "GB82WEST12345698765432",
    );
    finds_nothing("pay DE88 3704 0044 0532 0130 00 now");
}

#[test]
fn ssns() {
    finds("ssn 123-45-6789", DetectorKind::Ssn, "123-45-6789");
    finds("it is 123 45 6789 ok", DetectorKind::Ssn, "123 45 6789");
    finds("SSN: 123456789", DetectorKind::Ssn, "123456789");
    finds(
        "social security number is 234567890.",
        DetectorKind::Ssn,
        "234567890",
    );
    finds_nothing("order 123456789 shipped");
    finds_nothing("ssn 666-12-3456");
}

#[test]
fn ip_addresses() {
    finds(
        "host 192.168.1.10 up",
        DetectorKind::IpAddress,
        "192.168.1.10",
    );
    finds(
        "via 2001:db8::8a2e:370:7334.",
        DetectorKind::IpAddress,
        "2001:db8::8a2e:370:7334",
    );
    finds("loopback ::1 ok", DetectorKind::IpAddress, "::1");
    finds_nothing("lib 1.2.3.4.5 and 999.1.1.1 and 12:30:45");
}

#[test]
fn dates_of_birth_need_a_keyword() {
    finds("DOB: 1990-01-31", DetectorKind::DateOfBirth, "1990-01-31");
    finds(
        "born on March 5, 1990 in Ohio",
        DetectorKind::DateOfBirth,
        "March 5, 1990",
    );
    finds(
        "\"date_of_birth\": \"31/01/1990\"",
        DetectorKind::DateOfBirth,
        "31/01/1990",
    );
    finds_nothing("shipped 1990-01-31");
    finds_nothing("stubborn 1990-01-31");
}

#[test]
fn private_keys() {
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
    finds(
        &format!("here:\n{key}\nthanks"),
        DetectorKind::PrivateKey,
        key,
    );
}

#[test]
fn provider_tokens() {
    use DetectorKind as K;
    let cases = [
        (K::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE"),
        (K::GithubToken, "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
        (
            K::GithubToken,
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        ),
        (K::SlackToken, "xoxb-123456789012-abcdefghijkl"),
        (K::StripeKey, "sk_live_51H8abcdefGHIJKLmnop"),
        (K::GoogleApiKey, "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
        (K::OpenAiKey, "sk-proj-abc123DEF456ghi789JKL012"),
        (
            K::Jwt,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
    ];
    for (kind, token) in cases {
        finds(&format!("key={token} end"), kind, token);
    }
    finds(
        "Authorization: Bearer abcDEF123456ghiJKL789",
        K::BearerToken,
        "abcDEF123456ghiJKL789",
    );
    finds_nothing("a task-based approach, skAKIAIOSFODNN7EXAMPLE, Bearer tokens are common");
}

#[test]
fn keyword_secrets() {
    finds(
        "\"api_key\": \"a8f5f167f44f4964e6c998dee827110c\"",
        DetectorKind::GenericSecret,
        "a8f5f167f44f4964e6c998dee827110c",
    );
    finds("password: hunter22", DetectorKind::Password, "hunter22");
    finds(
        "db_password=S3cr3t!xY9#qLm2Pz&x=1",
        DetectorKind::Password,
        "S3cr3t!xY9#qLm2Pz",
    );
    finds_nothing("the secret ingredient is internationalization");
    finds_nothing("reset your password using the link");
    finds_nothing(
        "a new secret from https://vault.example.com/v1/secret/data/app2 or vault.example.com/v1/kv/a9",
    );
}

#[test]
fn most_sensitive_wins_an_overlap() {
    let s = scanner();
    let text = "ssn 123-45-6789";
    let spans = s.scan(text);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].kind, DetectorKind::Ssn);
}

#[test]
fn custom_detectors_with_and_without_keywords() {
    let config = DlpConfig {
        custom: vec![
            crate::CustomDetector {
                name: "employee_id".into(),
                pattern: r"EMP-\d{6}".into(),
                class: "confidential".into(),
                keywords: vec!["emp-".into()],
            },
            crate::CustomDetector {
                name: "project".into(),
                pattern: r"\bPROJECT-[A-Z]+\b".into(),
                class: "restricted".into(),
                keywords: vec![],
            },
        ],
        ..DlpConfig::default()
    };
    let s = Scanner::new(&config).unwrap();
    let text = "EMP-123456 works on PROJECT-ATLAS";
    let found: Vec<_> = s
        .scan(text)
        .into_iter()
        .map(|s| (s.kind.to_string(), &text[s.start..s.end]))
        .collect();
    assert_eq!(
        found,
        vec![
            ("employee_id".into(), "EMP-123456"),
            ("project".into(), "PROJECT-ATLAS")
        ]
    );
}

#[test]
fn bad_configs_are_typed_errors() {
    let unknown_class = DlpConfig {
        detector_classes: [("ssn".to_string(), "top-secret".to_string())].into(),
        ..DlpConfig::default()
    };
    assert!(matches!(
        Scanner::new(&unknown_class),
        Err(DlpError::UnknownClass { .. })
    ));
    let unknown_detector = DlpConfig {
        disabled: ["nope".to_string()].into(),
        ..DlpConfig::default()
    };
    assert!(matches!(
        Scanner::new(&unknown_detector),
        Err(DlpError::UnknownDetector(_))
    ));
    let bad_regex = DlpConfig {
        custom: vec![crate::CustomDetector {
            name: "x".into(),
            pattern: "(".into(),
            class: "internal".into(),
            keywords: vec![],
        }],
        ..DlpConfig::default()
    };
    assert!(matches!(
        Scanner::new(&bad_regex),
        Err(DlpError::BadCustomDetector { .. })
    ));
}

#[test]
fn disabled_detectors_and_class_overrides() {
    let config = DlpConfig {
        disabled: ["email".to_string()].into(),
        detector_classes: [("ip_address".to_string(), "restricted".to_string())].into(),
        ..DlpConfig::default()
    };
    let s = Scanner::new(&config).unwrap();
    let spans = s.scan("a@example.com from 10.0.0.1");
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].class, config.classes.level("restricted").unwrap());
}

#[test]
fn field_context_reaches_keyword_detectors() {
    let s = scanner();
    let spans = s.scan_field("ssn", "123456789");
    assert_eq!(
        (spans[0].start, spans[0].end, &spans[0].kind),
        (0, 9, &DetectorKind::Ssn)
    );
    assert!(s.scan("123456789").is_empty());
}

#[test]
fn non_ascii_text_is_fine() {
    let text = "Grüße — 電話 +49 30 123456789 — 🎉 e-mail: jürgen@example.de, ünïcödé";
    let spans = scanner().scan(text);
    assert!(
        spans
            .iter()
            .all(|s| text.is_char_boundary(s.start) && text.is_char_boundary(s.end))
    );
    assert!(spans.iter().any(|s| s.kind == DetectorKind::Phone));
}

#[test]
fn resolution_settles_chains_of_overlaps() {
    let span = |start, end, class| Span {
        start,
        end,
        kind: DetectorKind::Phone,
        class: ClassLevel(class),
    };
    let got = resolve(vec![
        span(30, 50, 2),
        span(0, 20, 2),
        span(15, 35, 3),
        span(60, 70, 1),
        span(60, 70, 1),
    ]);
    let got: Vec<_> = got.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(got, vec![(15, 35), (60, 70)]);
}

#[test]
fn a_scanner_is_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Scanner>();
    shareable::<crate::InjectionScanner>();
    shareable::<crate::FieldRules>();
}

mod digit_skipping {
    use proptest::prelude::*;

    use super::*;

    fn pair() -> &'static (Scanner, Scanner) {
        static PAIR: std::sync::OnceLock<(Scanner, Scanner)> = std::sync::OnceLock::new();
        PAIR.get_or_init(|| {
            let mut plain = scanner();
            plain.anchors = plain.anchors.without_digit_skipping();
            (scanner(), plain)
        })
    }

    /// Numbers of every shape next to the anchors that may sit inside a numeric window.
    fn numbery() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("4111 1111 1111 1111"),
            Just("4111111111111111"),
            Just("123-45-6789"),
            Just("123456789"),
            Just("+1-415-555-0199"),
            Just("(415) 555-0101"),
            Just("10.20.30.40"),
            Just("fe80::1"),
            Just("::"),
            Just("::1"),
            Just("2025-02-11"),
            Just("GB82 WEST 1234 5698 7654 32"),
            Just("DE89370400440532013000"),
            Just("7"),
            Just("12"),
            Just("0"),
            Just("-"),
            Just("."),
            Just(":"),
            Just(" "),
            Just("\n"),
            Just("\""),
            Just(","),
            Just("ssn"),
            Just("dob"),
            Just("born"),
            Just("token"),
            Just("password="),
            Just("a@b.co"),
            Just("x@"),
            Just("AKIA"),
            Just("sk-"),
            Just("eyJ"),
            Just("bearer "),
            Just("-----BEGIN"),
            Just("id"),
            Just("AB"),
            Just("abcdefgh12345678"),
            Just("é"),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|parts| parts.concat())
    }

    #[test]
    fn the_default_anchors_skip_digits() {
        assert!(scanner().anchors.skips_digits());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn skipping_digits_in_numeric_windows_changes_nothing(text in numbery()) {
            let (skipping, plain) = pair();
            prop_assert_eq!(skipping.scan(&text), plain.scan(&text));
        }
    }
}

mod words {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn word_bounds_match_a_byte_by_byte_walk(
            // Mostly non-space, so that stretches of eight and more are common.
            bytes in prop::collection::vec(prop_oneof![
                1 => Just(b' '), 1 => Just(b'\n'), 1 => Just(b'\r'), 1 => Just(b'\t'),
                1 => Just(0x0c), 2 => Just(b'!'), 2 => Just(0x1f), 20 => Just(b'a'),
                4 => Just(0xa0), 4 => Just(0xff), 10 => Just(b'7'),
            ], 0..64),
            at in 0usize..64,
            floor in 0usize..64,
        ) {
            let at = at.min(bytes.len());
            let floor = floor.min(at);
            let mut end = at;
            while bytes.get(end).is_some_and(|b| !b.is_ascii_whitespace()) {
                end += 1;
            }
            let mut start = at;
            while start > floor && bytes.get(start - 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                start -= 1;
            }
            prop_assert_eq!(word_end(&bytes, at), end);
            prop_assert_eq!(word_start(&bytes, at, floor), start);
        }
    }
}
