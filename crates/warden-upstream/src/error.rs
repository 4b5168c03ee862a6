//! Why a call to an upstream did not produce a tool result.

use std::time::Duration;

/// A failure to get a tool result from an upstream.
///
/// Every message names the upstream and says what went wrong in words an agent (or the operator
/// reading the audit log) can act on. Messages never carry resolved secrets: the values Warden
/// injects into a child's environment or an HTTP header are redacted from anything an upstream
/// echoes back.
///
/// A tool that ran and reported failure (`isError: true`) is *not* an `UpstreamError`: it is a
/// normal [`crate::CallOutcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No upstream of that name is configured.
    #[error("unknown upstream `{name}`")]
    Unknown { name: String },

    /// The upstream is not connected (it is down, still starting, or Warden is shutting down).
    /// The call was not sent.
    #[error("upstream `{name}` is unavailable: {reason}")]
    Unavailable { name: String, reason: String },

    /// The upstream did not answer in time. Warden sent it a cancellation for the call.
    #[error("upstream `{name}` did not answer within {} ms", timeout.as_millis())]
    Timeout { name: String, timeout: Duration },

    /// The connection ended while the call was in flight: the process crashed or exited, or the
    /// HTTP request failed. The call may or may not have taken effect.
    #[error("upstream `{name}` went away during the call: {reason}")]
    Disconnected { name: String, reason: String },

    /// The upstream refused the request with a JSON-RPC error (unknown tool, invalid params...).
    #[error("upstream `{name}` rejected the call (JSON-RPC error {code}): {message}")]
    Rejected {
        name: String,
        code: i32,
        message: String,
    },

    /// The upstream answered with something that is not a valid reply to the request.
    #[error("upstream `{name}` broke the MCP protocol: {detail}")]
    Protocol { name: String, detail: String },
}

impl UpstreamError {
    /// The upstream the error is about.
    pub fn upstream(&self) -> &str {
        match self {
            Self::Unknown { name }
            | Self::Unavailable { name, .. }
            | Self::Timeout { name, .. }
            | Self::Disconnected { name, .. }
            | Self::Rejected { name, .. }
            | Self::Protocol { name, .. } => name,
        }
    }

    /// Whether the request certainly never reached the upstream, so retrying cannot repeat a
    /// side effect.
    pub fn not_sent(&self) -> bool {
        matches!(self, Self::Unknown { .. } | Self::Unavailable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_upstream_and_the_reason() {
        let e = UpstreamError::Timeout {
            name: "crm".into(),
            timeout: Duration::from_millis(500),
        };
        assert_eq!(e.to_string(), "upstream `crm` did not answer within 500 ms");
        assert_eq!(e.upstream(), "crm");
        assert!(!e.not_sent());
        let e = UpstreamError::Unavailable {
            name: "crm".into(),
            reason: "it is down".into(),
        };
        assert!(e.not_sent());
    }
}
