//! Measuring the detectors: a labelled corpus generator (deterministic for a seed) and a
//! span-overlap scorer, shared by the `accuracy` example and the comparison with other tools
//! (`bench/dlp`).
//!
//! The corpus is ASCII, so byte offsets (Rust) and character offsets (Python) agree. Each
//! sentence holds zero, one or two labelled values (e-mail addresses, phone numbers, payment
//! cards that pass Luhn, IBANs that pass mod-97, US SSNs in valid ranges, IPv4 and IPv6
//! addresses) in varied formats and contexts, or look-alikes that are *not* such values
//! (cards failing Luhn, SSNs in never-issued ranges, IBANs with a wrong checksum, impossible
//! IPv4s, dates, order numbers, versions, amounts), which a good detector leaves alone.
//!
//! Entity names are Presidio's (`EMAIL_ADDRESS`, `PHONE_NUMBER`, `CREDIT_CARD`, `IBAN_CODE`,
//! `US_SSN`, `IP_ADDRESS`), so both tools are scored against the same labels.
//!
//! Matching: a prediction matches a gold span of the same entity type when the two overlap by
//! at least one character. Recall is the share of gold spans matched by some prediction;
//! precision is the share of predictions (of the scored types) that match some gold span;
//! F1 is their harmonic mean. Predictions of other types are not scored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DetectorKind;

/// The entity types scored, in report order.
pub const ENTITIES: [&str; 6] = [
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
];

/// The scored entity type a Warden detector reports, if any.
pub fn entity_of(kind: &DetectorKind) -> Option<&'static str> {
    Some(match kind {
        DetectorKind::Email => "EMAIL_ADDRESS",
        DetectorKind::Phone => "PHONE_NUMBER",
        DetectorKind::PaymentCard => "CREDIT_CARD",
        DetectorKind::Iban => "IBAN_CODE",
        DetectorKind::Ssn => "US_SSN",
        DetectorKind::IpAddress => "IP_ADDRESS",
        _ => return None,
    })
}

/// A labelled (or predicted) span: `[start, end)` offsets and an entity type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledSpan {
    pub start: usize,
    pub end: usize,
    #[serde(rename = "type")]
    pub entity: String,
}

/// One sentence of the corpus with its gold spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub text: String,
    pub spans: Vec<LabelledSpan>,
}

/// Counts for one entity type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Gold spans.
    pub gold: u64,
    /// Gold spans matched by a prediction.
    pub found: u64,
    /// Predictions.
    pub predicted: u64,
    /// Predictions that match a gold span.
    pub correct: u64,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.predicted)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.gold)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Per-entity counts over a corpus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scores {
    pub by_entity: BTreeMap<String, Counts>,
}

impl Scores {
    /// Add one sentence: its gold spans and the predictions (of any type; only the scored
    /// types count).
    pub fn add(&mut self, gold: &[LabelledSpan], predicted: &[LabelledSpan]) {
        let overlaps = |a: &LabelledSpan, b: &LabelledSpan| {
            a.entity == b.entity && a.start < b.end && b.start < a.end
        };
        for entity in ENTITIES {
            let counts = self.by_entity.entry(entity.to_owned()).or_default();
            let g: Vec<&LabelledSpan> = gold.iter().filter(|s| s.entity == entity).collect();
            let p: Vec<&LabelledSpan> = predicted.iter().filter(|s| s.entity == entity).collect();
            counts.gold += g.len() as u64;
            counts.predicted += p.len() as u64;
            counts.found += g
                .iter()
                .filter(|g| p.iter().any(|p| overlaps(g, p)))
                .count() as u64;
            counts.correct += p
                .iter()
                .filter(|p| g.iter().any(|g| overlaps(g, p)))
                .count() as u64;
        }
    }
}

/// A small deterministic PRNG (SplitMix64): the corpus depends only on the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

