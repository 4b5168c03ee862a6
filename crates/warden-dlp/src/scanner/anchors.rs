//! The anchor automaton: one pass over the text finds every place a detector could start
//! (digits, `@`, `::`, `-----BEGIN`, provider prefixes, keywords) and says which family to run
//! there.
//!
//! Matching is Aho-Corasick's leftmost-longest over ASCII-case-insensitive literals. The
//! automaton is compiled as a regex DFA (literals are patterns in order of decreasing length,
//! so that leftmost-first priority picks the longest literal at the leftmost start) and then
//! flattened into a plain transition table walked by hand, because on dense text the pass
//! stops at every digit and restarting must cost nothing. Every literal has one length, so a
//! hit's start is its end less that length.
//!
//! A DFA step waits for the one before it, which bounds a walk over every byte. On prose
//! almost every letter could begin a keyword but few byte pairs do, so a pair filter (no
//! step depends on another) finds the next place a literal could start, and the automaton
//! walks from there only until it is back in its start state with nothing pending: past that
//! point no literal begun since the filter's place can match, so filtering resumes. The
//! leftmost hit after a place with no literal start is the leftmost hit after the next
//! candidate, so the hits are exactly the unfiltered automaton's.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex_automata::dfa::{Automaton, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::syntax;
use regex_automata::{Anchored, MatchKind};

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

/// The anchor automaton and, per anchor pattern id, the literal's length and what to do.
#[derive(Debug)]
pub(crate) struct Anchors {
    table: Table,
    /// The same automaton without the one-digit literals, and its pattern ids in `table`'s
    /// numbering; `None` when a digit could mean more than opening a numeric window (a custom
    /// keyword that is or begins with a digit).
    digitless: Option<(Table, Vec<usize>)>,
    lens: Vec<usize>,
    pub actions: Vec<Vec<Action>>,
}

/// A DFA as a flat transition table. States are numbered with the special ones (a match is
/// pending, or no anchor can match any more) first, and stored premultiplied by the stride, so
/// one comparison per byte tells an ordinary step from one that needs a look.
#[derive(Debug)]
struct Table {
    /// Byte pairs a literal may start with (in any ASCII case), as bits of
    /// `second << 8 | first` (the pair as a little-endian `u16`); a one-byte literal sets
    /// every pair it begins.
    pairs: Box<[u64; PAIR_WORDS]>,
    /// Byte to equivalence class.
    classes: [u8; 256],
    /// `trans[state + class]`: the next state (premultiplied).
    trans: Vec<u32>,
    /// Rows are a power of two long, so that a state's number is a shift away.
    shift: u32,
    start: usize,
    /// Premultiplied states below this are special.
    special_end: usize,
    /// Per state (not premultiplied): what it means, and the pattern pending at the end of
    /// the text.
    kinds: Vec<Kind>,
    at_eoi: Vec<Option<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    /// A match of this pattern ends one byte before the byte that led here.
    Match(usize),
    /// No anchor can match from here: the leftmost one, if any, is settled.
    Dead,
}

/// One anchor hit: pattern id and byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub id: usize,
    pub start: usize,
    pub end: usize,
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
        let mut entries: Vec<(Vec<u8>, Vec<Action>)> =
            literals(custom_keywords).into_iter().collect();
        // Longest first: see the module docs. The sort is stable, so ties keep a fixed order.
        entries.sort_by_key(|(lit, _)| std::cmp::Reverse(lit.len()));
        let lens = entries.iter().map(|(lit, _)| lit.len()).collect();
        let lits: Vec<&[u8]> = entries.iter().map(|(lit, _)| lit.as_slice()).collect();
        let table = Table::compile(&lits)?;
        let is_digit = |lit: &[u8]| matches!(lit, [d] if d.is_ascii_digit());
        let digits_only_open_windows = entries.iter().all(|(lit, actions)| match lit.first() {
            Some(d) if d.is_ascii_digit() => {
                is_digit(lit) && matches!(actions.as_slice(), [Action::Digit])
            }
            _ => true,
        });
        let digitless = if digits_only_open_windows {
            let ids: Vec<usize> = (0..lits.len())
                .filter(|&i| lits.get(i).is_some_and(|l| !is_digit(l)))
                .collect();
            let kept: Vec<&[u8]> = ids.iter().filter_map(|&i| lits.get(i).copied()).collect();
            Some((Table::compile(&kept)?, ids))
        } else {
            None
        };
        let actions = entries.into_iter().map(|(_, a)| a).collect();
        Ok(Self {
            table,
            digitless,
            lens,
            actions,
        })
    }

    /// The leftmost-longest anchor starting at or after `at`.
    pub(crate) fn find(&self, text: &str, at: usize) -> Option<Hit> {
        let (id, end) = self.table.find(text.as_bytes(), at, text.len())?;
        self.hit(id, end)
    }

    /// Whether [`Anchors::find_digitless`] may be used.
    pub(crate) fn skips_digits(&self) -> bool {
        self.digitless.is_some()
    }

    /// The leftmost-longest anchor other than a digit that starts in `at..limit`.
    pub(crate) fn find_digitless(&self, text: &str, at: usize, limit: usize) -> Option<Hit> {
        let (table, ids) = self.digitless.as_ref()?;
        let (id, end) = table.find(text.as_bytes(), at, limit)?;
        self.hit(*ids.get(id)?, end).filter(|hit| hit.start < limit)
    }

    /// Look for digits everywhere, as when a custom keyword begins with one.
    #[cfg(test)]
    pub(crate) fn without_digit_skipping(mut self) -> Self {
        self.digitless = None;
        self
    }

    fn hit(&self, id: usize, end: usize) -> Option<Hit> {
        let start = end.checked_sub(self.lens.get(id).copied()?)?;
        Some(Hit { id, start, end })
    }
}

