//! Windows of text a family should search, merged as they arrive.

use super::{ceil_char, floor_char};

/// Sorted, disjoint byte ranges on `char` boundaries. Anchors arrive in text order and every
/// family opens windows with a fixed reach, so a new window overlaps only the last one.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    ranges: Vec<(usize, usize)>,
}

impl Windows {
    /// Add `start..end` (clamped to the text, widened to `char` boundaries).
    pub(crate) fn push(&mut self, text: &str, start: usize, end: usize) {
        let start = floor_char(text, start.min(text.len()));
        let end = ceil_char(text, end.min(text.len()));
        if start >= end {
            return;
        }
        match self.ranges.last_mut() {
            Some(last) if start <= last.1 => {
                last.0 = last.0.min(start);
                last.1 = last.1.max(end);
            }
            _ => self.ranges.push((start, end)),
        }
    }

    pub(crate) fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_windows_merge() {
        let text = "x".repeat(100);
        let mut w = Windows::default();
        w.push(&text, 0, 10);
        w.push(&text, 5, 20);
        w.push(&text, 30, 200);
        assert_eq!(w.ranges(), &[(0, 20), (30, 100)]);
    }

    #[test]
    fn windows_snap_to_char_boundaries() {
        let text = "ééé";
        let mut w = Windows::default();
        w.push(text, 1, 3);
        assert_eq!(w.ranges(), &[(0, 4)]);
    }
}
