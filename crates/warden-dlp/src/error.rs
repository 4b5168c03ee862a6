//! The one error type of this crate. Every error is about configuration or the shape of a
//! value handed in; scanning text itself cannot fail.

/// Why a scanner, a rule set or an inspection could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum DlpError {
    /// A class name that is not in the configured [`warden_core::DataClasses`].
    #[error("unknown data class `{class}` (for {context})")]
    UnknownClass { class: String, context: String },
    /// A detector name that is neither built in nor a custom detector.
    #[error("unknown detector `{0}`")]
    UnknownDetector(String),
    /// A custom detector that cannot be used as written.
    #[error("custom detector `{name}`: {reason}")]
    BadCustomDetector { name: String, reason: String },
    /// A classify path or projection pointer that cannot be parsed.
    #[error("path `{path}`: {reason}")]
    BadPath { path: String, reason: &'static str },
    /// A numeric setting out of its range.
    #[error("setting `{name}`: {reason}")]
    BadSetting { name: &'static str, reason: String },
    /// One of the built-in automata failed to build (a bug, reported rather than panicking).
    #[error("building the {what} automaton: {reason}")]
    Build { what: &'static str, reason: String },
    /// A pseudonym key must not be empty.
    #[error("the pseudonym key is empty")]
    EmptyKey,
    /// The value handed to [`crate::inspect_call_tool_result`] is not a `CallToolResult`.
    #[error("not a CallToolResult: {0}")]
    MalformedResult(&'static str),
}
