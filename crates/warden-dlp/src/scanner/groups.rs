//! The compiled automata: one multi-pattern regex per detector family, each pattern paired
//! with the kind it reports and the validator its matches must pass.
//!
//! Families run only where the anchor pass put them: over merged windows around anchors
//! (numbers, `@`, keywords) or anchored at a prefix hit (`AKIA`, `eyJ`, `Bearer`, ...).

use std::collections::HashMap;

use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use warden_core::ClassLevel;

use crate::error::DlpError;
use crate::kind::DetectorKind;
use crate::validate;

/// What a match of one pattern must pass, and how its span may be adjusted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Check {
    /// Custom detectors: the pattern is the whole check.
    Accept,
    /// Consumes the match and reports nothing (dates in the numeric family, so that phone
    /// patterns do not claim them).
    Sink,
    Email,
    Card,
    Iban,
    Ssn,
    Ipv4,
    Ipv6,
    Phone {
        min: usize,
        max: usize,
    },
    Date,
    Jwt,
    /// A prefixed token: not cut short (`after` must not continue it).
    Token {
        after: fn(u8) -> bool,
    },
    OpenAi,
    Bearer,
    Password,
    Secret,
}

/// Tuning the validators need from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub min_secret_len: usize,
    pub entropy_threshold: f64,
}

/// What a check made of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A value at this span (possibly narrower than the match).
    Value(usize, usize),
    /// Not a value, but nothing else may claim the text up to here.
    Consume(usize),
    /// Not a value: other patterns may try the same place.
    Reject,
}

impl Check {
    pub(crate) fn run(self, text: &str, start: usize, end: usize, tuning: Tuning) -> Verdict {
        let yes = |ok: bool| {
            if ok {
                Verdict::Value(start, end)
            } else {
                Verdict::Reject
            }
        };
        let adjusted = |span: Option<(usize, usize)>| match span {
            Some((s, e)) => Verdict::Value(s, e),
            None => Verdict::Reject,
        };
        match self {
            Check::Accept => Verdict::Value(start, end),
            Check::Sink => Verdict::Consume(end),
            Check::Email => yes(validate::email(text, start, end)),
            Check::Card => adjusted(validate::card(text, start, end)),
            Check::Iban => match validate::iban(text, start, end) {
                Some((cut, true)) => Verdict::Value(start, cut),
                // IBAN-shaped with a bad checksum: its digit groups are not phone numbers.
                Some((cut, false)) => Verdict::Consume(cut),
                None => Verdict::Reject,
            },
            Check::Ssn => yes(validate::ssn(text, start, end)),
            Check::Ipv4 => yes(validate::ipv4(text, start, end)),
            Check::Ipv6 => yes(validate::ipv6(text, start, end)),
            Check::Phone { min, max } => adjusted(validate::phone(text, start, end, min, max)),
            Check::Date => yes(validate::date(text, start, end)),
            Check::Jwt => yes(validate::jwt(text, start, end) && !text_byte(text, end, jwt_body)),
            Check::Token { after } => yes(!text_byte(text, end, after)),
            Check::OpenAi => {
                yes(validate::openai(text, start, end) && !text_byte(text, end, dash_word))
            }
            Check::Bearer => adjusted(validate::bearer(text, start, end)),
            Check::Password => adjusted(validate::password_value(text, start, end)),
            Check::Secret => adjusted(secret(text, start, end, tuning)),
        }
    }
}

fn text_byte(text: &str, at: usize, class: fn(u8) -> bool) -> bool {
    text.as_bytes().get(at).copied().is_some_and(class)
}

/// A generic secret token: leading `=` (from `key=value`) is not part of it.
fn secret(text: &str, start: usize, end: usize, tuning: Tuning) -> Option<(usize, usize)> {
    let lead = text
        .as_bytes()
        .get(start..end)?
        .iter()
        .take_while(|&&b| b == b'=')
        .count();
    let start = start + lead;
    validate::high_entropy(
        text,
        start,
        end,
        tuning.min_secret_len,
        tuning.entropy_threshold,
    )
    .then_some((start, end))
}

pub(crate) fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
pub(crate) fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
pub(crate) fn dash_word(b: u8) -> bool {
    word(b) || b == b'-'
}
pub(crate) fn jwt_body(b: u8) -> bool {
    dash_word(b)
}
pub(crate) fn dotted_token(b: u8) -> bool {
    dash_word(b) || b == b'.'
}
pub(crate) fn bearer_body(b: u8) -> bool {
    dash_word(b) || matches!(b, b'.' | b'~' | b'+' | b'/' | b'=')
}

