//! Validators: the checks a shape match must pass to count (Luhn, mod-97, SSN ranges, JWT
//! header, entropy, ...). All take the whole text and a byte range so they can look at the
//! context; none panic on any input.

use std::net::Ipv6Addr;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Bytes `text[start..end]`, or empty when the range is not valid.
fn bytes_of(text: &str, start: usize, end: usize) -> &[u8] {
    text.as_bytes().get(start..end).unwrap_or(&[])
}

fn byte_before(text: &str, at: usize) -> Option<u8> {
    at.checked_sub(1)
        .and_then(|i| text.as_bytes().get(i).copied())
}

fn byte_at(text: &str, at: usize) -> Option<u8> {
    text.as_bytes().get(at).copied()
}

/// Luhn checksum over decimal digits.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// The decimal digits of `bytes` (as values), when there are at most `N` of them: the
/// validators run on every shape match of a dense text, where an allocation each costs more
/// than the check.
fn digits_upto<const N: usize>(bytes: &[u8]) -> Option<([u8; N], usize)> {
    let mut out = [0u8; N];
    let mut n = 0;
    for b in bytes.iter().filter(|b| b.is_ascii_digit()) {
        *out.get_mut(n)? = b - b'0';
        n += 1;
    }
    Some((out, n))
}

/// The number the decimal digits of `bytes` spell (saturating), without collecting them.
fn decimal(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .filter(|b| b.is_ascii_digit())
        .fold(0u32, |n, &b| {
            n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
        })
}

fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |n, &d| {
        n.saturating_mul(10).saturating_add(u32::from(d))
    })
}

/// Whether the issuer prefix belongs to a known card scheme, for the number's length.
fn known_iin(d: &[u8]) -> bool {
    let p = |n: usize| number(d.get(..n).unwrap_or(&[]));
    let len = d.len();
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(2) => (2221..=2720).contains(&p(4)) && len == 16,
        Some(5) => ((51..=55).contains(&p(2)) && len == 16) || (maestro(p(2)) && len >= 12),
        Some(3) => {
            (matches!(p(2), 34 | 37) && len == 15)
                || ((matches!(p(3), 300..=305) || matches!(p(2), 36 | 38 | 39)) && len >= 14)
                || ((3528..=3589).contains(&p(4)) && len >= 16)
        }
        Some(6) => len >= 12,
        _ => false,
    }
}

fn maestro(two: u32) -> bool {
    two == 50 || (56..=58).contains(&two)
}

/// Separators, when present, must be one character used between regular groups.
fn card_grouping(bytes: &[u8]) -> bool {
    let Some(sep) = bytes.iter().copied().find(|b| !b.is_ascii_digit()) else {
        return true;
    };
    if bytes.iter().any(|&b| !b.is_ascii_digit() && b != sep) {
        return false;
    }
    let groups = || bytes.split(|&b| b == sep).map(<[u8]>::len);
    let count = groups().count();
    let fours = groups().enumerate().all(|(i, g)| {
        if i + 1 == count {
            (1..=4).contains(&g)
        } else {
            g == 4
        }
    });
    fours || groups().eq([4, 6, 5]) || groups().eq([4, 6, 4])
}

/// A payment card number: 13–19 digits, regular grouping, known prefix, Luhn-valid. A match
/// that ran on into a following number (`4111 1111 1111 1111 0`) is cut back group by group.
pub(crate) fn card(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let bytes = bytes_of(text, start, end);
    let cuts = (1..bytes.len())
        .rev()
        .filter(|&i| matches!(bytes.get(i), Some(b' ' | b'-')));
    for cut in std::iter::once(bytes.len()).chain(cuts) {
        let head = bytes.get(..cut).unwrap_or_default();
        let count = head.iter().filter(|b| b.is_ascii_digit()).count();
        if count < 13 {
            return None;
        }
        let Some((buf, n)) = digits_upto::<19>(head) else {
            continue;
        };
        let d = buf.get(..n).unwrap_or_default();
        if card_grouping(head) && known_iin(d) && luhn(d) {
            return Some((start, start + cut));
        }
    }
    None
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, n)| n)
}

/// mod-97 of an IBAN's alphanumeric characters, first four moved to the end.
fn iban_mod97(chars: &[u8]) -> Option<u32> {
    let (head, tail) = (chars.get(..4)?, chars.get(4..)?);
    let mut rem = 0u32;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    Some(rem)
}

