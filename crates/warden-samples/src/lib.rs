//! Built-in sample MCP servers with seeded fake data.
//!
//! Warden fronts real MCP tool servers; this crate provides small stand-ins
//! for them so the demo, the integration tests and the benchmarks have
//! something realistic to govern without any external service:
//!
//! | kind       | tools                                               | for                                   |
//! |------------|-----------------------------------------------------|---------------------------------------|
//! | `crm`      | `search_customers`, `get_customer`, `update_customer` | PII / data-loss-prevention policies |
//! | `payments` | `refund`, `cancel_refund`, `list_refunds`           | approvals, compensation (sagas)       |
//! | `email`    | `send`, `read_inbox`, `list_outbox`                 | prompt injection, exfiltration        |
//! | `echo`     | `echo`                                              | measuring gateway overhead            |
//! | `faulty`   | `ok`, `crash`, `hang`, `garbage`                    | upstream failure handling             |
//!
//! Every tool declares an input schema and an `outputSchema`, carries honest
//! annotations (`readOnlyHint`, `destructiveHint`, `idempotentHint`), and
//! answers with both `structuredContent` and a text block holding the same
//! JSON (except `faulty.garbage`, whose whole point is not to). Failures the
//! caller should read, such as an unknown customer id, are tool results with
//! `isError: true`; malformed arguments are reported the same way, never by
//! panicking.
//!
//! State lives in memory, seeded deterministically: every fresh
//! [`handler`] starts with the same data, and mutations persist for as long as
//! that handler (and its clones) live.
//!
//! Ways to run a sample:
//! - [`serve_stdio`]: MCP over stdin/stdout, for a child process spawned by the
//!   gateway (`warden sample-upstream KIND`). Only MCP is written to stdout;
//!   logs go through `tracing`, which the binary must point at stderr.
//! - [`serve_http`]: MCP Streamable HTTP at `/mcp`, stateless, JSON responses.
//! - [`handler`]: the in-process [`rmcp::ServerHandler`], for tests.

mod common;
mod crm;
mod echo;
mod email;
mod faulty;
mod payments;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use std::{fmt, str::FromStr};

use axum::serve::ListenerExt;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, ListToolsResult, PaginatedRequestParams,
        ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

pub use faulty::CRASH_EXIT_CODE;

/// Path at which [`serve_http`] serves MCP.
pub const HTTP_PATH: &str = "/mcp";

/// Which sample server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleKind {
    Crm,
    Payments,
    Email,
    Echo,
    Faulty,
}

impl SampleKind {
    /// Every sample, in a stable order.
    pub const ALL: [SampleKind; 5] = [
        SampleKind::Crm,
        SampleKind::Payments,
        SampleKind::Email,
        SampleKind::Echo,
        SampleKind::Faulty,
    ];

    /// The lower-case name used on the command line and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SampleKind::Crm => "crm",
            SampleKind::Payments => "payments",
            SampleKind::Email => "email",
            SampleKind::Echo => "echo",
            SampleKind::Faulty => "faulty",
        }
    }
}

impl fmt::Display for SampleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing an unknown [`SampleKind`] name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSampleKind(pub String);

impl fmt::Display for UnknownSampleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown sample {:?}; expected one of crm, payments, email, echo, faulty",
            self.0
        )
    }
}

impl std::error::Error for UnknownSampleKind {}

impl FromStr for SampleKind {
    type Err = UnknownSampleKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SampleKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSampleKind(s.to_owned()))
    }
}

/// A sample MCP server. Cloning is cheap and clones share state.
#[derive(Clone)]
pub struct SampleServer(Sample, Arc<Described>);

/// The descriptions a server uses in place of the built-in ones, and whether it tells its
/// client when they change.
#[derive(Default)]
struct Described {
    texts: RwLock<Descriptions>,
    announces_changes: bool,
}

/// Tool descriptions that replace the built-in ones, by tool name (to play an upstream that
/// changes a tool's definition: a "rug pull").
pub type Descriptions = std::collections::BTreeMap<String, String>;

