//! What the pool reports about each upstream, for health and readiness endpoints.

use serde::Serialize;

/// How Warden talks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// A child process speaking MCP over stdin/stdout.
    Stdio,
    /// MCP Streamable HTTP.
    Http,
}

/// Where an upstream's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// A connection attempt is in progress (first start or a restart).
    Connecting,
    /// Connected; calls are sent.
    Ready,
    /// The last attempt failed or the connection ended; Warden retries after a back-off. Calls
    /// fail fast with [`crate::UpstreamError::Unavailable`].
    Down,
    /// The pool was shut down.
    Stopped,
}

/// A snapshot of one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamStatus {
    pub name: String,
    pub transport: TransportKind,
    pub state: LinkState,
    /// Why the upstream last failed (connection attempt, crash, or a failed request), if it has.
    /// Secrets are redacted.
    pub last_error: Option<String>,
    /// How many times Warden started a new connection after the first attempt.
    pub restarts: u32,
    /// How many times the upstream announced that its tool list changed
    /// (`notifications/tools/list_changed`), over all its connections.
    pub tool_list_changes: u32,
    /// How many tools the upstream listed at the last discovery, if it has been asked.
    pub tools: Option<usize>,
    /// The MCP protocol version negotiated on the current connection, when ready.
    pub protocol_version: Option<String>,
}
