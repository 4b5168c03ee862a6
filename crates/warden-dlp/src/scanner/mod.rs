//! [`Scanner`]: every detector over a text in one pass.
//!
//! 1. **Anchors.** One automaton pass ([`anchors`]) finds the places a detector could
//!    start. Each hit either opens a *window* for a family (digits, `@`, keywords: windows are
//!    merged as they arrive, in order) or runs a family *anchored at the hit* (provider
//!    prefixes, PEM headers) right away.
//! 2. **Automata.** Each family is one multi-pattern regex ([`groups`]); it runs over its
//!    merged windows only, never over the whole text (custom detectors without keywords are
//!    the exception: they have nothing to anchor on).
//! 3. **Validators.** Shape matches must pass their check (Luhn, mod-97, SSN ranges, JWT
//!    header, entropy, ...). When the preferred pattern's match fails, the family's other
//!    patterns are tried anchored at the same place before the search moves on.
//! 4. **Resolution.** Overlapping candidates are settled: most sensitive class first, then
//!    longest, then leftmost.
//!
//! Windows are tight: the number-like words around a digit run (a window with too few
//! digits, colons or dots for any numeric shape costs no regex search at all), the word around
//! an `@`, a fixed reach around a keyword. Work is linear in the text: windows are merged and
//! never rescanned, anchored searches start only where the byte before cannot continue the
//! same token (so they never rescan one token), and PEM end markers are searched for once per
//! text position.

mod anchors;
mod groups;
mod pem;
mod windows;

use std::collections::{BTreeMap, HashMap};

use regex_automata::{Anchored, Input, PatternID};
use warden_core::{ClassLevel, DataClasses};

use crate::config::DlpConfig;
use crate::error::DlpError;
use crate::kind::DetectorKind;
use anchors::{Action, Anchors, KW_DOB, KW_PASSWORD, KW_SECRET, KW_SSN};
use groups::{Group, Restart, Tuning, Verdict};
use windows::Windows;

/// A detected value: bytes `start..end` of the scanned text (always on `char` boundaries).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: DetectorKind,
    pub class: ClassLevel,
}

/// How far before and after `@` an address may reach (RFC 5321 limits).
const EMAIL_BEFORE: usize = 64;
const EMAIL_AFTER: usize = 256;

/// The windowed families, as indexes into a pass's windows; custom detectors follow.
const W_NUMERIC: usize = 0;
const W_EMAIL: usize = 1;
const W_SSN: usize = 2;
const W_DOB: usize = 3;
const W_SECRET: usize = 4;
const W_CUSTOM: usize = 5;

/// Every detector, compiled once from a [`DlpConfig`]; cheap to share between threads.
#[derive(Debug)]
pub struct Scanner {
    anchors: Anchors,
    /// Windowed families by `W_*` index (custom detectors with keywords from `W_CUSTOM`).
    windowed: Vec<Group>,
    prefixed: Group,
    password: Group,
    /// Custom detectors without keywords: run over the whole text.
    unanchored: Vec<Group>,
    classes: DataClasses,
    /// The class of each enabled kind; kinds not here are not reported.
    class_of: HashMap<DetectorKind, ClassLevel>,
    /// The class of PEM private keys (parsed by hand, not by a family).
    private_key: Option<ClassLevel>,
    tuning: Tuning,
    keyword_window: usize,
}

impl Scanner {
    /// Compile every detector. Fails on unknown class or detector names, bad custom patterns
    /// and settings out of range.
    pub fn new(config: &DlpConfig) -> Result<Scanner, DlpError> {
        check_settings(config)?;
        let class_of = class_table(config)?;
        let (keyworded, unkeyworded): (Vec<_>, Vec<_>) = config
            .custom
            .iter()
            .partition(|c| c.keywords.iter().any(|k| !k.is_empty()));
        let custom_keywords: Vec<Vec<String>> =
            keyworded.iter().map(|c| c.keywords.clone()).collect();
        let with = |g: Group| g.with_classes(&class_of);
        let mut windowed = vec![
            with(groups::numeric()?),
            with(groups::email()?),
            with(groups::ssn_near_keyword()?),
            with(groups::date_of_birth()?),
            with(groups::secret_near_keyword(config.min_secret_len)?),
        ];
        for c in &keyworded {
            windowed.push(with(Group::custom(&c.name, &c.pattern)?));
        }
        let unanchored = unkeyworded
            .iter()
            .map(|c| Group::custom(&c.name, &c.pattern).map(with))
            .collect::<Result<_, _>>()?;
        Ok(Scanner {
            anchors: Anchors::build(&custom_keywords)?,
            windowed,
            prefixed: with(groups::prefixed()?),
            password: with(groups::password()?),
            unanchored,
            classes: config.classes.clone(),
            private_key: class_of.get(&DetectorKind::PrivateKey).copied(),
            class_of,
            tuning: Tuning {
                min_secret_len: config.min_secret_len,
                entropy_threshold: config.entropy_threshold,
            },
            keyword_window: config.keyword_window,
        })
    }