/// How a region search goes on after a match that failed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// At the next word: a shorter or later match inside may still count (numbers).
    NextWord,
    /// After the match: tokens are maximal runs, a piece of one is not a token.
    MatchEnd,
}

/// One pattern of a family.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub kind: DetectorKind,
    /// The kind's class, resolved when the scanner is built; `None` when disabled.
    pub class: Option<ClassLevel>,
    pub check: Check,
}

/// One family: a multi-pattern regex and its patterns' specs, by pattern id.
#[derive(Debug)]
pub(crate) struct Group {
    pub re: Regex,
    pub specs: Vec<Spec>,
    pub restart: Restart,
}

type Pattern<'a> = (&'a str, DetectorKind, Check);

impl Group {
    fn build(what: &'static str, patterns: &[Pattern], restart: Restart) -> Result<Self, DlpError> {
        let sources: Vec<&str> = patterns.iter().map(|p| p.0).collect();
        // No literal prefilter: families search short windows the anchors already chose, where
        // a prefilter finds little to skip and restarts the automaton at each of its hits
        // (a digit prefilter did so at every digit of an SSN window).
        let re = Regex::builder()
            .configure(Regex::config().auto_prefilter(false))
            .syntax(syntax::Config::new().unicode(false))
            .build_many(&sources)
            .map_err(|e| DlpError::Build {
                what,
                reason: e.to_string(),
            })?;
        let specs = patterns
            .iter()
            .map(|(_, kind, check)| Spec {
                kind: kind.clone(),
                class: None,
                check: *check,
            })
            .collect();
        Ok(Self { re, specs, restart })
    }

    /// Fill in each pattern's class from the scanner's class table.
    pub(crate) fn with_classes(mut self, class_of: &HashMap<DetectorKind, ClassLevel>) -> Self {
        for spec in &mut self.specs {
            spec.class = class_of.get(&spec.kind).copied();
        }
        self
    }

    /// A custom detector: the user's pattern, full `regex` syntax (Unicode on).
    pub(crate) fn custom(name: &str, pattern: &str) -> Result<Self, DlpError> {
        let re = Regex::new(pattern).map_err(|e| DlpError::BadCustomDetector {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            re,
            specs: vec![Spec {
                kind: DetectorKind::Custom(name.into()),
                class: None,
                check: Check::Accept,
            }],
            restart: Restart::MatchEnd,
        })
    }
}

/// Numbers and number-like identifiers, run over windows around digit runs and `::`.
/// Order is priority where two patterns match at the same place.
pub(crate) fn numeric() -> Result<Group, DlpError> {
    use DetectorKind as K;
    let patterns: &[Pattern] = &[
        (
            r"\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b",
            K::Iban,
            Check::Iban,
        ),
        (
            r"\b[0-9](?:[ \-]?[0-9]){12,18}\b",
            K::PaymentCard,
            Check::Card,
        ),
        (
            r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b",
            K::Ssn,
            Check::Ssn,
        ),
        (
            r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b",
            K::IpAddress,
            Check::Ipv4,
        ),
        (
            r"(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,8}(?:\.[0-9]{1,3}){0,3}",
            K::IpAddress,
            Check::Ipv6,
        ),
        (
            r"\b(?:[0-9]{4}[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.][0-9]{2,4})\b",
            K::Phone,
            Check::Sink,
        ),
        (
            r"\+[1-9][0-9]{0,2}(?:[ .\-]?\([0-9]{1,4}\))?(?:[ .\-]?[0-9]{1,5}){1,6}",
            K::Phone,
            Check::Phone { min: 8, max: 15 },
        ),
        (
            r"(?:\([2-9][0-9]{2}\)[ ]?|\b[2-9][0-9]{2}[\-. ])[2-9][0-9]{2}[\-. ][0-9]{4}\b",
            K::Phone,
            Check::Phone { min: 10, max: 10 },
        ),
        (
            r"\b0[1-9][0-9]{0,4}(?:[ .\-/][0-9]{2,8}){1,4}\b",
            K::Phone,
            Check::Phone { min: 9, max: 12 },
        ),
    ];
    Group::build("numeric", patterns, Restart::NextWord)
}

/// E-mail addresses, run around `@`.
pub(crate) fn email() -> Result<Group, DlpError> {
    let patterns: &[Pattern] = &[(
        r"\b[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b",
        DetectorKind::Email,
        Check::Email,
    )];
    Group::build("email", patterns, Restart::MatchEnd)
}

