//! The persistence traits the gateway depends on; `warden-store` implements them.
//!
//! Secrets never cross this boundary in the clear: keys and tokens are stored as SHA-256 hashes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::AuditEvent;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the audit writer has stopped")]
    WriterStopped,
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
}

/// One agent API key, as stored (the key itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKey {
    /// A short public id, safe to print and log.
    pub key_id: String,
    pub agent: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Roles of human operators, who use the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorRole {
    Viewer,
    Auditor,
    Approver,
    Admin,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Auditor => "auditor",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }
}

impl std::str::FromStr for OperatorRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "auditor" => Ok(Self::Auditor),
            "approver" => Ok(Self::Approver),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown operator role `{other}` (admin, approver, auditor, viewer)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorToken {
    pub token_id: String,
    /// Who holds it (a person's name or e-mail).
    pub name: String,
    pub role: OperatorRole,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A short-lived narrowing of one agent's rights to one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskGrant {
    pub task_id: String,
    pub agent: String,
    /// SHA-256 of the task token, hex.
    pub hash: String,
    /// Canonical tool names the task may call.
    pub tools: Vec<String>,
    /// The most sensitive data class the task may see; `None` keeps the agent's clearance.
    pub max_class: Option<String>,
    pub purpose: Option<String>,
    pub user: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The append-only audit log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Append one event and return once it is durably committed, with its position in the log.
    async fn append(&self, event: &AuditEvent) -> Result<u64, StoreError>;
    /// The newest events, newest first.
    async fn recent(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
    async fn event(&self, id: &str) -> Result<Option<AuditEvent>, StoreError>;
}

/// Agent keys, operator tokens and task grants.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_agent_key(&self, key: &AgentKey) -> Result<(), StoreError>;
    async fn agent_key_by_hash(&self, hash: &str) -> Result<Option<AgentKey>, StoreError>;
    async fn agent_keys(&self) -> Result<Vec<AgentKey>, StoreError>;
    /// Revoke every live key of `agent` except `keep` (a key id); returns how many were revoked.
    async fn revoke_agent_keys(
        &self,
        agent: &str,
        keep: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    async fn insert_operator_token(&self, token: &OperatorToken) -> Result<(), StoreError>;
    async fn operator_token_by_hash(&self, hash: &str)
    -> Result<Option<OperatorToken>, StoreError>;
    async fn operator_tokens(&self) -> Result<Vec<OperatorToken>, StoreError>;

    async fn insert_task(&self, task: &TaskGrant) -> Result<(), StoreError>;
    async fn task_by_hash(&self, hash: &str) -> Result<Option<TaskGrant>, StoreError>;
}

/// Everything the gateway needs from persistence.
pub trait Store: EventLog + CredentialStore {}
impl<T: EventLog + CredentialStore> Store for T {}
