//! Re-checking tool pins when an upstream may have changed its tools: after it reconnected (a
//! restarted process can be a new version), and after it announced a change
//! (`notifications/tools/list_changed`). Its tools are listed again, and a tool whose
//! definition changed is withheld from then on.
//!
//! Both are noticed by polling the pool's counters every half second, so a changed tool stays
//! callable for up to that long (plus the re-listing) after the upstream changed it. A
//! 2026-07-28 upstream over HTTP sends list changes only on a listen stream, which Warden does
//! not open: such an upstream's changes are found when it reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use warden_gateway::Gateway;
use warden_upstream::{LinkState, UpstreamStatus};

/// How often the upstreams' restart counters are looked at.
const POLL: Duration = Duration::from_millis(500);

/// How long one re-listing may wait for its upstream.
const RELIST_WAIT: Duration = Duration::from_secs(5);

/// Watch the gateway's upstreams until the gateway is dropped: after each reconnection or
/// announced change, list the upstream's tools and check them against their pins.
pub fn spawn(gateway: &Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(gateway);
    let mut seen: HashMap<String, Generation> = gateway
        .shared()
        .upstreams
        .status()
        .into_iter()
        .map(|s| (s.name.clone(), Generation::of(&s)))
        .collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            let Some(gateway) = weak.upgrade() else {
                break;
            };
            let statuses = gateway.shared().upstreams.status();
            if statuses.iter().all(|s| s.state == LinkState::Stopped) && !statuses.is_empty() {
                break;
            }
            for s in statuses {
                let generation = Generation::of(&s);
                if s.state != LinkState::Ready || seen.get(&s.name) == Some(&generation) {
                    continue;
                }
                let tools = match gateway
                    .shared()
                    .upstreams
                    .discover(&s.name, RELIST_WAIT)
                    .await
                {
                    Ok(tools) => tools,
                    Err(e) => {
                        tracing::debug!(upstream = %s.name, error = %e, "re-listing tools failed; retrying");
                        continue;
                    }
                };
                match gateway.recheck_pins(&s.name, &tools).await {
                    Ok(report) => {
                        seen.insert(s.name.clone(), generation);
                        if !report.changed.is_empty() {
                            tracing::warn!(upstream = %s.name, tools = ?report.changed, "tool definitions changed; withheld until approved");
                        }
                    }
                    Err(e) => {
                        tracing::error!(upstream = %s.name, error = %e, "cannot check tool pins; retrying");
                    }
                }
            }
        }
    })
}

/// What changes when an upstream's tools may have: its reconnections and its announcements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generation {
    restarts: u32,
    tool_list_changes: u32,
}

impl Generation {
    fn of(status: &UpstreamStatus) -> Self {
        Self {
            restarts: status.restarts,
            tool_list_changes: status.tool_list_changes,
        }
    }
}
