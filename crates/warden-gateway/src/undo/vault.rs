//! Where undo keeps and finds raw payloads: the evidence vault (`crate::evidence`). The only two
//! functions that touch it, so the rest of undo does not care how payloads are sealed and stored.

use serde_json::Value;
use warden_core::ToolName;
use warden_core::store::Artifact;

use super::UndoError;
use crate::call::Call;
use crate::evidence::{self, EvidencePayload};
use crate::gateway::{Gateway, Shared};

/// Keep what a capture read (`result`, the read's whole `CallToolResult`, and `prior`, its
/// structured content) as the `prior_state` of the write's event, under the most sensitive
/// class found in the read's result.
pub(super) async fn keep_prior_state(
    shared: &Shared,
    call: &Call,
    capture: &ToolName,
    result: &Value,
    prior: &Value,
) -> Result<(), String> {
    let class = match shared.protection.result_class(capture, result) {
        Ok(c) => c,
        Err(_) => {
            let classes = &shared.config.classes;
            classes.name(classes.highest()).to_owned()
        }
    };
    evidence::keep(
        shared,
        &call.event.id,
        Some(call.principal.agent.as_str()),
        Artifact::PriorState,
        &class,
        prior,
    )
    .await
    .map_err(|e| e.to_string())
}

impl Gateway {
    /// The `artifact` of the original event, decrypted.
    pub(super) async fn original_payload(
        &self,
        id: &str,
        artifact: Artifact,
    ) -> Result<Value, UndoError> {
        let what = artifact_words(artifact);
        match self.open_evidence(id, artifact).await {
            Ok(EvidencePayload::Present(v)) => Ok(v),
            Ok(EvidencePayload::Shredded { at }) => Err(UndoError::MissingData {
                id: id.to_owned(),
                what,
                why: format!("was shredded at {}", at.format("%Y-%m-%dT%H:%M:%SZ")),
            }),
            Ok(EvidencePayload::Missing) => Err(UndoError::MissingData {
                id: id.to_owned(),
                what,
                why: "is not in the evidence vault".into(),
            }),
            Err(e) => Err(UndoError::MissingData {
                id: id.to_owned(),
                what,
                why: format!("cannot be read: {e}"),
            }),
        }
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
