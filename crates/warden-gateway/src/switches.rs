//! The kill switch: a global freeze, and pauses per agent and per upstream.
//!
//! The switches live in the store, so they hold across restarts and replicas. Each gateway keeps
//! a copy; a change made through this gateway replaces it at once, and a change made elsewhere is
//! picked up within [`REFRESH`] (one cheap version query at most that often).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use warden_core::store::{ControlStore, StoreError, Switch};

pub const REFRESH: Duration = Duration::from_millis(500);

/// The id recorded when a kill switch, not a Cedar policy, refused a call.
pub const KILL_SWITCH_POLICY: &str = "warden:kill-switch";

struct Cache {
    version: i64,
    paused: HashMap<String, Switch>,
    checked: Instant,
}

pub struct Switches {
    store: Arc<dyn ControlStore>,
    cache: RwLock<Option<Arc<Cache>>>,
}

impl Switches {
    pub fn new(store: Arc<dyn ControlStore>) -> Self {
        Self {
            store,
            cache: RwLock::new(None),
        }
    }

    /// The switch that stops a call by `agent` to a tool of `upstream`, if any: the global freeze
    /// first, then the agent's pause, then the upstream's.
    pub async fn stopping(
        &self,
        agent: &str,
        upstream: &str,
    ) -> Result<Option<Switch>, StoreError> {
        let cache = self.current().await?;
        let scopes = [
            Switch::GLOBAL.to_owned(),
            Switch::agent_scope(agent),
            Switch::upstream_scope(upstream),
        ];
        Ok(scopes.iter().find_map(|s| cache.paused.get(s).cloned()))
    }

    /// Whether `agent` (any upstream) is stopped: for calls not tied to one tool.
    pub async fn agent_stopped(&self, agent: &str) -> Result<Option<Switch>, StoreError> {
        let cache = self.current().await?;
        Ok([Switch::GLOBAL.to_owned(), Switch::agent_scope(agent)]
            .iter()
            .find_map(|s| cache.paused.get(s).cloned()))
    }

    /// Every switch that is on.
    pub async fn paused(&self) -> Result<Vec<Switch>, StoreError> {
        let cache = self.current().await?;
        let mut all: Vec<Switch> = cache.paused.values().cloned().collect();
        all.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(all)
    }

    pub async fn set(&self, switch: &Switch) -> Result<(), StoreError> {
        self.store.set_switch(switch).await?;
        self.reload().await.map(|_| ())
    }

    async fn current(&self) -> Result<Arc<Cache>, StoreError> {
        let cached = self.cache.read().ok().and_then(|c| c.clone());
        match cached {
            Some(c) if c.checked.elapsed() < REFRESH => Ok(c),
            Some(c) => {
                let version = self.store.switch_version().await?;
                if version == c.version {
                    let fresh = Arc::new(Cache {
                        version,
                        paused: c.paused.clone(),
                        checked: Instant::now(),
                    });
                    self.install(fresh.clone());
                    Ok(fresh)
                } else {
                    self.reload().await
                }
            }
            None => self.reload().await,
        }
    }

    async fn reload(&self) -> Result<Arc<Cache>, StoreError> {
        // Read the version first: a change landing between the two reads is caught next time.
        let version = self.store.switch_version().await?;
        let paused = self
            .store
            .switches()
            .await?
            .into_iter()
            .filter(|s| s.paused)
            .map(|s| (s.scope.clone(), s))
            .collect();
        let fresh = Arc::new(Cache {
            version,
            paused,
            checked: Instant::now(),
        });
        self.install(fresh.clone());
        Ok(fresh)
    }

    fn install(&self, cache: Arc<Cache>) {
        if let Ok(mut slot) = self.cache.write() {
            *slot = Some(cache);
        }
    }
}

/// How a switch reads to an agent that it stopped.
pub fn describe(switch: &Switch) -> String {
    let what = if switch.scope == Switch::GLOBAL {
        "all calls are frozen".to_owned()
    } else if let Some(agent) = switch.scope.strip_prefix("agent:") {
        format!("agent `{agent}` is paused")
    } else if let Some(up) = switch.scope.strip_prefix("upstream:") {
        format!("upstream `{up}` is paused")
    } else {
        format!("`{}` is paused", switch.scope)
    };
    let why = switch
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!(
        "{what} (by {} at {}){why}",
        switch.by,
        switch.at.format("%Y-%m-%dT%H:%M:%SZ")
    )
}
