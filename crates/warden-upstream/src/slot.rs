//! The shared state of one upstream: its current connection, as the supervisor publishes it and
//! calls read it.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::ServiceError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::UpstreamError;
use crate::redact::Redactor;
use crate::session::{Notices, Session, is_connect_error, transport_error, truncate};
use crate::status::{LinkState, TransportKind, UpstreamStatus};

/// How long a call whose connection closed waits to learn why (e.g. the exit status).
const END_REASON_GRACE: Duration = Duration::from_millis(500);

/// `tools` before the first discovery.
const TOOLS_UNKNOWN: usize = usize::MAX;

/// Where the connection stands, as published by the supervisor.
#[derive(Clone)]
pub(crate) enum Link {
    Connecting,
    Ready(Arc<Session>),
    Down { reason: Arc<str>, permanent: bool },
    Stopped,
}

/// One upstream's state, shared by its supervisor and the pool's callers.
pub(crate) struct Slot {
    pub(crate) name: Arc<str>,
    pub(crate) kind: TransportKind,
    /// The upstream's own call timeout from the config.
    pub(crate) timeout: Option<Duration>,
    link: watch::Sender<Link>,
    restarts: AtomicU32,
    tools: AtomicUsize,
    last_error: Mutex<Option<String>>,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) notices: Arc<Notices>,
}

impl Slot {
    pub(crate) fn new(name: &str, kind: TransportKind, timeout: Option<Duration>) -> Self {
        Self {
            name: name.into(),
            kind,
            timeout,
            link: watch::Sender::new(Link::Connecting),
            restarts: AtomicU32::new(0),
            tools: AtomicUsize::new(TOOLS_UNKNOWN),
            last_error: Mutex::new(None),
            redactor: Arc::default(),
            notices: Arc::default(),
        }
    }

    pub(crate) fn set_link(&self, link: Link) {
        self.link.send_replace(link);
    }

    pub(crate) fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_tool_count(&self, n: usize) {
        self.tools.store(n, Ordering::Relaxed);
    }

    /// Remember a failure for [`Slot::status`]; `reason` must already be redacted.
    pub(crate) fn note_error(&self, reason: &str) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason.to_owned());
    }

    /// The live session, without waiting: the per-call fast path.
    pub(crate) fn ready_session(&self) -> Option<Arc<Session>> {
        match &*self.link.borrow() {
            Link::Ready(session) => Some(session.clone()),
            _ => None,
        }
    }

    /// The live session for a call due by `deadline`. A connection in progress is waited for
    /// until the deadline; an upstream that is down fails fast.
    pub(crate) async fn session_for_call(
        &self,
        deadline: Instant,
    ) -> Result<Arc<Session>, UpstreamError> {
        if let Some(session) = self.ready_session() {
            return Ok(session);
        }
        let link = self
            .wait_for(deadline, |link| !matches!(link, Link::Connecting))
            .await;
        self.usable(link)
    }

    /// The live session for discovery: waits through connection attempts and retries until
    /// `deadline`, giving up early only on a configuration problem.
    pub(crate) async fn session_for_discovery(
        &self,
        deadline: Instant,
    ) -> Result<Arc<Session>, UpstreamError> {
        let link = self
            .wait_for(deadline, |link| {
                matches!(
                    link,
                    Link::Ready(_)
                        | Link::Stopped
                        | Link::Down {
                            permanent: true,
                            ..
                        }
                )
            })
            .await;
        self.usable(link)
    }

    /// The link once `done` holds, or as it is at `deadline`.
    async fn wait_for(&self, deadline: Instant, done: impl FnMut(&Link) -> bool) -> Link {
        let mut rx = self.link.subscribe();
        let outcome = match tokio::time::timeout_at(deadline, rx.wait_for(done)).await {
            Ok(Ok(link)) => Some(link.clone()),
            Ok(Err(_closed)) => Some(Link::Stopped),
            Err(_elapsed) => None,
        };
        outcome.unwrap_or_else(|| self.link.borrow().clone())
    }

    fn usable(&self, link: Link) -> Result<Arc<Session>, UpstreamError> {
        let reason = match link {
            Link::Ready(session) => return Ok(session),
            Link::Connecting => match self.last_error() {
                Some(last) => format!("still connecting (last failure: {last})"),
                None => "still connecting".to_owned(),
            },
            Link::Down { reason, .. } => reason.to_string(),
            Link::Stopped => "Warden is shutting down its upstream connections".to_owned(),
        };
        Err(UpstreamError::Unavailable {
            name: self.name.to_string(),
            reason,
        })
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An rmcp error on a call made over `session`, in Warden's terms.
    pub(crate) async fn call_error(&self, error: ServiceError, session: &Session) -> UpstreamError {
        let name = self.name.to_string();
        match error {
            ServiceError::McpError(data) => UpstreamError::Rejected {
                name,
                code: data.code.0,
                message: self.clean(data.message.to_string()),
            },
            ServiceError::TransportClosed => {
                let reason = session.end_reason(END_REASON_GRACE).await;
                let reason = reason.unwrap_or_else(|| "the connection closed".to_owned());
                UpstreamError::Disconnected { name, reason }
            }
            ServiceError::TransportSend(e) => {
                let reason = self.clean(transport_error(&e));
                self.note_error(&reason);
                if is_connect_error(&e) {
                    session.report_broken(&reason);
                    return UpstreamError::Unavailable { name, reason };
                }
                UpstreamError::Disconnected { name, reason }
            }
            ServiceError::Cancelled { reason } => UpstreamError::Disconnected {
                name,
                reason: self.clean(format!(
                    "the call was cancelled ({})",
                    reason.as_deref().unwrap_or("no reason given")
                )),
            },
            ServiceError::UnexpectedResponse => UpstreamError::Protocol {
                name,
                detail: "it answered tools/call with something other than a tool result".to_owned(),
            },
            other => UpstreamError::Protocol {
                name,
                detail: self.clean(other.to_string()),
            },
        }
    }

    /// Text from an upstream, safe to hand on: secrets redacted, length bounded.
    pub(crate) fn clean(&self, text: String) -> String {
        truncate(self.redactor.apply(&text))
    }

    pub(crate) fn status(&self) -> UpstreamStatus {
        let link = self.link.borrow().clone();
        let (state, protocol_version) = match &link {
            Link::Connecting => (LinkState::Connecting, None),
            Link::Ready(session) => (LinkState::Ready, session.protocol_version.clone()),
            Link::Down { .. } => (LinkState::Down, None),
            Link::Stopped => (LinkState::Stopped, None),
        };
        let tools = self.tools.load(Ordering::Relaxed);
        UpstreamStatus {
            name: self.name.to_string(),
            transport: self.kind,
            state,
            last_error: self.last_error(),
            restarts: self.restarts.load(Ordering::Relaxed),
            tool_list_changes: self.notices.tool_list_changes(),
            tools: (tools != TOOLS_UNKNOWN).then_some(tools),
            protocol_version,
        }
    }
}
