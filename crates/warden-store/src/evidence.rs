//! What both backends share for the evidence vault ([`EvidenceStore`]): decoding of stored
//! values and the legal-hold scopes.
//!
//! [`EvidenceStore`]: warden_core::store::EvidenceStore

use std::str::FromStr;

use warden_core::store::{Artifact, StoreError};

use crate::error::corrupt;

pub(crate) const EVIDENCE_COLUMNS: &str = "event_id, artifact, class, agent, created_at, \
     expires_at, key_id, wrapped_key, ciphertext, shredded_at";

/// What storing `record` failed at, for an error's context.
pub(crate) fn storing(record: &warden_core::store::EvidenceRecord) -> String {
    format!(
        "storing the {} of event {}",
        record.artifact.as_str(),
        record.event_id
    )
}

pub(crate) const HOLD_COLUMNS: &str = "id, scope, reason, operator, created_at";

pub(crate) fn artifact_from_db(event_id: &str, text: &str) -> Result<Artifact, StoreError> {
    Artifact::from_str(text)
        .map_err(|e| corrupt(format_args!("artifact of evidence {event_id}"), e))
}

/// A record that is not shredded must have both its wrapped key and its ciphertext.
pub(crate) fn sealed_parts(
    event_id: &str,
    shredded: bool,
    wrapped_key: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    match (shredded, wrapped_key, ciphertext) {
        (true, _, _) => Ok((Vec::new(), Vec::new())),
        (false, Some(k), Some(c)) => Ok((k, c)),
        (false, _, _) => Err(StoreError::Corrupt(format!(
            "evidence of {event_id} is neither sealed nor shredded"
        ))),
    }
}

/// A hold scope must be `agent:NAME` or `event:ID`.
pub(crate) fn check_scope(scope: &str) -> Result<(), StoreError> {
    match scope.split_once(':') {
        Some(("agent" | "event", rest)) if !rest.is_empty() => Ok(()),
        _ => Err(StoreError::Conflict(format!(
            "legal hold scope `{scope}` is not `agent:NAME` or `event:ID`"
        ))),
    }
}
