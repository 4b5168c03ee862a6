//! One MCP session with an upstream: the handshake both transports share, and what a live
//! connection holds.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rmcp::ClientHandler;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::{ClientInitializeError, NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpError;
use rmcp::transport::{DynamicTransportError, IntoTransport};
use rmcp::{ClientLifecycleMode, ClientServiceExt, Peer, RoleClient};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

/// The rmcp client Warden runs against each upstream.
pub(crate) type Client = RunningService<RoleClient, UpstreamClient>;

/// What an upstream announced without being asked, counted over all its connections.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    tool_list_changes: AtomicU32,
}

impl Notices {
    /// How many `notifications/tools/list_changed` the upstream has sent.
    pub(crate) fn tool_list_changes(&self) -> u32 {
        self.tool_list_changes.load(Ordering::Relaxed)
    }
}

/// Warden's side of an upstream session: it offers no client capabilities (no sampling, roots
/// or elicitation), so server-to-client requests are refused; it counts the upstream's
/// tool-list changes, so the tools are listed again and checked against their pins.
pub(crate) struct UpstreamClient {
    config: ClientConfig,
    notices: Arc<Notices>,
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.notices
            .tool_list_changes
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Longest reason text kept from an upstream (its error messages can be arbitrarily long).
const MAX_REASON_LEN: usize = 500;

/// The handle calls use: a cheap, shareable reference to one live MCP session.
pub(crate) struct Session {
    pub(crate) peer: Peer<RoleClient>,
    /// The negotiated MCP version, e.g. `2025-11-25` or `2026-07-28`.
    pub(crate) protocol_version: Option<String>,
    ended: CancellationToken,
    end_reason: OnceLock<String>,
    broken: CancellationToken,
    broken_reason: OnceLock<String>,
}

impl Session {
    fn new(peer: Peer<RoleClient>) -> Self {
        let protocol_version = peer
            .peer_info()
            .map(|info| info.protocol_version.to_string());
        Self {
            peer,
            protocol_version,
            ended: CancellationToken::new(),
            end_reason: OnceLock::new(),
            broken: CancellationToken::new(),
            broken_reason: OnceLock::new(),
        }
    }

    /// Record why the session ended (the first reason wins) and wake calls waiting for it.
    pub(crate) fn end(&self, reason: &str) {
        let _ = self.end_reason.set(reason.to_owned());
        self.ended.cancel();
    }

    /// Why the session ended, waiting up to `grace` for the supervisor to find out (a call can
    /// see its connection close a moment before the process's exit is reaped).
    pub(crate) async fn end_reason(&self, grace: Duration) -> Option<String> {
        tokio::time::timeout(grace, self.ended.cancelled())
            .await
            .ok()?;
        self.end_reason.get().cloned()
    }

    /// Tell the supervisor that requests over this session fail in a way only a new connection
    /// can fix (an HTTP server that refuses connections), so it should reconnect.
    pub(crate) fn report_broken(&self, reason: &str) {
        let _ = self.broken_reason.set(reason.to_owned());
        self.broken.cancel();
    }

    /// Resolves, with the reason, once a call has reported the session broken.
    pub(crate) async fn broken(&self) -> String {
        self.broken.cancelled().await;
        self.broken_reason.get().cloned().unwrap_or_default()
    }
}

/// A connection that completed its MCP handshake.
pub(crate) struct Live {
    pub(crate) client: Client,
    /// The process behind a stdio upstream.
    pub(crate) child: Option<Child>,
    pub(crate) session: Arc<Session>,
}

impl Live {
    pub(crate) fn new(client: Client, child: Option<Child>) -> Self {
        let session = Arc::new(Session::new(client.peer().clone()));
        Self {
            client,
            child,
            session,
        }
    }
}

/// Why a connection attempt failed.
#[derive(Debug, Clone)]
pub(crate) struct ConnectFailure {
    pub(crate) reason: String,
    /// A configuration problem that retrying alone will not fix (missing command, unresolvable
    /// secret, invalid header). Warden still retries, but discovery does not wait for it.
    pub(crate) permanent: bool,
    /// The upstream answered `server/discover` without a version Warden speaks: try the
    /// `initialize` handshake instead.
    pub(crate) retry_with_initialize: bool,
}

impl ConnectFailure {
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
            retry_with_initialize: false,
        }
    }

    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
            retry_with_initialize: false,
        }
    }

    /// A failed handshake; `context` says what was being attempted.
    pub(crate) fn handshake(context: &str, error: &ClientInitializeError) -> Self {
        Self {
            reason: truncate(format!("{context}: {}", describe_init_error(error))),
            permanent: false,
            retry_with_initialize: matches!(
                error,
                ClientInitializeError::NoCompatibleProtocolVersion { .. }
            ),
        }
    }
}