/// One `TOOL=TEXT` replacement, as given to `--describe` or on a line of a descriptions file.
pub fn parse_description(item: &str) -> anyhow::Result<(String, String)> {
    match item.split_once('=') {
        Some((tool, text)) if !tool.trim().is_empty() => {
            Ok((tool.trim().to_owned(), text.to_owned()))
        }
        _ => anyhow::bail!("a description is TOOL=TEXT, got `{item}`"),
    }
}

/// The descriptions in `file`: one `TOOL=TEXT` per line, blank lines ignored. A missing file
/// replaces nothing.
pub fn read_descriptions(file: &Path) -> anyhow::Result<Descriptions> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Descriptions::new()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            parse_description(line)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), i + 1))
        })
        .collect()
}

#[derive(Clone)]
enum Sample {
    Crm(crm::Crm),
    Payments(payments::Payments),
    Email(email::Email),
    Echo(echo::Echo),
    Faulty(faulty::Faulty),
}

impl fmt::Debug for SampleServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SampleServer").field(&self.kind()).finish()
    }
}

impl SampleServer {
    /// Which sample this is.
    pub fn kind(&self) -> SampleKind {
        match self.0 {
            Sample::Crm(_) => SampleKind::Crm,
            Sample::Payments(_) => SampleKind::Payments,
            Sample::Email(_) => SampleKind::Email,
            Sample::Echo(_) => SampleKind::Echo,
            Sample::Faulty(_) => SampleKind::Faulty,
        }
    }

    /// This server with some tools' descriptions replaced.
    pub fn with_descriptions(self, descriptions: Descriptions) -> Self {
        Self(
            self.0,
            Arc::new(Described {
                texts: RwLock::new(descriptions),
                announces_changes: false,
            }),
        )
    }

    /// This server with some tools' descriptions replaced, and `tools.listChanged` announced:
    /// [`Self::replace_descriptions`] may change them while it runs.
    fn with_changing_descriptions(self, descriptions: Descriptions) -> Self {
        Self(
            self.0,
            Arc::new(Described {
                texts: RwLock::new(descriptions),
                announces_changes: true,
            }),
        )
    }

    /// Replace the descriptions; says whether they changed.
    fn replace_descriptions(&self, descriptions: Descriptions) -> bool {
        let mut texts = self.1.texts.write().unwrap_or_else(PoisonError::into_inner);
        let changed = *texts != descriptions;
        *texts = descriptions;
        changed
    }

    fn describe(&self, tool: &mut Tool) {
        let texts = self.1.texts.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = texts.get(tool.name.as_ref()) {
            tool.description = Some(d.clone().into());
        }
    }
}

/// A fresh, freshly seeded server handler for `kind`, for serving in-process
/// (e.g. `handler(kind).serve(transport)` with [`rmcp::ServiceExt`]).
pub fn handler(kind: SampleKind) -> SampleServer {
    SampleServer(
        match kind {
            SampleKind::Crm => Sample::Crm(crm::Crm::default()),
            SampleKind::Payments => Sample::Payments(payments::Payments::default()),
            SampleKind::Email => Sample::Email(email::Email::default()),
            SampleKind::Echo => Sample::Echo(echo::Echo),
            SampleKind::Faulty => Sample::Faulty(faulty::Faulty),
        },
        Arc::default(),
    )
}

/// Run `$body` with `$s` bound to whichever sample `$server` holds.
macro_rules! dispatch {
    ($server:expr, $s:ident => $body:expr) => {
        match &$server.0 {
            Sample::Crm($s) => $body,
            Sample::Payments($s) => $body,
            Sample::Email($s) => $body,
            Sample::Echo($s) => $body,
            Sample::Faulty($s) => $body,
        }
    };
}

