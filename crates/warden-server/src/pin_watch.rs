//! Re-checking tool pins when an upstream comes back: a restarted upstream lists its tools
//! again, and a tool whose definition changed is withheld from then on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use warden_gateway::Gateway;
use warden_upstream::LinkState;

/// How often the upstreams' restart counters are looked at.
const POLL: Duration = Duration::from_millis(500);

/// How long one re-listing may wait for its upstream.
const RELIST_WAIT: Duration = Duration::from_secs(5);

/// Watch the gateway's upstreams until the gateway is dropped: after each reconnection, list
/// the upstream's tools and check them against their pins.
pub fn spawn(gateway: &Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(gateway);
    let mut seen: HashMap<String, u32> = gateway
        .shared()
        .upstreams
        .status()
        .into_iter()
        .map(|s| (s.name, s.restarts))
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
                if s.state != LinkState::Ready || seen.get(&s.name) == Some(&s.restarts) {
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
                        seen.insert(s.name.clone(), s.restarts);
                        if !report.changed.is_empty() {
                            tracing::warn!(upstream = %s.name, tools = ?report.changed, "tool definitions changed after a restart; withheld until approved");
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