impl Table {
    /// The automaton of `lits` (lower case, longest first).
    fn compile(lits: &[&[u8]]) -> Result<Self, DlpError> {
        let build_error = |reason: String| DlpError::Build {
            what: "anchor",
            reason,
        };
        let sources: Vec<String> = lits.iter().map(|lit| literal_regex(lit)).collect();
        let dfa = dense::Builder::new()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
            .configure(dense::Config::new().match_kind(MatchKind::LeftmostFirst))
            .build_many(&sources)
            .map_err(|e| build_error(e.to_string()))?;
        let mut table =
            Table::flatten(&dfa).ok_or_else(|| build_error("no fixed start state".into()))?;
        for lit in lits {
            table.allow_start(lit);
        }
        Ok(table)
    }

    /// Every state reachable from the unanchored start state, renumbered. `None` when the
    /// start state depends on the text before it (it cannot: anchors have no look-around).
    fn flatten(dfa: &dense::DFA<Vec<u32>>) -> Option<Self> {
        let start = dfa.universal_start_state(Anchored::No)?;
        let byte_classes = dfa.byte_classes();
        let alphabet = byte_classes.alphabet_len().saturating_sub(1).max(1);
        let shift = alphabet.next_power_of_two().trailing_zeros();
        let stride = 1usize << shift;
        let mut classes = [0u8; 256];
        let mut representative = vec![0u8; alphabet];
        for b in 0..=255u8 {
            let class = byte_classes.get(b);
            if let Some(c) = classes.get_mut(usize::from(b)) {
                *c = class;
            }
            if let Some(r) = representative.get_mut(usize::from(class)) {
                *r = b;
            }
        }
        let kind = |sid: StateID| {
            if dfa.is_match_state(sid) {
                Kind::Match(dfa.match_pattern(sid, 0).as_usize())
            } else if dfa.is_dead_state(sid) || dfa.is_quit_state(sid) {
                Kind::Dead
            } else {
                Kind::Plain
            }
        };
        let mut seen = vec![start];
        let mut known = HashSet::from([start]);
        let mut next = 0;
        while let Some(&sid) = seen.get(next) {
            next += 1;
            for &b in &representative {
                let to = dfa.next_state(sid, b);
                if known.insert(to) {
                    seen.push(to);
                }
            }
        }
        // Special states first; the sort is stable, so the numbering is deterministic.
        seen.sort_by_key(|&sid| kind(sid) == Kind::Plain);
        let index: HashMap<StateID, usize> =
            seen.iter().enumerate().map(|(i, &sid)| (sid, i)).collect();
        let mut trans = Vec::with_capacity(seen.len() * stride);
        for &sid in &seen {
            for &b in &representative {
                let to = index.get(&dfa.next_state(sid, b))?;
                trans.push(u32::try_from(to * stride).ok()?);
            }
            trans.resize(trans.len() + stride - alphabet, 0);
        }
        let kinds: Vec<Kind> = seen.iter().map(|&sid| kind(sid)).collect();
        let at_eoi = seen
            .iter()
            .map(|&sid| {
                let eoi = dfa.next_eoi_state(sid);
                dfa.is_match_state(eoi)
                    .then(|| dfa.match_pattern(eoi, 0).as_usize())
            })
            .collect();
        Some(Table {
            pairs: Box::new([0; PAIR_WORDS]),
            classes,
            trans,
            shift,
            start: index.get(&start)? * stride,
            special_end: kinds.iter().take_while(|&&k| k != Kind::Plain).count() * stride,
            kinds,
            at_eoi,
        })
    }