/// An IBAN: known country, that country's length, mod-97 = 1. The match may run on into the
/// next word; the span is trimmed to the IBAN's length, which must end at a word boundary.
/// Returns the trimmed end and whether the checksum holds; `None` when not IBAN-shaped.
pub(crate) fn iban(text: &str, start: usize, end: usize) -> Option<(usize, bool)> {
    let bytes = bytes_of(text, start, end);
    let want = iban_length(bytes.get(..2)?)?;
    let mut chars = Vec::with_capacity(want);
    let mut cut = start;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b' ' {
            continue;
        }
        chars.push(b);
        if chars.len() == want {
            cut = start + i + 1;
            break;
        }
    }
    let boundary = !byte_at(text, cut).is_some_and(|b| b.is_ascii_alphanumeric());
    if chars.len() != want || !boundary {
        return None;
    }
    Some((cut, iban_mod97(&chars) == Some(1)))
}

/// A US SSN: area 001–899 but not 666, group 01–99, serial 0001–9999.
pub(crate) fn ssn(text: &str, start: usize, end: usize) -> bool {
    let Some((buf, 9)) = digits_upto::<9>(bytes_of(text, start, end)) else {
        return false;
    };
    let d = &buf;
    let area = number(d.get(..3).unwrap_or(&[]));
    let group = number(d.get(3..5).unwrap_or(&[]));
    let serial = number(d.get(5..).unwrap_or(&[]));
    (1..900).contains(&area) && area != 666 && group != 0 && serial != 0
}

/// A dotted quad with octets ≤ 255 that is not part of a longer dotted number.
pub(crate) fn ipv4(text: &str, start: usize, end: usize) -> bool {
    let Some(s) = text.get(start..end) else {
        return false;
    };
    let octets_ok = s.split('.').all(|o| o.parse::<u8>().is_ok());
    let dotted_before = byte_before(text, start) == Some(b'.')
        && byte_before(text, start.saturating_sub(1)).is_some_and(|b| b.is_ascii_digit());
    let dotted_after = byte_at(text, end) == Some(b'.')
        && byte_at(text, end + 1).is_some_and(|b| b.is_ascii_digit());
    octets_ok && !dotted_before && !dotted_after
}

