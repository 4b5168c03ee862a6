//! Text redaction and the tally of what was done (kinds and counts, never values).

use std::collections::BTreeMap;

use warden_core::{ClassLevel, DataClasses, Finding};

use crate::project::FieldAction;
use crate::scanner::{Span, ceil_char, floor_char};

/// What happened to a detected value or a classified field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Seen and let through (at or below the clearance), or an injection indicator.
    Flagged,
    /// Replaced by `[REDACTED:<class>]`.
    Redacted,
    /// Replaced by a keyed pseudonym.
    Pseudonymized,
    /// Removed.
    Dropped,
}

impl Action {
    /// The word used in audit findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Flagged => "flagged",
            Action::Redacted => "redacted",
            Action::Pseudonymized => "pseudonymized",
            Action::Dropped => "dropped",
        }
    }
}

/// Counts by finding kind (`dlp.ssn`, `field.regulated`, `injection.zero_width`) and action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: BTreeMap<(String, Action), u32>,
}

impl Tally {
    pub fn add(&mut self, kind: &str, action: Action) {
        let n = self.counts.entry((kind.to_owned(), action)).or_default();
        *n = n.saturating_add(1);
    }

    pub fn merge(&mut self, other: Tally) {
        for ((kind, action), n) in other.counts {
            let c = self.counts.entry((kind, action)).or_default();
            *c = c.saturating_add(n);
        }
    }

    /// How many of `kind` got `action`.
    pub fn count(&self, kind: &str, action: Action) -> u32 {
        self.counts
            .get(&(kind.to_owned(), action))
            .copied()
            .unwrap_or(0)
    }

    /// Total count of everything that was not only flagged (something changed).
    pub fn changed(&self) -> u32 {
        self.counts
            .iter()
            .filter(|((_, a), _)| *a != Action::Flagged)
            .fold(0u32, |n, (_, c)| n.saturating_add(*c))
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Action, u32)> {
        self.counts.iter().map(|((k, a), n)| (k.as_str(), *a, *n))
    }

    /// As audit findings at `location` (`input` or `result`).
    pub fn findings(&self, location: &str) -> Vec<Finding> {
        self.iter()
            .map(|(kind, action, count)| Finding {
                kind: kind.to_owned(),
                location: location.to_owned(),
                count,
                action: action.as_str().to_owned(),
            })
            .collect()
    }
}

/// Rewrite the spans whose class is above `clearance`: masked as `[REDACTED:<class>]`,
/// replaced by a pseudonym, or removed (`Drop`). Spans at or below the clearance are kept and
/// counted as flagged. Spans may come in any order and may overlap (the union is rewritten);
/// a span off a `char` boundary is widened to one; spans past the end are clipped.
pub fn redact_text(
    text: &str,
    spans: &[Span],
    clearance: ClassLevel,
    action: &FieldAction,
    classes: &DataClasses,
) -> (String, Tally) {
    let mut tally = Tally::default();
    let mut sorted: Vec<&Span> = spans.iter().collect();
    sorted.sort_by_key(|s| (s.start, s.end));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for span in sorted {
        let kind = span.kind.finding_kind();
        if span.class <= clearance {
            tally.add(&kind, Action::Flagged);
            continue;
        }
        let start = floor_char(text, span.start.max(cursor).min(text.len()));
        let end = ceil_char(text, span.end.min(text.len()));
        if end <= cursor || start >= end {
            tally.add(&kind, action.tally_action());
            continue;
        }
        let start = start.max(cursor);
        out.push_str(text.get(cursor..start).unwrap_or_default());
        if let Some(value) = text.get(start..end) {
            out.push_str(&action.replacement(classes.name(span.class), value));
        }
        tally.add(&kind, action.tally_action());
        cursor = end;
    }
    out.push_str(text.get(cursor..).unwrap_or_default());
    (out, tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::DetectorKind;

    fn span(start: usize, end: usize, class: u8) -> Span {
        Span {
            start,
            end,
            kind: DetectorKind::Ssn,
            class: ClassLevel(class),
        }
    }

    #[test]
    fn only_spans_above_clearance_change() {
        let classes = DataClasses::default();
        let text = "a 123-45-6789 b 10.0.0.1";
        let spans = [span(2, 13, 3), span(16, 24, 1)];
        let (out, tally) = redact_text(text, &spans, ClassLevel(1), &FieldAction::Mask, &classes);
        assert_eq!(out, "a [REDACTED:regulated] b 10.0.0.1");
        assert_eq!(tally.count("dlp.ssn", Action::Redacted), 1);
        assert_eq!(tally.count("dlp.ssn", Action::Flagged), 1);
    }

    #[test]
    fn overlapping_and_out_of_range_spans_do_not_panic() {
        let classes = DataClasses::default();
        let text = "héllo wörld";
        let spans = [span(0, 3, 4), span(2, 8, 4), span(7, 999, 4)];
        let (out, _) = redact_text(text, &spans, ClassLevel(0), &FieldAction::Drop, &classes);
        assert_eq!(out, "");
    }
}
