//! Helpers shared by every sample server.
//!
//! Tools are declared with rmcp's `#[tool]` macro, which builds each tool's
//! input schema from its `Parameters<T>` type (doc comments become property
//! descriptions; non-`Option` fields without a serde default become
//! `required`) and its `outputSchema` from the `Json<T>` return type.
//! Returning `Json<T>` yields a result carrying both `structuredContent` and a
//! text block holding the same JSON; returning `Err(String)` yields a tool
//! error (`isError: true`) whose text is the message.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A failure the caller should read: reported as a tool result with
/// `isError: true` and the message as its text content.
pub(crate) type ToolError = String;

/// In-memory state shared by every clone of a sample server, so that
/// mutations persist for the life of the process (the HTTP transport builds a
/// fresh handler clone per request).
pub(crate) struct Shared<T>(Arc<Mutex<T>>);

impl<T> Shared<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Arc::new(Mutex::new(value)))
    }

    /// Lock the state. A panic while holding the lock cannot leave the plain
    /// data in these samples half-updated in a harmful way, so a poisoned lock
    /// is recovered rather than propagated.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

/// Normalise a caller-supplied identifier such as `" c001 "` to `"C001"`.
pub(crate) fn normalize_id(id: &str) -> String {
    id.trim().to_ascii_uppercase()
}

/// A loose plausibility check for an email address: one `@` with text on
/// both sides and no whitespace.
pub(crate) fn looks_like_email(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !address.chars().any(char::is_whitespace)
        }
        None => false,
    }
}