    /// The class order detector classes refer to.
    pub fn classes(&self) -> &DataClasses {
        &self.classes
    }

    /// The class a kind reports, or `None` when it is disabled or unknown.
    pub fn class_of(&self, kind: &DetectorKind) -> Option<ClassLevel> {
        self.class_of.get(kind).copied()
    }

    /// Every detected value in `text`: sorted, non-overlapping (where candidates overlap the
    /// most sensitive class wins, then the longest).
    pub fn scan(&self, text: &str) -> Vec<Span> {
        let mut pass = Pass::new(self, text);
        pass.anchor_pass();
        pass.windowed_pass();
        for group in &self.unanchored {
            pass.search_region(group, 0, text.len());
        }
        resolve(pass.candidates)
    }

    /// Scan a JSON string value with its object key as context, so that keyword-gated
    /// detectors see `"password": "..."` or `"ssn": "123456789"`. Spans are into `value`.
    pub fn scan_field(&self, key: &str, value: &str) -> Vec<Span> {
        if key.is_empty() {
            return self.scan(value);
        }
        let prefix = key.len() + 2;
        let text = format!("{key}: {value}");
        self.scan(&text)
            .into_iter()
            .filter(|s| s.end > prefix)
            .map(|s| Span {
                start: s.start.saturating_sub(prefix),
                end: s.end - prefix,
                ..s
            })
            .collect()
    }
}

fn check_settings(config: &DlpConfig) -> Result<(), DlpError> {
    let t = config.entropy_threshold;
    if !(t.is_finite() && (0.0..=8.0).contains(&t)) {
        return Err(DlpError::BadSetting {
            name: "entropy_threshold",
            reason: format!("must be between 0 and 8 bits per byte, got {t}"),
        });
    }
    if !(1..=4096).contains(&config.keyword_window) {
        return Err(DlpError::BadSetting {
            name: "keyword_window",
            reason: format!("must be 1..=4096 bytes, got {}", config.keyword_window),
        });
    }
    if !(4..=1024).contains(&config.min_secret_len) {
        return Err(DlpError::BadSetting {
            name: "min_secret_len",
            reason: format!("must be 4..=1024 bytes, got {}", config.min_secret_len),
        });
    }
    Ok(())
}

/// Each enabled kind's class: the configured override, else the default (or the highest
/// class when a custom class order lacks the default's name: fail closed).
fn class_table(config: &DlpConfig) -> Result<HashMap<DetectorKind, ClassLevel>, DlpError> {
    let classes = &config.classes;
    let level = |class: &str, context: &str| {
        classes.level(class).ok_or_else(|| DlpError::UnknownClass {
            class: class.to_owned(),
            context: context.to_owned(),
        })
    };
    for name in config.detector_classes.keys().chain(&config.disabled) {
        if DetectorKind::builtin(name).is_none() && !config.custom.iter().any(|c| &c.name == name) {
            return Err(DlpError::UnknownDetector(name.clone()));
        }
    }
    let mut table = HashMap::new();
    for kind in DetectorKind::BUILTIN {
        if config.disabled.contains(kind.name()) {
            continue;
        }
        let class = match config.detector_classes.get(kind.name()) {
            Some(c) => level(c, &format!("detector {kind}"))?,
            None => classes
                .level(kind.default_class())
                .unwrap_or(classes.highest()),
        };
        table.insert(kind, class);
    }
    for c in &config.custom {
        check_custom_name(&c.name)?;
        let kind = DetectorKind::Custom(c.name.as_str().into());
        if table.contains_key(&kind) {
            return Err(DlpError::BadCustomDetector {
                name: c.name.clone(),
                reason: "defined twice".into(),
            });
        }
        let class = config.detector_classes.get(&c.name).unwrap_or(&c.class);
        if !config.disabled.contains(&c.name) {
            table.insert(kind, level(class, &format!("detector {}", c.name))?);
        }
    }
    Ok(table)
}

