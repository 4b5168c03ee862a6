//! The background task that keeps one upstream connected: connect, publish the session, notice
//! when it ends, back off, reconnect.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, HEALTHY_AFTER};
use crate::http::HttpConnector;
use crate::session::{ConnectFailure, Lifecycle, Live};
use crate::slot::{Link, Slot};
use crate::stdio::{self, StdioConnector};

/// Longest a connection attempt (spawn or TCP connect, plus the MCP handshake) may take.
/// Covers rmcp's 10 s wait for a `server/discover` answer before it falls back to `initialize`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long closing an MCP session may take before Warden moves on.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// How to connect to one upstream.
pub(crate) enum Connector {
    Stdio(StdioConnector),
    Http(HttpConnector),
}

impl Connector {
    /// One connection attempt: the version-probing handshake, then, if the upstream answered
    /// `server/discover` without a version Warden speaks, the `initialize` handshake.
    async fn connect(&self, slot: &Slot) -> Result<Live, ConnectFailure> {
        match self.connect_with(slot, Lifecycle::Auto).await {
            Err(failure) if failure.retry_with_initialize => {
                self.connect_with(slot, Lifecycle::Initialize).await
            }
            other => other,
        }
    }

    async fn connect_with(
        &self,
        slot: &Slot,
        lifecycle: Lifecycle,
    ) -> Result<Live, ConnectFailure> {
        let (redactor, notices) = (&slot.redactor, &slot.notices);
        match self {
            Self::Stdio(c) => c.connect(redactor, notices, lifecycle).await,
            Self::Http(c) => c.connect(redactor, notices, lifecycle).await,
        }
    }
}

/// Keep `slot` connected until `shutdown` is cancelled.
///
/// Failed attempts and ended sessions are followed by an exponential back-off (100 ms doubling
/// to 30 s); a session that stayed up for a minute resets it.
pub(crate) async fn supervise(slot: Arc<Slot>, connector: Connector, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    let mut first_attempt = true;
    while !shutdown.is_cancelled() {
        if !first_attempt {
            slot.count_restart();
        }
        first_attempt = false;
        slot.set_link(Link::Connecting);
        let attempt = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            attempt = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(&slot)) => attempt,
        };
        let failure = match attempt {
            Ok(Ok(live)) => {
                let up_since = Instant::now();
                let Some(reason) = run_session(&slot, live, &shutdown).await else {
                    break;
                };
                if up_since.elapsed() >= HEALTHY_AFTER {
                    backoff.reset();
                }
                ConnectFailure::transient(reason)
            }
            Ok(Err(failure)) => failure,
            Err(_elapsed) => ConnectFailure::transient(format!(
                "no MCP handshake within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
        };
        let delay = backoff.next_delay();
        mark_down(&slot, &failure, delay);
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    slot.set_link(Link::Stopped);
}

/// Publish that the upstream is down, and why.
fn mark_down(slot: &Slot, failure: &ConnectFailure, retry_in: Duration) {
    let reason = slot.clean(failure.reason.clone());
    tracing::warn!(
        upstream = %slot.name,
        %reason,
        retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
        "upstream down"
    );
    slot.note_error(&reason);
    slot.set_link(Link::Down {
        reason: reason.into(),
        permanent: failure.permanent,
    });
}

/// Serve calls over `live` until it ends (returning why) or Warden shuts down (returning
/// `None`). Either way the session is closed and the child stopped before returning.
async fn run_session(slot: &Slot, live: Live, shutdown: &CancellationToken) -> Option<String> {
    let Live {
        client,
        mut child,
        session,
    } = live;
    tracing::info!(
        upstream = %slot.name,
        protocol_version = session.protocol_version.as_deref().unwrap_or("unknown"),
        "upstream connected"
    );
    slot.set_link(Link::Ready(session.clone()));
    let stop = client.cancellation_token();
    let mut service = pin!(client.waiting());
    let (reason, service_done) = tokio::select! {
        biased;
        () = shutdown.cancelled() => (None, false),
        status = stdio::wait_child(&mut child) => (Some(stdio::exited(status)), false),
        _quit = &mut service => (Some(closed_reason(&mut child).await), true),
        reason = session.broken() => (Some(reason), false),
    };
    if let Some(reason) = &reason {
        // New calls fail fast from here on, then calls in flight learn why their connection
        // closed: in this order, a caller that retries at once is told its retry was not sent.
        let reason = slot.clean(reason.clone());
        slot.set_link(Link::Down {
            reason: reason.as_str().into(),
            permanent: false,
        });
        session.end(&reason);
    } else {
        session.end("Warden is shutting down its upstream connections");
    }
    stop.cancel();
    if !service_done
        && tokio::time::timeout(CLOSE_GRACE, &mut service)
            .await
            .is_err()
    {
        tracing::warn!(upstream = %slot.name, "the MCP session did not close in time");
    }
    if let Some(child) = child {
        stdio::stop_child(child).await;
    }
    reason
}

/// Why a session whose transport closed is over: for a process, how it exited.
async fn closed_reason(child: &mut Option<tokio::process::Child>) -> String {
    let Some(child) = child else {
        return "the connection closed".to_owned();
    };
    match stdio::exit_status(child, Duration::from_millis(500)).await {
        Some(status) => stdio::exited(Ok(status)),
        None => "the process closed its stdout".to_owned(),
    }
}
