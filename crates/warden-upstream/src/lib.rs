//! Warden's connectors to the real MCP tool servers it fronts ("upstreams").
//!
//! The gateway's `execute` stage and the startup discovery talk to upstreams only through an
//! [`UpstreamPool`], built from the config's `[[upstreams]]`:
//!
//! - **stdio** upstreams are child processes speaking MCP over stdin/stdout. Warden spawns them
//!   with a clean environment plus the configured `env` (secrets resolved at spawn time, never
//!   logged), forwards their stderr to `tracing` at debug level, and restarts them when they
//!   exit.
//! - **Streamable HTTP** upstreams are reached with rmcp's reqwest-based client, with the
//!   configured headers (e.g. `Authorization`) injected by Warden.
//!
//! Both speak MCP `2026-07-28` (stateless, `server/discover`) and fall back to the `initialize`
//! handshake of `2025-11-25` and earlier; rmcp negotiates, nothing pins a version.
//!
//! Each upstream has a supervisor task that connects in the background, publishes the live
//! session, notices when it ends (crash, exit, fatal transport error) and reconnects with an
//! exponential back-off (100 ms doubling to 30 s, reset after a healthy minute). Calls never wait
//! for a back-off: while an upstream is down they fail at once with
//! [`UpstreamError::Unavailable`]; while a connection attempt is in progress they wait for it,
//! within their timeout.
//!
//! Calls are concurrent: rmcp multiplexes them over one session by JSON-RPC id, so a hung call
//! holds up nothing else. A call that times out, or whose future is dropped, is cancelled at the
//! upstream (`notifications/cancelled`) and forgotten locally. The per-call path takes one
//! uncontended read lock to clone the session handle (an `Arc`) and allocates nothing but the
//! request itself.
//!
//! ```no_run
//! # async fn demo(config: warden_core::Config) -> Result<(), warden_upstream::UpstreamError> {
//! use std::time::Duration;
//! use warden_upstream::UpstreamPool;
//!
//! let pool = UpstreamPool::start(&config.upstreams, &config.base_dir, config.server.call_timeout);
//! let tools = pool.discover("crm", Duration::from_secs(20)).await?;
//! let args = serde_json::json!({"customer_id": "c-1001"});
//! let serde_json::Value::Object(args) = args else { return Ok(()) };
//! let outcome = pool.call("crm", "get_customer", args, None).await?;
//! println!("{} tools; answered in {:?}: {}", tools.len(), outcome.latency, outcome.result);
//! pool.shutdown().await;
//! # Ok(()) }
//! ```

mod backoff;
mod error;
mod http;
mod redact;
mod session;
mod slot;
mod status;
mod stdio;
mod supervisor;
mod tools;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResponse};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use warden_core::catalog::DiscoveredTool;
use warden_core::config::{Transport, Upstream};

pub use error::UpstreamError;
pub use status::{LinkState, TransportKind, UpstreamStatus};

use crate::slot::{Link, Slot};
use crate::supervisor::Connector;

/// What an upstream answered to a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// The upstream's MCP `CallToolResult`, as JSON: `content`, and when present
    /// `structuredContent`, `isError`, `_meta` and (from `2026-07-28` upstreams) `resultType`.
    /// A tool that reported failure (`isError: true`) is a normal outcome, not an error.
    pub result: Value,
    /// From sending the request to receiving the answer (not counting any wait for a
    /// connection).
    pub latency: Duration,
}