/// How a connection starts its MCP lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Probe with `server/discover` (2026-07-28 and later); fall back to `initialize` for servers
    /// that reject it, or do not answer within 10 s.
    Auto,
    /// Only the `initialize` handshake (2025-11-25 and earlier).
    Initialize,
}

/// Run the MCP handshake over `transport`.
pub(crate) async fn handshake<T, E, A>(
    transport: T,
    lifecycle: Lifecycle,
    notices: &Arc<Notices>,
) -> Result<Client, ClientInitializeError>
where
    T: IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mode = match lifecycle {
        Lifecycle::Auto => ClientLifecycleMode::Auto {
            preferred_versions: stateless_versions(),
            legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
        },
        Lifecycle::Initialize => ClientLifecycleMode::Initialize,
    };
    let client = UpstreamClient {
        config: client_config(),
        notices: notices.clone(),
    };
    client.serve_with_lifecycle(transport, mode).await
}

/// Who Warden says it is; the protocol version is the newest one with an `initialize` handshake,
/// used only when the upstream needs that handshake.
fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("warden", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

/// Every version rmcp knows that has no `initialize` handshake, newest first. Nothing is pinned:
/// when rmcp learns a newer revision, Warden prefers it and still accepts the older ones.
fn stateless_versions() -> Vec<ProtocolVersion> {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .rev()
        .filter(|v| !v.has_initialize())
        .cloned()
        .collect()
}

/// A handshake error in one line, with the detail rmcp nests inside it.
fn describe_init_error(error: &ClientInitializeError) -> String {
    match error {
        ClientInitializeError::LegacyFallbackFailed { discover, fallback } => format!(
            "{} (after `server/discover` failed: {})",
            describe_init_error(fallback),
            describe_init_error(discover)
        ),
        ClientInitializeError::ConnectionClosed(during) => {
            format!("the connection closed while waiting for the {during}")
        }
        ClientInitializeError::TransportError { error, context } => {
            format!("{context}: {}", transport_error(error))
        }
        other => other.to_string(),
    }
}

/// A transport error in one line, down to its root cause. rmcp does not expose the HTTP
/// client's error as a source, so it is unwrapped here.
pub(crate) fn transport_error(error: &DynamicTransportError) -> String {
    type HttpError = StreamableHttpError<reqwest::Error>;
    match error.error.downcast_ref::<HttpError>() {
        Some(StreamableHttpError::Client(client)) => error_chain(client),
        _ => error_chain(error.error.as_ref()),
    }
}

/// Whether `error` is a failure to open a connection, so the request was certainly not sent.
pub(crate) fn is_connect_error(error: &DynamicTransportError) -> bool {
    matches!(
        error.error.downcast_ref::<StreamableHttpError<reqwest::Error>>(),
        Some(StreamableHttpError::Client(client)) if client.is_connect()
    )
}

/// `error` and its sources in one line, skipping a source its parent already quotes. The root
/// cause ("Connection refused") is usually the part worth reading.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// `text` cut to [`MAX_REASON_LEN`] bytes at a character boundary.
pub(crate) fn truncate(mut text: String) -> String {
    if text.len() > MAX_REASON_LEN {
        let mut end = MAX_REASON_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warden_prefers_the_newest_stateless_version_and_pins_nothing() {
        let versions = stateless_versions();
        assert_eq!(versions.first(), Some(&ProtocolVersion::LATEST));
        assert!(versions.contains(&ProtocolVersion::V_2026_07_28));
        assert!(versions.iter().all(|v| !v.has_initialize()));
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let cut = truncate("é".repeat(400));
        assert!(cut.len() <= MAX_REASON_LEN + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short".into()), "short");
    }
}
