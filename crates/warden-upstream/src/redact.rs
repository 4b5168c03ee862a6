//! Keeping resolved secrets out of errors and logs.
//!
//! The secrets Warden injects into an upstream (environment values, HTTP headers) are known only
//! after resolving them. An upstream may echo them back (an error message quoting the token, a
//! crash log printing its environment), so every text that leaves this crate from an upstream
//! passes through the upstream's [`Redactor`] first.

use std::fmt;
use std::sync::{PoisonError, RwLock};

/// What replaces a secret in a message.
pub(crate) const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are not redacted: replacing every `1` or `on` in a message would
/// destroy it without protecting anything worth guessing.
const MIN_SECRET_LEN: usize = 4;

/// Most distinct values remembered per upstream (a rotating file secret adds one per rotation).
const MAX_SECRETS: usize = 64;

/// The resolved secret values of one upstream. Its `Debug` shows only how many there are.
#[derive(Default)]
pub(crate) struct Redactor {
    secrets: RwLock<Vec<String>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .secrets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    /// Remember a resolved secret value so later messages have it removed.
    pub(crate) fn remember(&self, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        if secrets.iter().any(|s| s == value) {
            return;
        }
        if secrets.len() >= MAX_SECRETS {
            secrets.remove(0);
        }
        secrets.push(value.to_owned());
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every remembered secret replaced by [`REDACTED`].
    pub(crate) fn apply(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = text.to_owned();
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_secrets_are_replaced_everywhere() {
        let r = Redactor::default();
        r.remember("s3cr3t-token");
        r.remember("s3cr3t-token-extended");
        let text = "auth failed for s3cr3t-token-extended (was s3cr3t-token)";
        assert_eq!(r.apply(text), "auth failed for <redacted> (was <redacted>)");
    }

    #[test]
    fn short_values_are_not_treated_as_secrets() {
        let r = Redactor::default();
        r.remember("on");
        assert_eq!(r.apply("turned on"), "turned on");
    }

    #[test]
    fn debug_shows_no_value() {
        let r = Redactor::default();
        r.remember("hunter2-hunter2");
        assert_eq!(format!("{r:?}"), "Redactor(1 secrets)");
    }
}