impl CallOutcome {
    /// Whether the tool reported failure (`isError: true`).
    pub fn is_error(&self) -> bool {
        self.result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Connections to every configured upstream, each kept alive by a background task.
///
/// Cheap to share by reference; all methods take `&self` except [`UpstreamPool::shutdown`].
/// Dropping the pool stops the supervisors too (children are then stopped in the background);
/// [`UpstreamPool::shutdown`] or [`UpstreamPool::close`] wait for that to finish.
pub struct UpstreamPool {
    slots: Vec<Arc<Slot>>,
    by_name: HashMap<String, Arc<Slot>>,
    default_timeout: Duration,
    shutdown: CancellationToken,
    supervisors: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("upstreams", &self.status())
            .field("default_timeout", &self.default_timeout)
            .finish()
    }
}

impl Drop for UpstreamPool {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl UpstreamPool {
    /// Start connecting to `upstreams` in the background and return at once.
    ///
    /// Relative paths (secret files, `cwd`) resolve against `base_dir`, the config's folder.
    /// `default_timeout` bounds calls to upstreams that set no `timeout` of their own. Must be
    /// called within a Tokio runtime; without one, every upstream is reported down.
    pub fn start(upstreams: &[Upstream], base_dir: &Path, default_timeout: Duration) -> Self {
        let shutdown = CancellationToken::new();
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut slots = Vec::with_capacity(upstreams.len());
        let mut by_name = HashMap::with_capacity(upstreams.len());
        let mut supervisors = Vec::with_capacity(upstreams.len());
        for upstream in upstreams {
            if by_name.contains_key(&upstream.name) {
                tracing::warn!(upstream = %upstream.name, "duplicate upstream name ignored");
                continue;
            }
            let (slot, connector) = prepare(upstream, base_dir);
            let slot = Arc::new(slot);
            match &runtime {
                Some(rt) => supervisors.push(rt.spawn(supervisor::supervise(
                    slot.clone(),
                    connector,
                    shutdown.child_token(),
                ))),
                None => {
                    let reason = "Warden's async runtime was not running when the pool started";
                    slot.note_error(reason);
                    slot.set_link(Link::Down {
                        reason: reason.into(),
                        permanent: true,
                    });
                }
            }
            by_name.insert(upstream.name.clone(), slot.clone());
            slots.push(slot);
        }
        Self {
            slots,
            by_name,
            default_timeout,
            shutdown,
            supervisors: Mutex::new(supervisors),
        }
    }

    /// The tools `name` offers (`tools/list`, every page), waiting up to `wait` for its
    /// connection. Gives up before `wait` only when the upstream is misconfigured (its command
    /// does not exist, a secret cannot be resolved...).
    pub async fn discover(
        &self,
        name: &str,
        wait: Duration,
    ) -> Result<Vec<DiscoveredTool>, UpstreamError> {
        let slot = self.slot(name)?;
        let session = slot.session_for_discovery(Instant::now() + wait).await?;
        let limit = slot.timeout.unwrap_or(self.default_timeout);
        let tools = match tokio::time::timeout(limit, session.peer.list_all_tools()).await {
            Err(_elapsed) => {
                return Err(UpstreamError::Timeout {
                    name: name.to_owned(),
                    timeout: limit,
                });
            }
            Ok(Err(e)) => return Err(slot.call_error(e, &session).await),
            Ok(Ok(tools)) => tools,
        };
        slot.set_tool_count(tools.len());
        Ok(tools.into_iter().map(tools::discovered).collect())
    }