    /// Let the pair filter pass every place `lit` (lower case) could start.
    fn allow_start(&mut self, lit: &[u8]) {
        let cases = |b: u8| vec![b.to_ascii_lowercase(), b.to_ascii_uppercase()];
        let (firsts, seconds) = match *lit {
            [] => return,
            [only] => (cases(only), (0..=255).collect()),
            [first, second, ..] => (cases(first), cases(second)),
        };
        for &a in &firsts {
            for &b in &seconds {
                let key = pair(a, b);
                if let Some(word) = self.pairs.get_mut(key / 64) {
                    *word |= 1 << (key % 64);
                }
            }
        }
    }

    /// The leftmost-first match at or after `at`, when one starts before `limit`: pattern and
    /// end. (One starting at or after `limit` may be returned too.)
    fn find(&self, bytes: &[u8], mut at: usize, limit: usize) -> Option<(usize, usize)> {
        loop {
            at = self.candidate(bytes, at, limit)?;
            match self.walk(bytes, at) {
                Walk::Hit(p, end) => return Some((p, end)),
                Walk::End => return None,
                Walk::Idle(next) => at = next,
            }
        }
    }

    /// The first place in `at..limit` where a literal could start: its first two bytes pass
    /// the filter, or it is the last byte (let the automaton decide).
    fn candidate(&self, bytes: &[u8], at: usize, limit: usize) -> Option<usize> {
        let end = limit.min(bytes.len());
        let passes = |key: usize| {
            self.pairs
                .get(key / 64)
                .is_some_and(|w| w >> (key % 64) & 1 != 0)
        };
        let mut at = at;
        // One eight-byte load gives the pairs of seven places.
        while at + 7 <= end {
            let Some(chunk) = bytes
                .get(at..at + 8)
                .and_then(|c| <[u8; 8]>::try_from(c).ok())
            else {
                break;
            };
            let x = u64::from_le_bytes(chunk);
            for k in 0..7 {
                if passes((x >> (8 * k)) as usize & 0xffff) {
                    return Some(at + k);
                }
            }
            at += 7;
        }
        let (&first, rest) = bytes.get(at..(end + 1).min(bytes.len()))?.split_first()?;
        let mut prev = first;
        for (i, &b) in rest.iter().enumerate() {
            if passes(pair(prev, b)) {
                return Some(at + i);
            }
            prev = b;
        }
        (end == bytes.len()).then(|| bytes.len() - 1)
    }

    /// Walk the automaton from its start state at `at`.
    fn walk(&self, bytes: &[u8], at: usize) -> Walk {
        let Some(rest) = bytes.get(at..) else {
            return Walk::End;
        };
        let mut state = self.start;
        let mut found = None;
        for (i, &b) in rest.iter().enumerate() {
            let class = usize::from(self.classes.get(usize::from(b)).copied().unwrap_or(0));
            state = self.trans.get(state + class).map_or(0, |&s| s as usize);
            if state < self.special_end {
                match (self.kinds.get(state >> self.shift), found) {
                    (Some(Kind::Match(p)), _) => found = Some((*p, at + i)),
                    (_, Some((p, end))) => return Walk::Hit(p, end),
                    (_, None) => return Walk::End,
                }
            } else if state == self.start && found.is_none() {
                return Walk::Idle(at + i + 1);
            }
        }
        match (self.at_eoi.get(state >> self.shift), found) {
            (Some(&Some(p)), _) => Walk::Hit(p, bytes.len()),
            (_, Some((p, end))) => Walk::Hit(p, end),
            _ => Walk::End,
        }
    }
}

/// How a walk of the automaton ended.
enum Walk {
    /// The leftmost-longest hit: pattern and end.
    Hit(usize, usize),
    /// Back in the start state with nothing pending before this place.
    Idle(usize),
    /// No hit before the end of the text.
    End,
}

const PAIR_WORDS: usize = (1 << 16) / 64;

fn pair(first: u8, second: u8) -> usize {
    usize::from(u16::from_le_bytes([first, second]))
}

/// Every anchor literal (ASCII-lower-cased) and what to do where it matches.
fn literals(custom_keywords: &[Vec<String>]) -> BTreeMap<Vec<u8>, Vec<Action>> {
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
    table
}