const FIRST: &[&str] = &[
    "james", "mary", "robert", "linda", "michael", "sarah", "david", "karen", "daniel", "nancy",
    "omar", "priya", "wei", "fatima", "lukas", "sofia", "mateo", "aiko", "ivan", "chloe",
];
const LAST: &[&str] = &[
    "smith", "johnson", "garcia", "miller", "davis", "martinez", "lopez", "wilson", "anderson",
    "thomas", "nguyen", "kim", "patel", "mueller", "rossi", "dubois", "tanaka", "novak",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "acme-corp.com",
    "contoso.io",
    "globex.co.uk",
    "initech.de",
    "umbrella.fr",
    "hooli.dev",
    "corp.example.travel",
];
const US_AREA: &[&str] = &[
    "212", "213", "206", "305", "312", "404", "415", "503", "512", "617", "646", "702", "713",
    "808", "917", "303", "602", "619", "718", "773",
];
const NAMES: &[&str] = &[
    "Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
    "Oscar", "Peggy", "Trent", "Victor", "Walter",
];

fn email(r: &mut Rng) -> String {
    let (f, l, d) = (*r.pick(FIRST), *r.pick(LAST), *r.pick(DOMAINS));
    match r.below(5) {
        0 => format!("{f}.{l}@{d}"),
        1 => format!("{}{l}@{d}", &f[..1]),
        2 => format!("{f}{l}{}@{d}", r.range(1, 99)),
        3 => format!("{f}_{l}+{}@{d}", r.pick(&["billing", "news", "work", "x"])),
        _ => format!("{}.{}@{d}", capitalize(f), capitalize(l)),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn phone(r: &mut Rng) -> String {
    let area = *r.pick(US_AREA);
    let exchange = r.range(201, 989).to_string();
    let line = r.digits(4);
    match r.below(8) {
        0 => format!("({area}) {exchange}-{line}"),
        1 => format!("{area}-{exchange}-{line}"),
        2 => format!("{area}.{exchange}.{line}"),
        3 => format!("+1 {area} {exchange} {line}"),
        4 => format!("+1-{area}-{exchange}-{line}"),
        5 => format!("+44 20 7{} {}", r.digits(3), r.digits(4)),
        6 => format!("+49 30 {} {}", r.range(2000, 8999), r.digits(4)),
        _ => format!(
            "+33 1 {} {} {} {}",
            r.range(40, 79),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
    }
}

/// The Luhn check digit for `body` (the digits before it).
fn luhn_digit(body: &str) -> u8 {
    let mut sum = 0u32;
    for (i, c) in body.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    ((10 - sum % 10) % 10) as u8
}

/// A card number's digits: Luhn-valid, or (when `valid` is false) off by one in the check digit.
fn card_digits(r: &mut Rng, valid: bool) -> String {
    let (prefix, len) = match r.below(4) {
        0 => ("4".to_owned(), 16),
        1 => (r.range(51, 55).to_string(), 16),
        2 => (r.pick(&["34", "37"]).to_string(), 15),
        _ => ("6011".to_owned(), 16),
    };
    let body = format!("{prefix}{}", r.digits(len - 1 - prefix.len()));
    let mut check = luhn_digit(&body);
    if !valid {
        check = (check + 1 + r.below(8) as u8) % 10;
    }
    format!("{body}{}", char::from(b'0' + check))
}

fn format_card(r: &mut Rng, digits: &str) -> String {
    let groups: &[usize] = if digits.len() == 15 {
        &[4, 6, 5]
    } else {
        &[4, 4, 4, 4]
    };
    let sep = *r.pick(&[" ", "-", ""]);
    let mut out = String::new();
    let mut at = 0;
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&digits[at..at + g]);
        at += g;
    }
    out
}

/// ISO 13616 check digits for `country` + `bban`.
fn iban_check(country: &str, bban: &str) -> u32 {
    let rearranged = format!("{bban}{country}00");
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = if c.is_ascii_digit() {
            c as u32 - '0' as u32
        } else {
            c.to_ascii_uppercase() as u32 - 'A' as u32 + 10
        };
        let mut push = |d: u32| rem = (rem * 10 + d) % 97;
        if v >= 10 {
            push(v / 10);
            push(v % 10);
        } else {
            push(v);
        }
    }
    98 - rem
}