    /// Call `tool` on upstream `name` with `arguments`.
    ///
    /// `timeout` (else the upstream's configured `timeout`, else the pool's default) bounds the
    /// whole call, including any wait for a connection attempt in progress. On timeout the call
    /// is cancelled at the upstream and [`UpstreamError::Timeout`] returned; dropping the future
    /// cancels it the same way.
    pub async fn call(
        &self,
        name: &str,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<CallOutcome, UpstreamError> {
        let slot = self.slot(name)?;
        let limit = timeout.or(slot.timeout).unwrap_or(self.default_timeout);
        let deadline = Instant::now() + limit;
        let session = slot.session_for_call(deadline).await?;
        let request = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let started = Instant::now();
        let reply = tokio::time::timeout_at(deadline, session.peer.call_tool_once(request)).await;
        let latency = started.elapsed();
        let response = match reply {
            Err(_elapsed) => {
                return Err(UpstreamError::Timeout {
                    name: name.to_owned(),
                    timeout: limit,
                });
            }
            Ok(Err(e)) => return Err(slot.call_error(e, &session).await),
            Ok(Ok(response)) => response,
        };
        let result = tool_result(slot, response)?;
        Ok(CallOutcome { result, latency })
    }

    /// A snapshot of every upstream, in config order.
    pub fn status(&self) -> Vec<UpstreamStatus> {
        self.slots.iter().map(|slot| slot.status()).collect()
    }

    /// Stop every upstream: close sessions, let children exit (killing those that do not within
    /// a few seconds), and wait for it all.
    pub async fn shutdown(self) {
        self.close().await;
    }

    /// [`UpstreamPool::shutdown`] for a pool that is shared; calls made afterwards fail with
    /// [`UpstreamError::Unavailable`].
    pub async fn close(&self) {
        self.shutdown.cancel();
        let supervisors = std::mem::take(
            &mut *self
                .supervisors
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for supervisor in supervisors {
            if let Err(e) = supervisor.await {
                tracing::warn!(error = %e, "an upstream supervisor ended abnormally");
            }
        }
    }

    fn slot(&self, name: &str) -> Result<&Arc<Slot>, UpstreamError> {
        self.by_name
            .get(name)
            .ok_or_else(|| UpstreamError::Unknown {
                name: name.to_owned(),
            })
    }
}

/// The slot and connector for one configured upstream.
fn prepare(upstream: &Upstream, base_dir: &Path) -> (Slot, Connector) {
    let name: Arc<str> = upstream.name.as_str().into();
    match &upstream.transport {
        Transport::Stdio { command, env, cwd } => (
            Slot::new(&name, TransportKind::Stdio, upstream.timeout),
            Connector::Stdio(stdio::StdioConnector::new(
                name.clone(),
                command.clone(),
                env.clone(),
                cwd.clone(),
                base_dir.to_path_buf(),
            )),
        ),
        Transport::Http { url, headers } => (
            Slot::new(&name, TransportKind::Http, upstream.timeout),
            Connector::Http(http::HttpConnector::new(
                url.clone(),
                headers.clone(),
                base_dir.to_path_buf(),
            )),
        ),
    }
}

/// The final tool result as JSON. Warden relays no client-side input (`input_required`) and
/// requested no tasks, so those replies are protocol errors.
fn tool_result(slot: &Slot, response: CallToolResponse) -> Result<Value, UpstreamError> {
    let detail = match response {
        CallToolResponse::Complete(result) => {
            return serde_json::to_value(result).map_err(|e| UpstreamError::Protocol {
                name: slot.name.to_string(),
                detail: format!("its tool result cannot be represented as JSON ({e})"),
            });
        }
        CallToolResponse::InputRequired(_) => {
            "it asked for client input (`input_required`), which Warden does not relay"
        }
        CallToolResponse::Task(_) => "it answered with a task, which Warden did not ask for",
        _ => "it answered tools/call with an unknown kind of result",
    };
    Err(UpstreamError::Protocol {
        name: slot.name.to_string(),
        detail: detail.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_pool_and_its_futures_can_be_shared_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<UpstreamPool>();
        let pool = UpstreamPool::start(&[], Path::new(""), Duration::from_secs(1));
        assert_send(&pool.call("crm", "get_customer", Map::new(), None));
        assert_send(&pool.discover("crm", Duration::from_secs(1)));
        assert_send(&pool.close());
    }

    #[tokio::test]
    async fn without_a_runtime_every_upstream_is_down() {
        let upstream = Upstream {
            name: "crm".into(),
            vendor: "internal".into(),
            transport: Transport::Http {
                url: "http://127.0.0.1:1/mcp".into(),
                headers: Default::default(),
            },
            sandbox: None,
            trusted: false,
            prefix: None,
            timeout: None,
            untrusted_output: false,
            pin: true,
        };
        let pool = std::thread::spawn(move || {
            UpstreamPool::start(&[upstream], Path::new(""), Duration::from_secs(1))
        })
        .join()
        .expect("start does not panic outside a runtime");
        let status = pool.status();
        assert_eq!(status[0].state, LinkState::Down);
        let call = pool.call("crm", "get_customer", Map::new(), None).await;
        assert!(
            matches!(call, Err(UpstreamError::Unavailable { .. })),
            "{call:?}"
        );
    }
}