/// An IPv6 address as `std` parses it, with at least one digit and two colons, standing alone.
pub(crate) fn ipv6(text: &str, start: usize, end: usize) -> bool {
    let Some(s) = text.get(start..end) else {
        return false;
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b':' || b == b'_';
    let alone =
        !byte_before(text, start).is_some_and(word) && !byte_at(text, end).is_some_and(word);
    alone
        && s.bytes().filter(|&b| b == b':').count() >= 2
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.parse::<Ipv6Addr>().is_ok()
}

/// A phone number: a plausible digit count, not glued to a longer number, not a date. A
/// match that ran on into the next number is cut back, group by group, to the longest prefix
/// with a plausible digit count.
pub(crate) fn phone(
    text: &str,
    start: usize,
    end: usize,
    min: usize,
    max: usize,
) -> Option<(usize, usize)> {
    let bytes = bytes_of(text, start, end);
    if byte_before(text, start).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let cuts = (1..bytes.len()).rev().filter(|&i| {
        matches!(bytes.get(i), Some(b' ' | b'.' | b'-' | b'/'))
            && bytes
                .get(i - 1)
                .is_some_and(|b| b.is_ascii_digit() || *b == b')')
    });
    for cut in std::iter::once(bytes.len()).chain(cuts) {
        let head = bytes.get(..cut).unwrap_or_default();
        let n = head.iter().filter(|b| b.is_ascii_digit()).count();
        if n < min {
            return None;
        }
        let glued = byte_at(text, start + cut).is_some_and(|b| b.is_ascii_alphanumeric());
        if n <= max && !glued && !numeric_date(head) {
            return Some((start, start + cut));
        }
    }
    None
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn plausible_year(y: u32, len: usize) -> bool {
    len == 2 || (1900..=2100).contains(&y)
}

/// `YYYY-MM-DD`, `DD/MM/YYYY`, `MM/DD/YYYY`, `DD.MM.YY` and friends with sane fields.
fn numeric_date(bytes: &[u8]) -> bool {
    let mut parts = bytes.split(|b| matches!(b, b'-' | b'/' | b'.'));
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if [a, b, c]
        .iter()
        .any(|p| p.is_empty() || !p.iter().all(u8::is_ascii_digit))
    {
        return false;
    }
    let (na, nb, nc) = (decimal(a), decimal(b), decimal(c));
    let day_month = |d: u32, m: u32| (1..=31).contains(&d) && (1..=12).contains(&m);
    if a.len() == 4 {
        plausible_year(na, 4) && day_month(nc, nb)
    } else {
        plausible_year(nc, c.len()) && (day_month(na, nb) || day_month(nb, na))
    }
}

/// A date of birth: numeric, or with a month name (`March 5, 1990`, `5 Mar 1990`).
pub(crate) fn date(text: &str, start: usize, end: usize) -> bool {
    let bytes = bytes_of(text, start, end);
    if bytes.iter().any(u8::is_ascii_alphabetic) {
        textual_date(bytes)
    } else {
        numeric_date(bytes)
    }
}

fn textual_date(bytes: &[u8]) -> bool {
    let lower = bytes.to_ascii_lowercase();
    let words: Vec<&[u8]> = lower
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let month = words.iter().any(|w| {
        w.first().is_some_and(u8::is_ascii_alphabetic)
            && MONTHS.iter().any(|m| w.starts_with(m.as_bytes()))
    });
    let nums: Vec<u32> = words
        .iter()
        .filter(|w| w.first().is_some_and(u8::is_ascii_digit))
        .map(|w| decimal(w))
        .collect();
    match nums.as_slice() {
        [day, year] => month && (1..=31).contains(day) && plausible_year(*year, 4),
        _ => false,
    }
}

const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JWT: the header segment decodes to a JSON object with a string `alg`.
pub(crate) fn jwt(text: &str, start: usize, end: usize) -> bool {
    let bytes = bytes_of(text, start, end);
    let Some(header) = bytes
        .split(|&b| b == b'.')
        .next()
        .filter(|h| h.len() <= 4096)
    else {
        return false;
    };
    let Ok(json) = B64URL.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| v.get("alg").map(serde_json::Value::is_string))
        .unwrap_or(false)
}

/// Shannon entropy of the bytes, in bits per byte.
pub(crate) fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

/// How many of lower, upper, digit, other a token uses.
fn char_classes(bytes: &[u8]) -> usize {
    let has = |f: fn(&u8) -> bool| usize::from(bytes.iter().any(f));
    has(u8::is_ascii_lowercase)
        + has(u8::is_ascii_uppercase)
        + has(u8::is_ascii_digit)
        + has(|b| !b.is_ascii_alphanumeric())
}

/// A generic secret: long enough, random-looking, mixing character classes, not a path or
/// the rest of a URL.
pub(crate) fn high_entropy(
    text: &str,
    start: usize,
    end: usize,
    min_len: usize,
    bits: f64,
) -> bool {
    let bytes = bytes_of(text, start, end);
    let slashes = bytes.iter().filter(|&&b| b == b'/').count();
    let path_like = bytes.first() == Some(&b'/') || (slashes >= 2 && bytes.contains(&b'.'));
    (min_len..=1024).contains(&bytes.len())
        && !path_like
        && char_classes(bytes) >= 2
        && bytes.iter().any(u8::is_ascii_digit)
        && entropy(bytes) >= bits
}

/// An OpenAI-style key mixes letters and digits.
pub(crate) fn openai(text: &str, start: usize, end: usize) -> bool {
    let bytes = bytes_of(text, start, end);
    bytes.iter().any(u8::is_ascii_digit) && bytes.iter().skip(3).any(u8::is_ascii_alphabetic)
}

/// `Bearer <token>`: the span becomes the token alone, which must look like a credential.
pub(crate) fn bearer(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let bytes = bytes_of(text, start, end);
    let skip = bytes
        .iter()
        .skip(6)
        .position(|b| !matches!(b, b' ' | b'\t'))?
        + 6;
    let token = bytes.get(skip..)?;
    let credential =
        token.len() >= 16 && !token.iter().all(u8::is_ascii_lowercase) && char_classes(token) >= 2;
    credential.then_some((start + skip, end))
}

/// `password: value` (the pattern matched key, separator and value): the span becomes the
/// value, which must not be a placeholder.
pub(crate) fn password_value(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let bytes = bytes_of(text, start, end);
    let sep = bytes.iter().position(|&b| b == b':' || b == b'=')?;
    let lead = bytes
        .get(sep + 1..)?
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'"' | b'\''))?;
    let value_start = start + sep + 1 + lead;
    let value = bytes_of(text, value_start, end);
    let lower = value.to_ascii_lowercase();
    let placeholder = value.iter().all(|&b| b == b'*' || b == b'x' || b == b'X')
        || [
            &b"null"[..],
            b"none",
            b"true",
            b"false",
            b"undefined",
            b"required",
        ]
        .contains(&lower.as_slice())
        || value.starts_with(b"[REDACTED")
        || value.starts_with(b"pii_");
    (value.len() >= 4 && !placeholder).then_some((value_start, end))
}