fn letters(r: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'A' + r.below(26) as u8))
        .collect()
}

fn iban(r: &mut Rng, valid: bool) -> String {
    let (country, bban) = match r.below(6) {
        0 => ("DE", r.digits(18)),
        1 => ("GB", format!("{}{}", letters(r, 4), r.digits(14))),
        2 => ("FR", r.digits(23)),
        3 => ("NL", format!("{}{}", letters(r, 4), r.digits(10))),
        4 => ("ES", r.digits(20)),
        _ => ("IT", format!("{}{}", letters(r, 1), r.digits(22))),
    };
    let mut check = iban_check(country, &bban);
    if !valid {
        check = if check >= 50 {
            check - 1 - r.below(40) as u32
        } else {
            check + 1 + r.below(40) as u32
        };
    }
    let compact = format!("{country}{check:02}{bban}");
    if r.chance(60) {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        compact
    }
}

fn ssn(r: &mut Rng) -> String {
    let area = loop {
        let a = r.range(1, 899);
        if a != 666 {
            break a;
        }
    };
    let group = r.range(1, 99);
    let serial = r.range(1, 9999);
    let sep = if r.chance(85) { "-" } else { " " };
    format!("{area:03}{sep}{group:02}{sep}{serial:04}")
}

/// SSN-shaped numbers that were never issued: area 000, 666 or 900-999, group 00, serial 0000.
fn invalid_ssn(r: &mut Rng) -> String {
    let (area, group, serial) = match r.below(5) {
        0 => (0, r.range(1, 99), r.range(1, 9999)),
        1 => (666, r.range(1, 99), r.range(1, 9999)),
        2 => (r.range(900, 999), r.range(1, 99), r.range(1, 9999)),
        3 => (r.range(1, 665), 0, r.range(1, 9999)),
        _ => (r.range(1, 665), r.range(1, 99), 0),
    };
    format!("{area:03}-{group:02}-{serial:04}")
}

fn ip(r: &mut Rng) -> String {
    if r.chance(80) {
        format!(
            "{}.{}.{}.{}",
            r.range(1, 223),
            r.below(256),
            r.below(256),
            r.range(1, 254)
        )
    } else {
        let hex = |r: &mut Rng| format!("{:x}", r.below(0x10000));
        match r.below(2) {
            0 => format!(
                "2001:db8:{}:{}:{}:{}:{}:{}",
                hex(r),
                hex(r),
                hex(r),
                hex(r),
                hex(r),
                hex(r)
            ),
            _ => format!("fe80::{}:{}", hex(r), hex(r)),
        }
    }
}

fn invalid_ip(r: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        r.range(256, 999),
        r.below(256),
        r.range(300, 999),
        r.below(256)
    )
}

type Template = &'static [&'static str];