fn check_custom_name(name: &str) -> Result<(), DlpError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if DetectorKind::builtin(name).is_some() {
        "the name is a built-in detector's"
    } else {
        return Ok(());
    };
    Err(DlpError::BadCustomDetector {
        name: name.to_owned(),
        reason: reason.into(),
    })
}

/// One scan's state.
struct Pass<'s, 't> {
    scanner: &'s Scanner,
    text: &'t str,
    windows: Vec<Windows>,
    candidates: Vec<Span>,
    /// Password values already matched end here; keywords inside them are not rerun.
    password_until: usize,
    /// The numeric window reaches this far; digit runs before it are already covered.
    numeric_until: usize,
    /// The e-mail window reaches this far.
    email_until: usize,
    pem: pem::EndCache,
}

impl<'s, 't> Pass<'s, 't> {
    fn new(scanner: &'s Scanner, text: &'t str) -> Self {
        Self {
            scanner,
            text,
            windows: (0..scanner.windowed.len())
                .map(|_| Windows::default())
                .collect(),
            candidates: Vec::new(),
            password_until: 0,
            numeric_until: 0,
            email_until: 0,
            pem: pem::EndCache::default(),
        }
    }

    /// Step 1: the single anchor pass.
    ///
    /// Inside an open numeric window a digit does nothing but skip its run, and on dense text
    /// most anchors are such digits; there the pass looks for the other anchors only. That
    /// finds the same anchors: no other literal starts with a digit (else `skips_digits` is
    /// false), so a skipped run never hides one, and the window ends at white space, so no run
    /// reaches past it.
    fn anchor_pass(&mut self) {
        let len = self.text.len();
        let anchors = &self.scanner.anchors;
        let mut at = 0;
        while at < len {
            let found = if at < self.numeric_until && anchors.skips_digits() {
                anchors.find_digitless(self.text, at, self.numeric_until)
            } else {
                anchors.find(self.text, at)
            };
            let Some(hit) = found else {
                if at < self.numeric_until && anchors.skips_digits() {
                    at = self.numeric_until;
                    continue;
                }
                break;
            };
            let resume = self.on_anchor(hit.id, hit.start, hit.end);
            at = resume.max(hit.start + 1);
        }
    }

    /// Act on one anchor hit; returns where the anchor pass resumes.
    fn on_anchor(&mut self, id: usize, start: usize, end: usize) -> usize {
        let scanner = self.scanner;
        let Some(actions) = scanner.anchors.actions.get(id) else {
            return end;
        };
        let mut resume = end;
        for action in actions {
            resume = resume.max(self.act(action, start, end));
        }
        resume
    }

    fn act(&mut self, action: &Action, start: usize, end: usize) -> usize {
        let w = self.scanner.keyword_window;
        match action {
            Action::Digit => {
                let run = digit_run_end(self.text, end);
                self.numeric(start, run);
                run
            }
            Action::At => {
                self.email(start, end);
                end
            }
            Action::DoubleColon => {
                self.numeric(start, end);
                end
            }
            Action::Pem => self.pem_block(start, end),
            Action::Prefix {
                pattern,
                literal,
                before,
            } => self.prefixed(*pattern, *literal, *before, start, end),
            Action::Keyword(bits) => {
                if keyword_starts_word(self.text, start) {
                    self.keyword(*bits, start, end, w);
                }
                end
            }
            Action::Custom(i) => {
                self.open(W_CUSTOM + i, start.saturating_sub(w), end + w);
                end
            }
        }
    }

    /// Open a numeric window over the number-like words around `start..end` (once per
    /// stretch of text: later digit runs inside an open window add nothing).
    fn numeric(&mut self, start: usize, end: usize) {
        if start < self.numeric_until {
            return;
        }
        let (s, e) = numeric_words(self.text, start, end, self.numeric_until);
        self.numeric_until = e;
        self.open(W_NUMERIC, s, e);
    }

