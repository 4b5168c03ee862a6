//! Tool pinning: the definition of every tool as Warden first saw it (or as an operator last
//! approved it), and the changes an upstream made since, waiting for an operator.
//!
//! A "rug pull" is an upstream changing a tool's description or schemas after it was reviewed;
//! the gateway hides a changed tool and denies calls to it until its new definition is approved.
//! The hash is computed by the gateway (`warden-gateway`'s `pinning`); the store only keeps it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// The definition of one tool that Warden accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolPin {
    pub upstream: String,
    /// The tool's name at its upstream (without the upstream prefix).
    pub tool: String,
    /// SHA-256 (hex) of the definition's canonical encoding.
    pub hash: String,
    /// The definition: `{name, description, inputSchema, outputSchema, annotations}`.
    pub definition: serde_json::Value,
    pub pinned_at: DateTime<Utc>,
    /// The operator who approved this definition; `None` when it was pinned on first sight.
    pub approved_by: Option<String>,
}

/// A definition an upstream offers that differs from the pin, until an operator approves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinChange {
    pub upstream: String,
    pub tool: String,
    /// The pin's hash when the change was seen.
    pub old_hash: String,
    pub new_hash: String,
    pub new_definition: serde_json::Value,
    pub detected_at: DateTime<Utc>,
    /// The audit event that recorded the detection.
    pub event_id: String,
}

/// Pins and pending changes, shared by every gateway on the database.
#[async_trait]
pub trait PinStore: Send + Sync {
    /// Every pin, by upstream then tool.
    async fn pins(&self) -> Result<Vec<ToolPin>, StoreError>;
    async fn pin(&self, upstream: &str, tool: &str) -> Result<Option<ToolPin>, StoreError>;
    /// Store `pin` unless the tool already has one; returns the pin in force afterwards (the
    /// existing one when another gateway got there first).
    async fn pin_first_seen(&self, pin: &ToolPin) -> Result<ToolPin, StoreError>;
    /// Record (or replace) the pending change of a tool.
    async fn record_pin_change(&self, change: &PinChange) -> Result<(), StoreError>;
    /// Every pending change, by upstream then tool.
    async fn pin_changes(&self) -> Result<Vec<PinChange>, StoreError>;
    async fn pin_change(&self, upstream: &str, tool: &str)
    -> Result<Option<PinChange>, StoreError>;
    /// Make the pending change whose new hash is `new_hash` the pin, atomically (compare and
    /// set: a change replaced in the meantime is not approved). Returns the new pin, or `None`
    /// when no such change is pending.
    async fn approve_pin_change(
        &self,
        upstream: &str,
        tool: &str,
        new_hash: &str,
        approved_by: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ToolPin>, StoreError>;
    /// Forget a pending change (the upstream went back to the pinned definition).
    async fn clear_pin_change(&self, upstream: &str, tool: &str) -> Result<bool, StoreError>;
}
