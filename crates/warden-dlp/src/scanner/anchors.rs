//! The anchor automaton: one Aho-Corasick pass over the text finds every place a detector
//! could start (digits, `@`, `::`, `-----BEGIN`, provider prefixes, keywords) and says which
//! family to run there.

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::groups::{self, prefix_id};
use crate::error::DlpError;

/// Keyword families, as bits: one keyword may open several windows.
pub(crate) const KW_SSN: u8 = 1;
pub(crate) const KW_DOB: u8 = 2;
pub(crate) const KW_SECRET: u8 = 4;
pub(crate) const KW_PASSWORD: u8 = 8;

/// What to do where an anchor matched.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// A digit: open a numeric window around the digit run.
    Digit,
    /// `@`: open an e-mail window.
    At,
    /// `::`: open a numeric window (compressed IPv6).
    DoubleColon,
    /// `-----BEGIN`: parse a PEM block.
    Pem,
    /// A provider prefix: run pattern `pattern` of the prefix family anchored here, when the
    /// text has exactly `literal` (the anchor pass ignores ASCII case) and the byte before is
    /// not part of such a token (`before`).
    Prefix {
        pattern: usize,
        literal: Option<&'static str>,
        before: fn(u8) -> bool,
    },
    /// A keyword of the given families (bits `KW_*`).
    Keyword(u8),
    /// A keyword of custom detector `index`.
    Custom(usize),
}

/// The anchor automaton and, per anchor pattern id, what to do.
#[derive(Debug)]
pub(crate) struct Anchors {
    pub ac: AhoCorasick,
    pub actions: Vec<Vec<Action>>,
}

const SSN_KEYWORDS: &[&str] = &["ssn", "social security", "social_security", "ss#"];
const DOB_KEYWORDS: &[&str] = &[
    "dob",
    "d.o.b",
    "date of birth",
    "date_of_birth",
    "dateofbirth",
    "birth date",
    "birthdate",
    "birth_date",
    "birthday",
    "born",
];
const SECRET_KEYWORDS: &[&str] = &[
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "api key",
    "access_key",
    "access key",
    "private_key",
    "credential",
    "authorization",
];
const PASSWORD_KEYWORDS: &[&str] = &["password", "passwd", "passphrase"];

fn prefixes() -> Vec<(&'static str, Action)> {
    use groups::{alnum, bearer_body, dash_word, dotted_token, word};
    let p = |pattern, literal, before: fn(u8) -> bool| Action::Prefix {
        pattern,
        literal: Some(literal),
        before,
    };
    let mut out = vec![
        ("AKIA", p(prefix_id::AWS, "AKIA", alnum)),
        ("ASIA", p(prefix_id::AWS, "ASIA", alnum)),
        ("github_pat_", p(prefix_id::GITHUB_PAT, "github_pat_", word)),
        ("sk_live_", p(prefix_id::STRIPE, "sk_live_", word)),
        ("rk_live_", p(prefix_id::STRIPE, "rk_live_", word)),
        ("AIza", p(prefix_id::GOOGLE, "AIza", dash_word)),
        ("sk-", p(prefix_id::OPENAI, "sk-", dash_word)),
        ("eyJ", p(prefix_id::JWT, "eyJ", dotted_token)),
    ];
    for lit in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        out.push((lit, p(prefix_id::GITHUB, lit, word)));
    }
    for lit in ["xoxa-", "xoxb-", "xoxp-", "xoxr-"] {
        out.push((lit, p(prefix_id::SLACK, lit, dash_word)));
    }
    out.push((
        "bearer",
        Action::Prefix {
            pattern: prefix_id::BEARER,
            literal: None,
            before: bearer_body,
        },
    ));
    out
}

fn keywords() -> Vec<(&'static str, u8)> {
    let mut out: Vec<(&'static str, u8)> = Vec::new();
    let families = [
        (SSN_KEYWORDS, KW_SSN),
        (DOB_KEYWORDS, KW_DOB),
        (SECRET_KEYWORDS, KW_SECRET),
        (PASSWORD_KEYWORDS, KW_SECRET | KW_PASSWORD),
    ];
    for (words, bits) in families {
        out.extend(words.iter().map(|w| (*w, bits)));
    }
    out
}

impl Anchors {
    /// The built-in anchors plus each custom detector's keywords.
    pub(crate) fn build(custom_keywords: &[Vec<String>]) -> Result<Self, DlpError> {
        let mut table: BTreeMap<Vec<u8>, Vec<Action>> = BTreeMap::new();
        let mut add = |lit: &[u8], action: Action| {
            table
                .entry(lit.to_ascii_lowercase())
                .or_default()
                .push(action);
        };
        for d in b'0'..=b'9' {
            add(&[d], Action::Digit);
        }
        add(b"@", Action::At);
        add(b"::", Action::DoubleColon);
        add(b"-----BEGIN", Action::Pem);
        for (lit, action) in prefixes() {
            add(lit.as_bytes(), action);
        }
        for (lit, bits) in keywords() {
            add(lit.as_bytes(), Action::Keyword(bits));
        }
        for (i, words) in custom_keywords.iter().enumerate() {
            for w in words.iter().filter(|w| !w.is_empty()) {
                add(w.as_bytes(), Action::Custom(i));
            }
        }
        let (literals, actions): (Vec<Vec<u8>>, Vec<Vec<Action>>) = table.into_iter().unzip();
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&literals)
            .map_err(|e| DlpError::Build {
                what: "anchor",
                reason: e.to_string(),
            })?;
        Ok(Self { ac, actions })
    }
}
