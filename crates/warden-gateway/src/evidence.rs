//! The evidence vault, as the gateway uses it: raw payloads (arguments, upstream results,
//! approval requests, prior state for undo) sealed with `warden-vault` under the master key and
//! kept in the store's [`EvidenceStore`], apart from the audit log, which holds only digests.
//!
//! Each record is sealed under its own data key with `EVENT_ID/ARTIFACT` as associated data, so
//! a record moved to another event or artifact does not open. Its retention comes from
//! `[retention]` by data class and artifact; [`Gateway::run_retention`] shreds expired records
//! outside legal holds by destroying their wrapped data keys.
//!
//! Reading evidence is an operator action like any other: [`Gateway::show_evidence`] records an
//! admin event naming the event read and the reader (never the payload) before it decrypts.
//!
//! [`EvidenceStore`]: warden_core::store::EvidenceStore

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use warden_core::store::{Artifact, EvidenceRecord, LegalHold, OperatorToken, StoreError};
use warden_core::{AuditEvent, EventKind, Outcome};
use warden_vault::{MasterKey, Sealed, VaultError};

use crate::gateway::{AdminError, Gateway, Shared};

/// What an evidence record holds for a reader.
#[derive(Debug, Clone, PartialEq, Serialize)]
/// As JSON: `{"state": "present", "value": ...}`, `{"state": "shredded", "value": {"at": ...}}`
/// or `{"state": "missing"}`.
#[serde(tag = "state", content = "value", rename_all = "snake_case")]
pub enum EvidencePayload {
    /// The payload, decrypted.
    Present(Value),
    /// Retention (or an operator) destroyed its data key at `at`: it is gone for good.
    Shredded { at: DateTime<Utc> },
    /// Nothing was kept for this event and artifact.
    Missing,
}

/// Why the vault could not keep or open a payload. Keeping fails closed: the call's result is
/// withheld.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("the evidence vault: {0}")]
    Vault(#[from] VaultError),
    #[error("the evidence store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the {artifact} of event {event} was sealed with vault key {stored}, but the configured \
         master key is {configured}: set WARDEN_VAULT_KEY or [vault] key_file to the key it was \
         written with"
    )]
    WrongKey {
        event: String,
        artifact: &'static str,
        stored: String,
        configured: String,
    },
    #[error("the {artifact} of event {event} does not decode: {message}")]
    Malformed {
        event: String,
        artifact: &'static str,
        message: String,
    },
}

/// One record as `warden evidence show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceView {
    pub artifact: Artifact,
    pub class: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub held: bool,
    pub payload: EvidencePayload,
}

/// What a retention run did.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RetentionReport {
    /// Records whose data keys were destroyed now.
    pub shredded: u64,
    /// Expired records kept because a legal hold covers them.
    pub held: u64,
}

/// How an operator reads an event's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceRead {
    /// `warden evidence show`: every record, whole.
    Show,
    /// `warden explain`: the arguments and result, redacted above the reader's clearance.
    Explain,
}

impl EvidenceRead {
    fn action(self) -> &'static str {
        match self {
            Self::Show => "evidence.show",
            Self::Explain => "evidence.explain",
        }
    }

    fn manner(self) -> &'static str {
        match self {
            Self::Show => "",
            Self::Explain => " through explain, redacted above their clearance",
        }
    }
}

/// What a legal hold covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldTarget {
    Agent(String),
    Event(String),
}

impl HoldTarget {
    pub fn scope(&self) -> String {
        match self {
            Self::Agent(a) => format!("agent:{a}"),
            Self::Event(e) => format!("event:{e}"),
        }
    }
}

/// The associated data binding a sealed record to its place.
fn record_id(event_id: &str, artifact: Artifact) -> String {
    format!("{event_id}/{}", artifact.as_str())
}

/// Seal `payload` and store it as the `artifact` of `event_id`, with the retention of `class`,
/// ahead of that event (see `EvidenceStore::put_evidence_ahead`).
pub(crate) async fn keep(
    shared: &Shared,
    event_id: &str,
    agent: Option<&str>,
    artifact: Artifact,
    class: &str,
    payload: &Value,
) -> Result<(), EvidenceError> {
    let record = seal(shared, event_id, agent, artifact, class, payload)?;
    // Every caller commits the event of the same call next, which makes the record durable.
    shared.store.put_evidence_ahead(&record).await?;
    Ok(())
}

