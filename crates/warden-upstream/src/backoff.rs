//! Exponential back-off between connection attempts.

use std::time::Duration;

/// The first delay after a failure.
pub(crate) const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(30);
/// A connection that stayed up this long was healthy: the next failure starts over at
/// [`INITIAL_DELAY`].
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Delays that double from [`INITIAL_DELAY`] up to [`MAX_DELAY`].
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: INITIAL_DELAY,
        }
    }
}

impl Backoff {
    /// The delay before the next attempt; each call doubles the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }

    /// Start over at [`INITIAL_DELAY`] (after a healthy connection).
    pub(crate) fn reset(&mut self) {
        self.next = INITIAL_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..12).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        b.reset();
        assert_eq!(b.next_delay(), INITIAL_DELAY);
    }
}
