//! [`Scanner`]: every detector over a text in one pass.
//!
//! 1. **Anchors.** One Aho-Corasick pass ([`anchors`]) finds the places a detector could
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
//! Work is linear in the text: windows are bounded and merged, anchored searches start only
//! where the byte before cannot continue the same token (so they never rescan one token), and
//! PEM end markers are searched for once per text position.

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

/// How far around a digit run the numeric family looks (longest numeric shape, IPv6 with an
/// embedded IPv4, is 45 bytes).
const NUMERIC_REACH: usize = 48;
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
            with(groups::secret_near_keyword()?),
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

    #[doc(hidden)]
    pub fn anchor_only(&self, text: &str) -> usize {
        let mut n = 0;
        let mut at = 0;
        while at < text.len() {
            let Some(hit) = self
                .anchors
                .ac
                .find(aho_corasick::Input::new(text).span(at..text.len()))
            else {
                break;
            };
            n += 1;
            at = digit_run_end(text, hit.end());
        }
        n
    }

    #[doc(hidden)]
    pub fn anchor_pass_only(&self, text: &str) -> usize {
        let mut pass = Pass::new(self, text);
        pass.anchor_pass();
        pass.candidates.len() + pass.windows.iter().map(|w| w.ranges().len()).sum::<usize>()
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
            pem: pem::EndCache::default(),
        }
    }

    /// Step 1: the single Aho-Corasick pass.
    fn anchor_pass(&mut self) {
        let len = self.text.len();
        let mut at = 0;
        while at < len {
            let input = aho_corasick::Input::new(self.text).span(at..len);
            let Some(hit) = self.scanner.anchors.ac.find(input) else {
                break;
            };
            let resume = self.on_anchor(hit.pattern().as_usize(), hit.start(), hit.end());
            at = resume.max(hit.start() + 1);
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
                self.open(
                    W_NUMERIC,
                    start.saturating_sub(NUMERIC_REACH),
                    run + NUMERIC_REACH,
                );
                run
            }
            Action::At => {
                self.open(
                    W_EMAIL,
                    start.saturating_sub(EMAIL_BEFORE),
                    end + EMAIL_AFTER,
                );
                end
            }
            Action::DoubleColon => {
                self.open(
                    W_NUMERIC,
                    start.saturating_sub(NUMERIC_REACH),
                    end + NUMERIC_REACH,
                );
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
        for (group, ws) in scanner.windowed.iter().zip(&windows) {
            for &(start, end) in ws.ranges() {
                self.search_region(group, start, end);
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
    let mut out = Vec::with_capacity(candidates.len());
    let mut cluster: Vec<Span> = Vec::new();
    let mut cluster_end = 0;
    for span in candidates {
        if !cluster.is_empty() && span.start >= cluster_end {
            settle(&mut cluster, &mut out);
        }
        cluster_end = if cluster.is_empty() {
            span.end
        } else {
            cluster_end.max(span.end)
        };
        cluster.push(span);
    }
    settle(&mut cluster, &mut out);
    out
}

/// Resolve one cluster of overlapping candidates into `out`, in position order.
fn settle(cluster: &mut Vec<Span>, out: &mut Vec<Span>) {
    if cluster.len() <= 1 {
        out.append(cluster);
        return;
    }
    cluster.sort_by(|a, b| {
        b.class
            .cmp(&a.class)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut taken: BTreeMap<usize, Span> = BTreeMap::new();
    for span in cluster.drain(..) {
        let clash = taken
            .range(..span.end)
            .next_back()
            .is_some_and(|(_, t)| t.end > span.start);
        if !clash {
            taken.insert(span.start, span);
        }
    }
    out.extend(taken.into_values());
}

#[cfg(test)]
mod tests;