/// An e-mail address: RFC 5321 length limits on the local part and domain.
pub(crate) fn email(text: &str, start: usize, end: usize) -> bool {
    let bytes = bytes_of(text, start, end);
    let Some(at) = bytes.iter().position(|&b| b == b'@') else {
        return false;
    };
    at <= 64 && bytes.len() - at - 1 <= 253
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(f: fn(&str, usize, usize) -> bool, s: &str) -> bool {
        f(s, 0, s.len())
    }

    fn card_ok(s: &str) -> bool {
        card(s, 0, s.len()) == Some((0, s.len()))
    }

    #[test]
    fn luhn_accepts_test_cards_and_rejects_a_changed_digit() {
        assert!(card_ok("4111111111111111"));
        assert!(card_ok("4111 1111 1111 1111"));
        assert!(card_ok("3782-822463-10005"));
        assert!(!card_ok("4111111111111112"));
        assert!(!card_ok("4111 11111 111 1111"));
        assert!(!card_ok("9111111111111111"));
        let s = "4111 1111 1111 1111 0";
        assert_eq!(card(s, 0, s.len()), Some((0, 19)));
    }

    #[test]
    fn iban_checks_country_length_and_mod97() {
        let s = "DE89 3704 0044 0532 0130 00";
        assert_eq!(iban(s, 0, s.len()), Some((s.len(), true)));
        let s = "GB82WEST12345698765432";
        assert_eq!(iban(s, 0, s.len()), Some((s.len(), true)));
        let s = "DE88 3704 0044 0532 0130 00";
        assert_eq!(iban(s, 0, s.len()), Some((s.len(), false)));
        let s = "GB82 WEST 1234 5698 7654 32 THANKS";
        assert_eq!(iban(s, 0, s.len()), Some((27, true)));
        let s = "ZZ82 WEST 1234 5698 7654 32";
        assert_eq!(iban(s, 0, s.len()), None);
    }

    #[test]
    fn ssn_ranges() {
        assert!(whole(ssn, "123-45-6789"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(!whole(ssn, bad), "{bad}");
        }
    }

    #[test]
    fn addresses() {
        assert!(whole(ipv4, "192.168.1.10"));
        assert!(!whole(ipv4, "192.168.1.300"));
        let s = "v1.2.3.4.5";
        assert!(!ipv4(s, 1, 8));
        assert!(whole(ipv6, "2001:db8::1"));
        assert!(!whole(ipv6, "12:30:45"));
        assert!(!whole(ipv6, "00:1A:2B:3C:4D:5E"));
    }

    #[test]
    fn dates() {
        for ok in [
            "1990-01-31",
            "31/01/1990",
            "01/31/1990",
            "March 5, 1990",
            "5 Mar 1990",
        ] {
            assert!(whole(date, ok), "{ok}");
        }
        for bad in ["1990-13-45", "99/99/1990", "Foo 5, 1990"] {
            assert!(!whole(date, bad), "{bad}");
        }
    }

    #[test]
    fn jwt_header_must_name_an_alg() {
        let ok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig";
        assert!(whole(jwt, ok));
        let no_alg = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.sig";
        assert!(!whole(jwt, no_alg));
    }

    #[test]
    fn entropy_of_uniform_and_random() {
        assert!(entropy(b"aaaaaaaa") < 0.01);
        assert!(entropy(b"aB3$xY9!qLm2Pz7#") > 3.5);
    }

    #[test]
    fn password_value_skips_placeholders() {
        let s = "password: \"hunter22\"";
        assert_eq!(password_value(s, 0, s.len() - 1), Some((11, s.len() - 1)));
        let s = "password=****";
        assert_eq!(password_value(s, 0, s.len()), None);
    }
}