/// Seal `payload` as the `artifact` of `event_id`, with the retention of `class`; the caller
/// stores the record.
pub(crate) fn seal(
    shared: &Shared,
    event_id: &str,
    agent: Option<&str>,
    artifact: Artifact,
    class: &str,
    payload: &Value,
) -> Result<EvidenceRecord, EvidenceError> {
    let bytes = serde_json::to_vec(payload).map_err(|e| EvidenceError::Malformed {
        event: event_id.to_owned(),
        artifact: artifact.as_str(),
        message: e.to_string(),
    })?;
    let sealed = shared.vault.seal(&record_id(event_id, artifact), &bytes)?;
    let now = Utc::now();
    let expires_at = shared
        .config
        .retention
        .keep(class, artifact)
        // A period too long to represent is kept forever.
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_add_signed(d));
    let record = EvidenceRecord {
        event_id: event_id.to_owned(),
        artifact,
        class: class.to_owned(),
        agent: agent.map(str::to_owned),
        created_at: now,
        expires_at,
        key_id: sealed.key_id,
        wrapped_key: sealed.wrapped_key,
        ciphertext: sealed.ciphertext,
        shredded_at: None,
    };
    Ok(record)
}

/// Decrypt one stored record.
pub(crate) fn open_record(
    key: &MasterKey,
    record: &EvidenceRecord,
) -> Result<EvidencePayload, EvidenceError> {
    if let Some(at) = record.shredded_at {
        return Ok(EvidencePayload::Shredded { at });
    }
    if record.key_id != key.id() {
        return Err(EvidenceError::WrongKey {
            event: record.event_id.clone(),
            artifact: record.artifact.as_str(),
            stored: record.key_id.clone(),
            configured: key.id(),
        });
    }
    let sealed = Sealed {
        key_id: record.key_id.clone(),
        wrapped_key: record.wrapped_key.clone(),
        ciphertext: record.ciphertext.clone(),
    };
    let bytes = key.open(&record_id(&record.event_id, record.artifact), &sealed)?;
    let value = serde_json::from_slice(&bytes).map_err(|e| EvidenceError::Malformed {
        event: record.event_id.clone(),
        artifact: record.artifact.as_str(),
        message: e.to_string(),
    })?;
    Ok(EvidencePayload::Present(value))
}

pub(crate) async fn open(
    shared: &Shared,
    event_id: &str,
    artifact: Artifact,
) -> Result<EvidencePayload, EvidenceError> {
    match shared.store.evidence(event_id, artifact).await? {
        Some(record) => open_record(&shared.vault, &record),
        None => Ok(EvidencePayload::Missing),
    }
}

impl Gateway {
    /// Seal `payload` as the `artifact` of event `event_id` (of `agent`), kept as long as
    /// `[retention]` says for `class`. A second record for the same event and artifact is a
    /// store conflict.
    pub async fn keep_evidence(
        &self,
        event_id: &str,
        agent: Option<&str>,
        artifact: Artifact,
        class: &str,
        payload: &Value,
    ) -> Result<(), EvidenceError> {
        keep(self.shared(), event_id, agent, artifact, class, payload).await
    }

    /// Decrypt the `artifact` of event `event_id`. Not audited: for the gateway's own use (say,
    /// an undo reading the prior state). Operators read through [`Gateway::show_evidence`].
    pub async fn open_evidence(
        &self,
        event_id: &str,
        artifact: Artifact,
    ) -> Result<EvidencePayload, EvidenceError> {
        open(self.shared(), event_id, artifact).await
    }

    /// Every record of an event with its retention, decrypted (shredded ones say when), for
    /// callers that already hold the evidence. Not audited.
    pub async fn evidence_views(&self, event_id: &str) -> Result<Vec<EvidenceView>, EvidenceError> {
        let shared = self.shared();
        let records = shared.store.evidence_of_event(event_id).await?;
        let holds = shared.store.holds().await?;
        records
            .iter()
            .map(|r| {
                let held = holds.iter().any(|h| {
                    h.scope == format!("event:{}", r.event_id)
                        || r.agent
                            .as_ref()
                            .is_some_and(|a| h.scope == format!("agent:{a}"))
                });
                Ok(EvidenceView {
                    artifact: r.artifact,
                    class: r.class.clone(),
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                    held,
                    payload: open_record(&shared.vault, r)?,
                })
            })
            .collect()
    }

    /// `warden evidence show`: the decrypted evidence of `event_id`, for an auditor or admin
    /// (the caller checks the role). The read is recorded first — an admin event naming the
    /// event and the reader, with the event as parent — and nothing is decrypted without it.
    pub async fn show_evidence(
        &self,
        operator: &OperatorToken,
        event_id: &str,
    ) -> Result<(String, Vec<EvidenceView>), AdminError> {
        let original = self
            .shared()
            .store
            .event(event_id)
            .await?
            .ok_or_else(|| AdminError::Invalid(format!("no event `{event_id}`")))?;
        let read = self
            .record_evidence_read(operator, &original, EvidenceRead::Show)
            .await?;
        let views = self
            .evidence_views(event_id)
            .await
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        Ok((read, views))
    }