    /// Open an e-mail window over the word around an `@` (at most the longest local part
    /// before it and the longest domain after it), never looking at a byte twice.
    fn email(&mut self, start: usize, end: usize) {
        let bytes = self.text.as_bytes();
        let floor = start.saturating_sub(EMAIL_BEFORE).max(self.email_until);
        let s = word_start(bytes, start, floor.min(start));
        let limit = (end + EMAIL_AFTER).min(bytes.len());
        let mut e = end.max(self.email_until);
        while e < limit && bytes.get(e).is_some_and(|b| !b.is_ascii_whitespace()) {
            e += 1;
        }
        let e = e.max(end);
        self.email_until = self.email_until.max(e);
        self.open(W_EMAIL, s, e);
    }

    fn open(&mut self, window: usize, start: usize, end: usize) {
        let text = self.text;
        if let Some(ws) = self.windows.get_mut(window) {
            ws.push(text, start, end);
        }
    }

    fn keyword(&mut self, bits: u8, start: usize, end: usize, w: usize) {
        if bits & KW_SSN != 0 {
            self.open(W_SSN, start.saturating_sub(w), end + w);
        }
        if bits & KW_DOB != 0 {
            self.open(W_DOB, end, end + w);
        }
        if bits & KW_SECRET != 0 {
            self.open(W_SECRET, end, end + w);
        }
        if bits & KW_PASSWORD != 0 && start >= self.password_until {
            let scanner = self.scanner;
            if let Some(found) = self.anchored(&scanner.password, None, end) {
                self.password_until = found;
            }
        }
    }

    /// A provider prefix: run its pattern anchored here unless the hit continues a token.
    fn prefixed(
        &mut self,
        pattern: usize,
        literal: Option<&str>,
        before: fn(u8) -> bool,
        start: usize,
        end: usize,
    ) -> usize {
        let exact =
            literal.is_none_or(|l| self.text.as_bytes().get(start..end) == Some(l.as_bytes()));
        let glued = start
            .checked_sub(1)
            .and_then(|i| self.text.as_bytes().get(i))
            .is_some_and(|&b| b.is_ascii_alphanumeric() || before(b));
        if !exact || glued {
            return end;
        }
        let scanner = self.scanner;
        self.anchored(&scanner.prefixed, Some(pattern), start)
            .unwrap_or(end)
    }

    /// Run `group` (one pattern of it, or all) anchored at `at`; keep a validated match.
    /// Returns the end of the match when one counted.
    fn anchored(&mut self, group: &Group, pattern: Option<usize>, at: usize) -> Option<usize> {
        let anchored = match pattern {
            Some(p) => Anchored::Pattern(PatternID::new(p).ok()?),
            None => Anchored::Yes,
        };
        let input = Input::new(self.text)
            .span(at..self.text.len())
            .anchored(anchored);
        let m = group.re.search(&input)?;
        let spec = group.specs.get(m.pattern().as_usize())?;
        match spec
            .check
            .run(self.text, m.start(), m.end(), self.scanner.tuning)
        {
            Verdict::Value(start, end) => {
                self.push((start, end), &spec.kind, spec.class);
                Some(m.end())
            }
            Verdict::Consume(_) | Verdict::Reject => None,
        }
    }

    fn pem_block(&mut self, start: usize, end: usize) -> usize {
        match pem::block(self.text, start, &mut self.pem) {
            Some(block_end) => {
                let class = self.scanner.private_key;
                self.push((start, block_end), &DetectorKind::PrivateKey, class);
                block_end
            }
            None => end,
        }
    }

    /// Step 2: each windowed family over its merged windows.
    fn windowed_pass(&mut self) {
        let scanner = self.scanner;
        let windows = std::mem::take(&mut self.windows);
        for (i, (group, ws)) in scanner.windowed.iter().zip(&windows).enumerate() {
            for &(start, end) in ws.ranges() {
                let plausible = match i {
                    W_NUMERIC => numeric_plausible(self.text, start, end),
                    W_SECRET => has_digit(self.text, start, end),
                    _ => true,
                };
                if plausible {
                    self.search_region(group, start, end);
                }
            }
        }
    }