impl ServerHandler for SampleServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = dispatch!(self, s => s.get_info());
        if self.1.announces_changes {
            let mut tools = info.capabilities.tools.take().unwrap_or_default();
            tools.list_changed = Some(true);
            info.capabilities.tools = Some(tools);
        }
        info
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut result = dispatch!(self, s => s.list_tools(request, context).await)?;
        for tool in &mut result.tools {
            self.describe(tool);
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        dispatch!(self, s => s.call_tool(request, context).await)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let mut tool = dispatch!(self, s => s.get_tool(name))?;
        self.describe(&mut tool);
        Some(tool)
    }
}

/// Serve the `kind` sample over stdin/stdout until the peer closes stdin.
///
/// Nothing but MCP messages is written to stdout.
pub async fn serve_stdio(kind: SampleKind) -> anyhow::Result<()> {
    serve_stdio_with(kind, Descriptions::new()).await
}

/// [`serve_stdio`], with some tools' descriptions replaced.
pub async fn serve_stdio_with(kind: SampleKind, descriptions: Descriptions) -> anyhow::Result<()> {
    tracing::info!(sample = %kind, "serving sample over stdio");
    let running = handler(kind)
        .with_descriptions(descriptions)
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| anyhow::anyhow!("sample {kind}: MCP start-up over stdio failed: {e}"))?;
    let reason = running.waiting().await?;
    tracing::info!(sample = %kind, ?reason, "stdio session ended");
    Ok(())
}

/// How often [`serve_stdio_from_file`] looks at its descriptions file.
const DESCRIPTIONS_POLL: Duration = Duration::from_millis(100);

/// [`serve_stdio`], with tool descriptions read from `file` at start (see
/// [`read_descriptions`]). With `announce`, the file is watched while the server runs: when its
/// descriptions change, the server uses the new ones and sends its client
/// `notifications/tools/list_changed`.
pub async fn serve_stdio_from_file(
    kind: SampleKind,
    file: PathBuf,
    announce: bool,
) -> anyhow::Result<()> {
    let descriptions = read_descriptions(&file)?;
    let server = if announce {
        handler(kind).with_changing_descriptions(descriptions)
    } else {
        handler(kind).with_descriptions(descriptions)
    };
    let running = server
        .clone()
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| anyhow::anyhow!("sample {kind}: MCP start-up over stdio failed: {e}"))?;
    if announce {
        let peer = running.peer().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(DESCRIPTIONS_POLL);
            loop {
                tick.tick().await;
                let descriptions = match read_descriptions(&file) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "descriptions file unreadable; keeping the old ones");
                        continue;
                    }
                };
                if server.replace_descriptions(descriptions)
                    && let Err(e) = peer.notify_tool_list_changed().await
                {
                    tracing::warn!(error = %e, "could not announce the changed tool list");
                    break;
                }
            }
        });
    }
    let reason = running.waiting().await?;
    tracing::info!(sample = %kind, ?reason, "stdio session ended");
    Ok(())
}

/// Serve the `kind` sample over MCP Streamable HTTP at [`HTTP_PATH`] on
/// `listener` until `shutdown` is cancelled.
///
/// The server is stateless (no `Mcp-Session-Id`) and answers with
/// `application/json` bodies, which serves both the `2025-11-25`
/// `initialize` handshake and the sessionless `2026-07-28` protocol. All
/// requests share one seeded state. Accepted sockets get `TCP_NODELAY`. When
/// bound to a loopback address only loopback `Host` headers are accepted
/// (DNS-rebinding protection); on any other address every host is accepted.
///
/// `faulty.crash` exits the whole process, so serve the `faulty` sample in a
/// process of its own, not inside the gateway.
pub async fn serve_http(
    kind: SampleKind,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local_addr = listener.local_addr()?;
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_cancellation_token(shutdown.child_token());
    if !local_addr.ip().is_loopback() {
        config = config.disable_allowed_hosts();
    }
    let server = handler(kind);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let app = axum::Router::new().route_service(HTTP_PATH, service);
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    tracing::info!(sample = %kind, %local_addr, "serving sample over streamable HTTP");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