const EMAIL_T: Template = &[
    "Please send the signed contract to {} before Friday.",
    "You can reach {name} at {} for anything about the invoice.",
    "Contact: {}",
    "{name} wrote from {} asking about the refund.",
    "The newsletter bounced for {}, so we removed it from the list.",
    "Forwarding this thread to {} as discussed.",
];
const PHONE_T: &[&str] = &[
    "Call me back at {} when you have a minute.",
    "{name}'s mobile number is {}.",
    "For urgent issues phone the on-call desk on {}.",
    "Tel: {}",
    "She left a voicemail from {} this morning.",
    "The store can be reached at {} during opening hours.",
];
const CARD_T: &[&str] = &[
    "Please charge the card {} for the annual plan.",
    "{name} paid with credit card number {} yesterday.",
    "Card: {} exp 09/27",
    "The payment with {} was declined by the bank.",
    "Use {} for the hotel booking.",
];
const IBAN_T: &[&str] = &[
    "Wire the deposit to IBAN {} by the end of the month.",
    "{name}'s account is {}.",
    "Bank details: {}",
    "The refund goes to {} as requested.",
    "Please update the payee account to {} in the ERP.",
];
const SSN_T: &[&str] = &[
    "{name}'s social security number is {}.",
    "SSN: {}",
    "The form lists {} as the applicant's SSN.",
    "Verify the identity with {} before opening the account.",
    "Employee record: {name}, {}, hired in March.",
];
const IP_T: &[&str] = &[
    "The login came from {} at 03:14 UTC.",
    "Block traffic from {} on the firewall.",
    "Server {} stopped answering health checks.",
    "{name} connected via VPN from address {}.",
    "host={} status=502",
];
const TWO_T: &[&str] = &[
    "Customer {name}: e-mail {0}, phone {1}.",
    "Refund to card {2} was confirmed by mail to {0}.",
    "Payroll update for {name}: SSN {4}, IBAN {3}.",
    "Alert: {0} logged in from {5} and changed the password.",
    "Ship to {name}, phone {1}, billing card {2}.",
];
const NEGATIVE_T: &[&str] = &[
    "Order {neg_card} was shipped on 2024-03-15 and arrives within 5 days.",
    "Reference {neg_ssn} appears on the internal ticket.",
    "The old account {neg_iban} was closed in 2019.",
    "The log shows the bogus address {neg_ip} in the header.",
    "Version 4.12.3 fixed the crash reported in ticket 88213.",
    "The invoice total is $1,284.50, due on 12/31/2025.",
    "Meeting moved to 10:30; room 4B, building 7.",
    "Tracking number {neg_card} is not a card, it is a parcel id.",
    "Employee id {neg_ssn} was retired last year.",
    "Our office is at 1600 Amphitheatre Parkway, suite 200, zip 94043.",
    "ISBN 978-0-306-40615-7 is out of print.",
    "The team closed 1,024 tickets in Q3 and 987 in Q4.",
    "Build 2024.11.07.1532 passed all 3,417 tests.",
    "Lot {neg_card} failed the quality check at step 12.",
];

/// Kinds of value the generator makes, by index in `TWO_T` placeholders.
fn value(r: &mut Rng, which: usize) -> (String, &'static str) {
    match which {
        0 => (email(r), "EMAIL_ADDRESS"),
        1 => (phone(r), "PHONE_NUMBER"),
        2 => {
            let d = card_digits(r, true);
            (format_card(r, &d), "CREDIT_CARD")
        }
        3 => (iban(r, true), "IBAN_CODE"),
        4 => (ssn(r), "US_SSN"),
        _ => (ip(r), "IP_ADDRESS"),
    }
}

/// Fill `template`: `{name}` with a first name, `{}` with `single` (labelled), `{N}` with a
/// value of kind N (labelled), `{neg_*}` with look-alikes (not labelled).
fn fill(r: &mut Rng, template: &str, single: Option<(String, &'static str)>) -> Sample {
    let mut text = String::new();
    let mut spans = Vec::new();
    let mut rest = template;
    let mut single = single;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let key = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let labelled = match key {
            "name" => {
                text.push_str(r.pick::<&str>(NAMES));
                None
            }
            "" => single.take(),
            "neg_card" => {
                let d = card_digits(r, false);
                let formatted = format_card(r, &d);
                text.push_str(&formatted);
                None
            }
            "neg_ssn" => {
                text.push_str(&invalid_ssn(r));
                None
            }
            "neg_iban" => {
                text.push_str(&iban(r, false));
                None
            }
            "neg_ip" => {
                text.push_str(&invalid_ip(r));
                None
            }
            n => n.parse::<usize>().ok().map(|n| value(r, n)),
        };
        if let Some((v, entity)) = labelled {
            spans.push(LabelledSpan {
                start: text.len(),
                end: text.len() + v.len(),
                entity: entity.to_owned(),
            });
            text.push_str(&v);
        }
    }
    text.push_str(rest);
    Sample { text, spans }
}