    /// Commit the admin event that says `operator` is about to read the evidence of `original`
    /// (read it only after this returns); returns its id.
    pub async fn record_evidence_read(
        &self,
        operator: &OperatorToken,
        original: &AuditEvent,
        how: EvidenceRead,
    ) -> Result<String, AdminError> {
        let event_id = &original.id;
        let action = format!("{}:{event_id}", how.action());
        let mut event = self.admin_event_of(&operator.name, &action, original.agent.as_deref());
        event.parent_id = Some(event_id.clone());
        event.reason = Some(format!(
            "{} ({}) read the evidence of event {event_id}{}",
            operator.name,
            operator.role.as_str(),
            how.manner()
        ));
        self.record_admin_event(event).await
    }

    /// Put a legal hold on the evidence of an agent or an event (audited first).
    pub async fn hold_evidence(
        &self,
        operator: &str,
        target: HoldTarget,
        reason: &str,
    ) -> Result<LegalHold, AdminError> {
        if reason.trim().is_empty() {
            return Err(AdminError::Invalid("a legal hold needs a reason".into()));
        }
        match &target {
            HoldTarget::Agent(a) => {
                if self.shared().agent(a).is_none() {
                    return Err(AdminError::UnknownAgent(a.clone()));
                }
            }
            HoldTarget::Event(e) => {
                if self.shared().store.event(e).await?.is_none() {
                    return Err(AdminError::Invalid(format!("no event `{e}`")));
                }
            }
        }
        let hold = LegalHold {
            id: format!("hold_{}", uuid::Uuid::now_v7().simple()),
            scope: target.scope(),
            reason: reason.to_owned(),
            operator: operator.to_owned(),
            created_at: Utc::now(),
        };
        let agent = match &target {
            HoldTarget::Agent(a) => Some(a.as_str()),
            HoldTarget::Event(_) => None,
        };
        self.record_admin(
            operator,
            &format!("evidence.hold:{}:{}", hold.id, hold.scope),
            agent,
            Some(reason),
        )
        .await?;
        self.shared().store.insert_hold(&hold).await?;
        Ok(hold)
    }

    /// Lift a legal hold (audited first); `false` if there was none with that id.
    pub async fn release_hold(&self, operator: &str, id: &str) -> Result<bool, AdminError> {
        let known = self
            .shared()
            .store
            .holds()
            .await?
            .into_iter()
            .any(|h| h.id == id);
        if !known {
            return Ok(false);
        }
        self.record_admin(operator, &format!("evidence.release:{id}"), None, None)
            .await?;
        Ok(self.shared().store.remove_hold(id).await?)
    }

    pub async fn legal_holds(&self) -> Result<Vec<LegalHold>, AdminError> {
        Ok(self.shared().store.holds().await?)
    }

    /// Shred every expired record not under a legal hold, now. `operator` is who asked (`None`
    /// for the server's periodic task, which records a run only when it shredded something).
    pub async fn run_retention(
        &self,
        operator: Option<&str>,
    ) -> Result<RetentionReport, AdminError> {
        let store = &self.shared().store;
        let now = Utc::now();
        let held = store.held_expired(now).await?;
        let shredded = store.shred_expired(now).await?;
        if operator.is_some() || shredded > 0 {
            let summary =
                format!("shredded {shredded} evidence record(s); {held} kept by legal holds");
            self.record_admin(
                operator.unwrap_or("warden"),
                "retention.run",
                None,
                Some(&summary),
            )
            .await?;
        }
        Ok(RetentionReport { shredded, held })
    }

    /// Append an admin event; no record, no change.
    async fn record_admin(
        &self,
        operator: &str,
        action: &str,
        agent: Option<&str>,
        reason: Option<&str>,
    ) -> Result<String, AdminError> {
        let shared = self.shared();
        let mut event = AuditEvent::begin(EventKind::Admin, "rest", None);
        event.operator = Some(operator.to_owned());
        event.agent = agent.map(str::to_owned);
        event.action = Some(action.to_owned());
        event.reason = reason.map(str::to_owned);
        event.outcome = Outcome::Ok;
        event.bundle_hash = shared.snapshot().bundle.hash().to_owned();
        event.finished_at = Utc::now();
        shared
            .store
            .append(&event)
            .await
            .map_err(AdminError::Audit)?;
        Ok(event.id)
    }
}