/// A regex matching exactly `lit`: ASCII letters in either case, every other byte as itself
/// (custom keywords may hold any UTF-8).
fn literal_regex(lit: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(lit.len() * 6);
    for &b in lit {
        if b.is_ascii_alphabetic() {
            let (lower, upper) = (b.to_ascii_lowercase(), b.to_ascii_uppercase());
            let _ = write!(out, "[{}{}]", lower as char, upper as char);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use std::sync::OnceLock;

    use super::*;

    /// Leftmost-longest by definition: the first place any literal starts, the longest there.
    fn reference(lits: &[Vec<u8>], text: &[u8], at: usize) -> Option<(usize, usize)> {
        (at..text.len()).find_map(|start| {
            lits.iter()
                .filter(|l| {
                    text.get(start..start + l.len())
                        .is_some_and(|t| t.eq_ignore_ascii_case(l))
                })
                .map(|l| l.len())
                .max()
                .map(|len| (start, start + len))
        })
    }

    fn custom() -> Vec<Vec<String>> {
        vec![
            vec!["x".into(), "id7".into(), "émoji".into()],
            vec!["ab".into(), "birthplace".into()],
        ]
    }

    type Built = (Anchors, BTreeMap<Vec<u8>, Vec<Action>>);

    /// Anchors with and without custom keywords, built once: building is slow unoptimised.
    fn built(with_custom: bool) -> &'static Built {
        static PLAIN: OnceLock<Built> = OnceLock::new();
        static CUSTOM: OnceLock<Built> = OnceLock::new();
        let custom = if with_custom { custom() } else { vec![] };
        let build = || {
            let anchors = Anchors::build(&custom).expect("anchors build");
            (anchors, literals(&custom))
        };
        if with_custom {
            CUSTOM.get_or_init(build)
        } else {
            PLAIN.get_or_init(build)
        }
    }

    /// Hits are the definition's, and each says what its literal's actions are.
    fn check(with_custom: bool, text: &str) {
        let (anchors, table) = built(with_custom);
        let lits: Vec<Vec<u8>> = table.keys().cloned().collect();
        for at in 0..=text.len() {
            let hit = anchors.find(text, at);
            let span = hit.map(|h| (h.start, h.end));
            assert_eq!(
                span,
                reference(&lits, text.as_bytes(), at),
                "{text:?} at {at}"
            );
            if let Some(h) = hit {
                let lit = text.as_bytes()[h.start..h.end].to_ascii_lowercase();
                assert_eq!(
                    format!("{:?}", anchors.actions.get(h.id)),
                    format!("{:?}", table.get(&lit)),
                    "{text:?} at {at}"
                );
            }
        }
    }

    /// Text made of pieces of literals, their neighbours and filler, in random case.
    fn texty() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("ssn"),
            Just("social security"),
            Just("ss#"),
            Just("d.o.b"),
            Just("date of birth"),
            Just("birth date"),
            Just("birthday"),
            Just("born"),
            Just("token"),
            Just("api_key"),
            Just("api key"),
            Just("password"),
            Just("passwd"),
            Just("passphrase"),
            Just("AKIA"),
            Just("ghp_"),
            Just("github_pat_"),
            Just("sk-"),
            Just("sk_live_"),
            Just("eyJ"),
            Just("xoxb-"),
            Just("bearer"),
            Just("-----BEGIN"),
            Just("----"),
            Just("::"),
            Just(":"),
            Just("@"),
            Just("7"),
            Just("12"),
            Just("s"),
            Just("so"),
            Just("bir"),
            Just("pass"),
            Just("x"),
            Just("id"),
            Just("é"),
            Just("émo"),
            Just("ab"),
            Just(" "),
            Just("\n"),
            Just("the "),
            Just("_"),
            Just("-"),
            Just("."),
        ];
        prop::collection::vec((piece, any::<bool>()), 0..24).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(p, upper)| {
                    if upper {
                        p.to_ascii_uppercase()
                    } else {
                        p.to_owned()
                    }
                })
                .collect()
        })
    }

    #[test]
    fn hits_are_leftmost_longest() {
        check(
            false,
            "xssn 12 born-----BEGIN birth date of birth PASSWORD:: a@b é",
        );
        check(true, "xid7 émoji AB birthplace birth date x");
        check(false, "");
        check(false, "7");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn hits_match_the_definition(text in texty()) {
            check(false, &text);
            check(true, &text);
        }

        #[test]
        fn hits_match_the_definition_on_any_text(text in "\\PC{0,40}") {
            check(true, &text);
        }
    }
}