    /// Leftmost-first search of `group` over `start..end`, with validation and fallback to
    /// the family's other patterns at the same place.
    fn search_region(&mut self, group: &Group, start: usize, end: usize) {
        let mut at = start;
        while at < end {
            let input = Input::new(self.text).span(at..end);
            let Some(m) = group.re.search(&input) else {
                return;
            };
            at = match self.settle(group, m.start(), end, m.pattern().as_usize(), m.end()) {
                Some(next) => next.max(m.start() + 1),
                None if group.restart == Restart::MatchEnd => m.end().max(m.start() + 1),
                None => next_word(self.text, m.start()),
            };
            at = ceil_char(self.text, at);
        }
    }

    /// Validate the match of `first` at `start`; failing that, try the other patterns
    /// anchored there. Returns where to go on when something (a value or a sink) counted.
    fn settle(
        &mut self,
        group: &Group,
        start: usize,
        end: usize,
        first: usize,
        first_end: usize,
    ) -> Option<usize> {
        if let Some(next) = self.accept(group, first, start, first_end) {
            return Some(next);
        }
        for pid in (0..group.specs.len()).filter(|&p| p != first) {
            let Ok(id) = PatternID::new(pid) else {
                continue;
            };
            let input = Input::new(self.text)
                .span(start..end)
                .anchored(Anchored::Pattern(id));
            if let Some(m) = group.re.search(&input)
                && let Some(next) = self.accept(group, pid, m.start(), m.end())
            {
                return Some(next);
            }
        }
        None
    }

    fn accept(&mut self, group: &Group, pid: usize, start: usize, end: usize) -> Option<usize> {
        let spec = group.specs.get(pid)?;
        match spec.check.run(self.text, start, end, self.scanner.tuning) {
            Verdict::Value(s, e) => {
                self.push((s, e), &spec.kind, spec.class);
                Some(e)
            }
            Verdict::Consume(to) => Some(to),
            Verdict::Reject => None,
        }
    }

    fn push(
        &mut self,
        (start, end): (usize, usize),
        kind: &DetectorKind,
        class: Option<ClassLevel>,
    ) {
        let valid = start < end
            && end <= self.text.len()
            && self.text.is_char_boundary(start)
            && self.text.is_char_boundary(end);
        if let (true, Some(class)) = (valid, class) {
            self.candidates.push(Span {
                start,
                end,
                kind: kind.clone(),
                class,
            });
        }
    }
}

/// The stretch of number-like words around `start..end`: the word holding it, widened over
/// neighbouring words (one space apart) that hold a digit or are short upper-case groups
/// (`GB82 WEST 1234 ...`). Every numeric shape (cards, IBANs, phones, SSNs, addresses) is
/// made of such words, so a match touching `start..end` lies inside. Never looks back past
/// `floor` (already covered).
fn numeric_words(text: &str, start: usize, end: usize, floor: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut s = word_start(bytes, start, floor);
    while s >= floor + 2 && bytes.get(s - 1) == Some(&b' ') {
        let prev = word_start(bytes, s - 1, floor);
        if prev == s - 1 || !number_like(bytes.get(prev..s - 1).unwrap_or_default()) {
            break;
        }
        s = prev;
    }
    let mut e = word_end(bytes, end);
    while bytes.get(e) == Some(&b' ') {
        let next = word_end(bytes, e + 1);
        if next == e + 1 || !number_like(bytes.get(e + 1..next).unwrap_or_default()) {
            break;
        }
        e = next;
    }
    (s, e)
}

/// Whether a numeric window can hold any numeric shape at all: every one has at least seven
/// digits (phones, cards, SSNs, IBANs), or two colons (IPv6), or three dots (IPv4). Most
/// numbers in prose (`3`, `2024`, `12%`) fail this and cost no regex search.
fn numeric_plausible(text: &str, start: usize, end: usize) -> bool {
    let (mut digits, mut colons, mut dots) = (0, 0, 0);
    for &b in text.as_bytes().get(start..end).unwrap_or_default() {
        match b {
            b'0'..=b'9' => digits += 1,
            b':' => colons += 1,
            b'.' => dots += 1,
            _ => {}
        }
        if digits >= 7 || colons >= 2 || dots >= 3 {
            return true;
        }
    }
    false
}

