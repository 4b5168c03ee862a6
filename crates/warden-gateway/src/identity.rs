//! Authentication of agents (keys, task tokens) and operators (tokens), with a short cache.
//!
//! Every call looks up its credential, so positive answers are cached briefly. A revocation made
//! through this gateway clears the cache at once; other replicas see it within [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use warden_core::store::{CredentialStore, OperatorToken, StoreError};

use crate::call::Principal;
use crate::secrets::{self, SecretKind};

pub const CACHE_TTL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("no credential: send `Authorization: Bearer <agent key or task token>`")]
    Missing,
    #[error("the credential is not a Warden key or token")]
    Malformed,
    #[error("unknown credential")]
    Unknown,
    #[error("the key {key_id} of agent {agent} was revoked")]
    Revoked { agent: String, key_id: String },
    #[error("the task token of task {task} expired at {at}")]
    Expired { task: String, at: String },
    #[error("agent `{0}` is not in the configuration")]
    UnknownAgent(String),
    #[error("an operator token is required here, not an agent credential")]
    NotOperator,
    #[error("an agent key or task token is required here, not an operator token")]
    NotAgent,
    #[error("the credential store failed: {0}")]
    Store(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

#[derive(Clone)]
struct Cached<T> {
    value: T,
    at: Instant,
}

/// Checks bearer secrets against the store.
pub struct Authenticator {
    store: Arc<dyn CredentialStore>,
    agents: RwLock<HashMap<String, Cached<Principal>>>,
    operators: RwLock<HashMap<String, Cached<OperatorToken>>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn CredentialStore>) -> Self {
        Self {
            store,
            agents: RwLock::default(),
            operators: RwLock::default(),
        }
    }

    /// The agent (and task) behind an agent key or task token.
    pub async fn agent(&self, bearer: Option<&str>) -> Result<Principal, AuthError> {
        let secret = bearer.ok_or(AuthError::Missing)?;
        let kind = SecretKind::of(secret).ok_or(AuthError::Malformed)?;
        let hash = secrets::hash(secret);
        if let Some(p) = self.cached_agent(&hash) {
            return check_task_expiry(p);
        }
        let principal = match kind {
            SecretKind::AgentKey => {
                let key = self
                    .store
                    .agent_key_by_hash(&hash)
                    .await?
                    .ok_or(AuthError::Unknown)?;
                if key.revoked_at.is_some() {
                    return Err(AuthError::Revoked {
                        agent: key.agent,
                        key_id: key.key_id,
                    });
                }
                Principal {
                    agent: key.agent,
                    key_id: Some(key.key_id),
                    task: None,
                }
            }
            SecretKind::TaskToken => {
                let task = self
                    .store
                    .task_by_hash(&hash)
                    .await?
                    .ok_or(AuthError::Unknown)?;
                Principal {
                    agent: task.agent.clone(),
                    key_id: None,
                    task: Some(Arc::new(task)),
                }
            }
            SecretKind::OperatorToken => return Err(AuthError::NotAgent),
        };
        let principal = check_task_expiry(principal)?;
        write_cache(&self.agents, hash, principal.clone());
        Ok(principal)
    }

    /// The operator behind an operator token.
    pub async fn operator(&self, bearer: Option<&str>) -> Result<OperatorToken, AuthError> {
        let secret = bearer.ok_or(AuthError::Missing)?;
        match SecretKind::of(secret) {
            Some(SecretKind::OperatorToken) => {}
            Some(_) => return Err(AuthError::NotOperator),
            None => return Err(AuthError::Malformed),
        }
        let hash = secrets::hash(secret);
        if let Some(t) = read_cache(&self.operators, &hash) {
            return Ok(t);
        }
        let token = self
            .store
            .operator_token_by_hash(&hash)
            .await?
            .ok_or(AuthError::Unknown)?;
        if token.revoked_at.is_some() {
            return Err(AuthError::Revoked {
                agent: token.name,
                key_id: token.token_id,
            });
        }
        write_cache(&self.operators, hash, token.clone());
        Ok(token)
    }

    /// Forget every cached credential of `agent` (after a revocation or rotation).
    pub fn forget_agent(&self, agent: &str) {
        if let Ok(mut cache) = self.agents.write() {
            cache.retain(|_, c| c.value.agent != agent);
        }
    }

    fn cached_agent(&self, hash: &str) -> Option<Principal> {
        read_cache(&self.agents, hash)
    }
}

fn check_task_expiry(p: Principal) -> Result<Principal, AuthError> {
    if let Some(task) = &p.task
        && task.expires_at <= Utc::now()
    {
        return Err(AuthError::Expired {
            task: task.task_id.clone(),
            at: task.expires_at.to_rfc3339(),
        });
    }
    Ok(p)
}

fn read_cache<T: Clone>(cache: &RwLock<HashMap<String, Cached<T>>>, key: &str) -> Option<T> {
    let guard = cache.read().ok()?;
    let hit = guard.get(key)?;
    (hit.at.elapsed() < CACHE_TTL).then(|| hit.value.clone())
}

fn write_cache<T>(cache: &RwLock<HashMap<String, Cached<T>>>, key: String, value: T) {
    if let Ok(mut guard) = cache.write() {
        // Bound the cache: stale entries go first; a full sweep is cheap at this size.
        if guard.len() > 10_000 {
            guard.retain(|_, c| c.at.elapsed() < CACHE_TTL);
        }
        guard.insert(
            key,
            Cached {
                value,
                at: Instant::now(),
            },
        );
    }
}