/// `n` labelled sentences, the same for the same seed.
pub fn corpus(seed: u64, n: usize) -> Vec<Sample> {
    let mut r = Rng(seed);
    let singles: [(Template, usize); 6] = [
        (EMAIL_T, 0),
        (PHONE_T, 1),
        (CARD_T, 2),
        (IBAN_T, 3),
        (SSN_T, 4),
        (IP_T, 5),
    ];
    (0..n)
        .map(|_| match r.below(10) {
            0..=5 => {
                let (templates, which) = *r.pick(&singles);
                let template = *r.pick(templates);
                let v = value(&mut r, which);
                fill(&mut r, template, Some(v))
            }
            6 | 7 => {
                let template = *r.pick(TWO_T);
                fill(&mut r, template, None)
            }
            _ => {
                let template = *r.pick(NEGATIVE_T);
                fill(&mut r, template, None)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize, entity: &str) -> LabelledSpan {
        LabelledSpan {
            start,
            end,
            entity: entity.into(),
        }
    }

    #[test]
    fn the_corpus_is_deterministic_ascii_and_its_spans_hold_valid_values() {
        let a = corpus(7, 2000);
        assert_eq!(a, corpus(7, 2000));
        assert_ne!(a, corpus(8, 2000));
        let mut seen = BTreeMap::new();
        for s in &a {
            assert!(s.text.is_ascii(), "{}", s.text);
            for g in &s.spans {
                let v = &s.text[g.start..g.end];
                *seen.entry(g.entity.clone()).or_insert(0) += 1;
                match g.entity.as_str() {
                    "CREDIT_CARD" => {
                        let d: String = v.chars().filter(char::is_ascii_digit).collect();
                        let (body, check) = d.split_at(d.len() - 1);
                        assert_eq!(check.as_bytes()[0] - b'0', luhn_digit(body), "{v}");
                    }
                    "IBAN_CODE" => {
                        let c: String = v.chars().filter(|c| *c != ' ').collect();
                        let check: u32 = c[2..4].parse().expect("digits");
                        assert_eq!(check, iban_check(&c[..2], &c[4..]), "{v}");
                    }
                    "US_SSN" => {
                        let area: u32 = v[..3].parse().expect("area");
                        assert!(area != 0 && area != 666 && area < 900, "{v}");
                    }
                    "EMAIL_ADDRESS" => assert!(v.contains('@'), "{v}"),
                    _ => {}
                }
            }
        }
        for e in ENTITIES {
            assert!(seen.get(e).copied().unwrap_or(0) > 100, "{e}: {seen:?}");
        }
        assert!(a.iter().filter(|s| s.spans.is_empty()).count() > 100);
    }

    #[test]
    fn known_iban_check_digits_are_reproduced() {
        // The ISO 13616 example: GB82 WEST 1234 5698 7654 32.
        assert_eq!(iban_check("GB", "WEST12345698765432"), 82);
        assert_eq!(luhn_digit("411111111111111"), 1);
    }

    #[test]
    fn overlap_scoring_counts_each_side() {
        let mut s = Scores::default();
        let gold = [span(0, 10, "EMAIL_ADDRESS"), span(20, 30, "US_SSN")];
        let predicted = [
            span(2, 8, "EMAIL_ADDRESS"),   // overlaps: correct
            span(20, 30, "PHONE_NUMBER"),  // wrong type: a false positive
            span(40, 45, "EMAIL_ADDRESS"), // nothing there: a false positive
            span(0, 3, "PERSON"),          // not scored
        ];
        s.add(&gold, &predicted);
        let email = s.by_entity["EMAIL_ADDRESS"];
        assert_eq!(
            (email.gold, email.found, email.predicted, email.correct),
            (1, 1, 2, 1)
        );
        assert!((email.precision() - 0.5).abs() < 1e-9 && (email.recall() - 1.0).abs() < 1e-9);
        let ssn = s.by_entity["US_SSN"];
        assert_eq!((ssn.gold, ssn.found, ssn.predicted), (1, 0, 0));
        assert_eq!(ssn.f1(), 0.0);
        assert_eq!(s.by_entity["PHONE_NUMBER"].predicted, 1);
    }
}
