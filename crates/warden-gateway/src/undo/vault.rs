//! Where undo keeps and finds raw payloads: the evidence vault. The only two functions that
//! touch it, so the rest of undo does not care how payloads are sealed and stored.

use serde_json::Value;
use warden_core::ToolName;
use warden_core::store::Artifact;

use super::UndoError;
use crate::call::Call;
use crate::gateway::{Gateway, Shared};

/// Keep what a capture read as the `prior_state` of the write's event.
pub(super) async fn keep_prior_state(
    _shared: &Shared,
    _call: &Call,
    _capture: &ToolName,
    _result: &Value,
    _prior: &Value,
) -> Result<(), String> {
    Err("the evidence vault is not available".into())
}

impl Gateway {
    /// The `artifact` of the original event, decrypted.
    pub(super) async fn original_payload(
        &self,
        id: &str,
        artifact: Artifact,
    ) -> Result<Value, UndoError> {
        Err(UndoError::MissingData {
            id: id.to_owned(),
            what: artifact_words(artifact),
            why: "cannot be read: the evidence vault is not available".into(),
        })
    }
}

fn artifact_words(artifact: Artifact) -> &'static str {
    match artifact {
        Artifact::Arguments => "arguments",
        Artifact::Result => "result",
        Artifact::Approval => "approval",
        Artifact::PriorState => "prior state",
    }
}