/// Bare nine-digit SSNs, run only near `ssn` / `social security`.
pub(crate) fn ssn_near_keyword() -> Result<Group, DlpError> {
    let patterns: &[Pattern] = &[(
        r"\b[0-9]{3}[\- ]?[0-9]{2}[\- ]?[0-9]{4}\b",
        DetectorKind::Ssn,
        Check::Ssn,
    )];
    Group::build("ssn", patterns, Restart::NextWord)
}

const MONTH: &str = "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\\.?";

/// Dates, run only after `dob` / `date of birth` / `born`.
pub(crate) fn date_of_birth() -> Result<Group, DlpError> {
    let numeric = r"\b(?:[0-9]{4}[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.](?:[0-9]{4}|[0-9]{2}))\b";
    let month_first = format!(r"(?i)\b{MONTH}[ ]+[0-9]{{1,2}}(?:st|nd|rd|th)?,?[ ]+[0-9]{{4}}\b");
    let day_first =
        format!(r"(?i)\b[0-9]{{1,2}}(?:st|nd|rd|th)?[ ]+(?:of[ ]+)?{MONTH},?[ ]+[0-9]{{4}}\b");
    let patterns: &[Pattern] = &[
        (numeric, DetectorKind::DateOfBirth, Check::Date),
        (&month_first, DetectorKind::DateOfBirth, Check::Date),
        (&day_first, DetectorKind::DateOfBirth, Check::Date),
    ];
    Group::build("date of birth", patterns, Restart::NextWord)
}

/// Random-looking tokens of at least `min_len` bytes, run only after secret keywords; the
/// entropy check decides.
pub(crate) fn secret_near_keyword(min_len: usize) -> Result<Group, DlpError> {
    let pattern = format!(r"[A-Za-z0-9!#$%*+\-./=?@^_~|]{{{min_len},}}");
    let patterns: &[Pattern] = &[(&pattern, DetectorKind::GenericSecret, Check::Secret)];
    Group::build("generic secret", patterns, Restart::MatchEnd)
}

/// `password: value`, run anchored right after a password keyword.
pub(crate) fn password() -> Result<Group, DlpError> {
    let patterns: &[Pattern] = &[(
        r#"[A-Za-z0-9_\-]{0,24}["']?[ \t]*[:=][ \t]*["']?[A-Za-z0-9!#$%()*+\-./:<=>?@\[\]^_{|}~]{1,256}"#,
        DetectorKind::Password,
        Check::Password,
    )];
    Group::build("password", patterns, Restart::MatchEnd)
}

/// Ids of the prefix family's patterns, used by the anchors that start them.
pub(crate) mod prefix_id {
    pub const AWS: usize = 0;
    pub const GITHUB: usize = 1;
    pub const GITHUB_PAT: usize = 2;
    pub const SLACK: usize = 3;
    pub const STRIPE: usize = 4;
    pub const GOOGLE: usize = 5;
    pub const OPENAI: usize = 6;
    pub const JWT: usize = 7;
    pub const BEARER: usize = 8;
}

/// Provider keys and tokens, each run anchored at its prefix.
pub(crate) fn prefixed() -> Result<Group, DlpError> {
    use DetectorKind as K;
    let patterns: &[Pattern] = &[
        (
            r"(?:AKIA|ASIA)[A-Z0-9]{16}",
            K::AwsAccessKey,
            Check::Token { after: alnum },
        ),
        (
            r"gh[pousr]_[A-Za-z0-9]{36,251}",
            K::GithubToken,
            Check::Token { after: word },
        ),
        (
            r"github_pat_[A-Za-z0-9_]{22,251}",
            K::GithubToken,
            Check::Token { after: word },
        ),
        (
            r"xox[abpr]-[A-Za-z0-9\-]{10,251}",
            K::SlackToken,
            Check::Token { after: dash_word },
        ),
        (
            r"[sr]k_live_[A-Za-z0-9]{16,247}",
            K::StripeKey,
            Check::Token { after: word },
        ),
        (
            r"AIza[0-9A-Za-z_\-]{35}",
            K::GoogleApiKey,
            Check::Token { after: dash_word },
        ),
        (
            r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,250}",
            K::OpenAiKey,
            Check::OpenAi,
        ),
        (
            r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",
            K::Jwt,
            Check::Jwt,
        ),
        (
            r"(?i:bearer)[ \t]+[A-Za-z0-9\-._~+/]{16,}=*",
            K::BearerToken,
            Check::Bearer,
        ),
    ];
    Group::build("prefixed token", patterns, Restart::MatchEnd)
}
