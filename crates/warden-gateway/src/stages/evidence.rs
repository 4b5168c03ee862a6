//! The evidence stages around execute: the raw arguments are sealed into the vault before the
//! upstream is called (no vault record, no execution), and the upstream's raw result right
//! after it answers, before inspection changes it for the agent. The result's record is
//! committed by record, in the same transaction as the call's audit event (no vault record, no
//! answer). Each record is kept under the most sensitive data class found in it.

use async_trait::async_trait;
use serde_json::Value;
use warden_core::ClassLevel;
use warden_core::store::Artifact;

use super::Stage;
use crate::call::{Call, Flow, Refusal, StageError};
use crate::evidence;
use crate::gateway::Shared;

/// Before execute: keep the arguments as the agent sent them.
pub struct KeepArguments;

/// After execute, before inspect: keep the result as the upstream returned it.
pub struct KeepResult;

#[async_trait]
impl Stage for KeepArguments {
    fn name(&self) -> &'static str {
        "evidence"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let level = call
            .data
            .as_ref()
            .and_then(|d| d.level)
            .unwrap_or(ClassLevel(0));
        let class = shared.protection.class_name(level)?;
        let arguments = call
            .request
            .arguments
            .clone()
            .unwrap_or_else(|| Value::Object(call.input.clone()));
        let agent = call.principal.agent.clone();
        match evidence::keep(
            shared,
            &call.event.id,
            Some(&agent),
            Artifact::Arguments,
            &class,
            &arguments,
        )
        .await
        {
            Ok(()) => Ok(Flow::Continue),
            Err(e) => {
                tracing::error!(error = %e, event = %call.event.id, "could not keep the arguments; not executing");
                Ok(Flow::Answer(Refusal::failed(format!(
                    "the arguments could not be kept in the evidence vault ({e}); the call was not executed"
                ))))
            }
        }
    }
}

#[async_trait]
impl Stage for KeepResult {
    fn name(&self) -> &'static str {
        "evidence"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let Some(result) = call.result.as_ref() else {
            return Err(StageError::Internal("no result to keep"));
        };
        let tool = call.tool_info()?.clone();
        let class = match shared.protection.result_class(&tool.name, result) {
            Ok(c) => c,
            // A result DLP cannot read is kept at the most sensitive class; inspect withholds it.
            Err(_) => {
                let classes = &shared.config.classes;
                classes.name(classes.highest()).to_owned()
            }
        };
        let agent = call.principal.agent.clone();
        match evidence::seal(
            shared,
            &call.event.id,
            Some(&agent),
            Artifact::Result,
            &class,
            result,
        ) {
            Ok(record) => {
                call.result_evidence = Some(record);
                Ok(Flow::Continue)
            }
            Err(e) => {
                tracing::error!(error = %e, event = %call.event.id, "could not seal the result; withholding it");
                call.result = None;
                Ok(Flow::Answer(Refusal::failed(format!(
                    "the result could not be sealed for the evidence vault ({e}); it is withheld"
                ))))
            }
        }
    }
}