/// Generic secrets must hold a digit (see `validate::high_entropy`).
fn has_digit(text: &str, start: usize, end: usize) -> bool {
    text.as_bytes()
        .get(start..end)
        .is_some_and(|b| b.iter().any(u8::is_ascii_digit))
}

// Words are found eight bytes at a time while no byte can be white space: numeric windows
// span whole words, and JSON and other dense text has long stretches without a space.

fn word_start(bytes: &[u8], mut at: usize, floor: usize) -> usize {
    while at >= floor + 8 && at.checked_sub(8).is_some_and(|s| no_space(bytes, s)) {
        at -= 8;
    }
    while at > floor && bytes.get(at - 1).is_some_and(|b| !b.is_ascii_whitespace()) {
        at -= 1;
    }
    at
}

fn word_end(bytes: &[u8], mut at: usize) -> usize {
    while no_space(bytes, at) {
        at += 8;
    }
    while bytes.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// Whether `bytes[at..at + 8]` exists and holds no byte below `!` (every ASCII white space
/// byte is one): a byte below `!` sets its high bit in `x - 0x21…` where it was clear in `x`.
fn no_space(bytes: &[u8], at: usize) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    let Some(chunk) = bytes
        .get(at..at + 8)
        .and_then(|c| <[u8; 8]>::try_from(c).ok())
    else {
        return false;
    };
    let x = u64::from_le_bytes(chunk);
    x.wrapping_sub(ONES * 0x21) & !x & (ONES * 0x80) == 0
}

fn number_like(word: &[u8]) -> bool {
    word.iter().any(u8::is_ascii_digit)
        || (word.len() <= 4
            && word
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
}

fn digit_run_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Keywords count at the start of a word (`born` in `stubborn` does not).
fn keyword_starts_word(text: &str, start: usize) -> bool {
    start == 0
        || !text
            .as_bytes()
            .get(start - 1)
            .is_some_and(u8::is_ascii_alphanumeric)
}

/// The start of the next word after the one at `at` (at least one character on).
fn next_word(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = at + 1;
    while i < bytes.len()
        && bytes.get(i - 1).is_some_and(u8::is_ascii_alphanumeric)
        && bytes.get(i).is_some_and(u8::is_ascii_alphanumeric)
    {
        i += 1;
    }
    i
}

/// The first `char` boundary at or after `at` (the text's length at most).
pub(crate) fn ceil_char(text: &str, mut at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The last `char` boundary at or before `at`.
pub(crate) fn floor_char(text: &str, mut at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Settle overlaps: most sensitive class, then longest, then leftmost wins. Candidates are
/// sorted by position and cut into clusters of mutually reachable overlaps; almost every
/// cluster is a single span.
fn resolve(mut candidates: Vec<Span>) -> Vec<Span> {
    candidates.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    // Compacted in place: survivors are written to the front, in position order.
    let mut kept = 0;
    let mut i = 0;
    while i < candidates.len() {
        let mut j = i + 1;
        let mut cluster_end = candidates.get(i).map_or(0, |s| s.end);
        while let Some(next) = candidates.get(j).filter(|s| s.start < cluster_end) {
            cluster_end = cluster_end.max(next.end);
            j += 1;
        }
        if j == i + 1 {
            candidates.swap(kept, i);
            kept += 1;
        } else {
            for span in settle(candidates.get(i..j).unwrap_or_default()) {
                if let Some(slot) = candidates.get_mut(kept) {
                    *slot = span;
                    kept += 1;
                }
            }
        }
        i = j;
    }
    candidates.truncate(kept);
    candidates
}

/// The survivors of one cluster of overlapping candidates, in position order.
fn settle(cluster: &[Span]) -> Vec<Span> {
    let mut by_priority: Vec<&Span> = cluster.iter().collect();
    by_priority.sort_by(|a, b| {
        b.class
            .cmp(&a.class)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut taken: BTreeMap<usize, &Span> = BTreeMap::new();
    for span in by_priority {
        let clash = taken
            .range(..span.end)
            .next_back()
            .is_some_and(|(_, t)| t.end > span.start);
        if !clash {
            taken.insert(span.start, span);
        }
    }
    taken.into_values().cloned().collect()
}

#[cfg(test)]
mod tests;
