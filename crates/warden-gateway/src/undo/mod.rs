//! Undo: run an event's compensation through the whole pipeline, at most once.
//!
//! A tool's undo recipe (config `undo`) says how: a compensating call whose arguments are a
//! template over the original arguments and result (`template`), `capture` (the prior state,
//! read before the write by the `capture` stage and kept in the evidence vault, is written
//! back), or `irreversible`. `Gateway::undo` checks the event (a tool call that succeeded, with
//! a reversible recipe), builds the compensating call, claims the undo in the store (one claim
//! per event, shared by replicas) and runs the call as the original agent and user: it is
//! authorized, may need approval, counts against limits and is audited like any call, with the
//! original as its `parent_id` and the operator who asked recorded on it.
//!
//! Rules:
//! - An event is undone at most once. A claim whose undo did not happen (denied, failed, an
//!   approval denied or expired) may be taken over by a new attempt, by compare-and-set, so two
//!   racing attempts still run one compensation.
//! - An undo that policy parks for approval holds the claim; once approved, asking for the undo
//!   again runs the approved call (as the agent polling `warden.approval_status` would).
//! - An undo event is itself undoable only if its own tool has a recipe: undoing the restore of
//!   a `capture` recipe (the write tool again, captured again) re-applies the change; a
//!   `cancel_refund` has no recipe, so its undo is refused. "Once" holds for each event.
//! - A refusal before the pipeline (unknown event, not a successful tool call, irreversible,
//!   already undone, missing evidence) is recorded as an admin event `events.undo:ID`.

pub mod capture;
pub mod template;
mod vault;

use chrono::Utc;
use serde_json::{Map, Value};
use warden_core::config::UndoRecipe;
use warden_core::store::{ApprovalStatus, Artifact, StoreError};
use warden_core::{AuditEvent, EventKind, Outcome, ToolName};

use crate::approvals;
use crate::call::{CallRequest, CallResponse, Channel, Principal};
use crate::gateway::Gateway;

pub use capture::Capture;
pub use template::TemplateError;

/// Why an event cannot be undone (now).
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("no event `{0}`")]
    UnknownEvent(String),
    #[error("event `{0}` is not an agent's tool call; only tool calls can be undone")]
    NotToolCall(String),
    #[error(
        "event `{id}` ended `{outcome}`; only a call that succeeded (outcome ok) can be undone"
    )]
    NotSucceeded { id: String, outcome: &'static str },
    #[error("`{tool}` is irreversible (its undo recipe says so): event `{id}` cannot be undone")]
    Irreversible { id: String, tool: String },
    #[error("`{tool}` has no undo recipe: event `{id}` cannot be undone")]
    NoRecipe { id: String, tool: String },
    #[error("event `{id}` was already undone by event `{by}`")]
    AlreadyUndone { id: String, by: String },
    #[error("event `{id}` is being undone by event `{by}`")]
    InProgress { id: String, by: String },
    #[error(
        "the undo of event `{id}` (event `{by}`) waits for approval {approval}; ask for the undo again once it is approved"
    )]
    AwaitingApproval {
        id: String,
        by: String,
        approval: String,
    },
    #[error("the undo of event `{id}` needs the original {what}, which {why}")]
    MissingData {
        id: String,
        what: &'static str,
        why: String,
    },
    #[error("the undo recipe of `{tool}` cannot be filled from event `{id}`: {error}")]
    Template {
        id: String,
        tool: String,
        error: String,
    },
    #[error("the compensating tool `{0}` is not offered by its upstream")]
    UnknownTool(String),
    #[error("agent `{agent}` of event `{id}` is no longer in the configuration")]
    UnknownAgent { id: String, agent: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl UndoError {
    /// How the refusal is recorded.
    fn outcome(&self) -> Outcome {
        match self {
            Self::UnknownEvent(_) | Self::NotToolCall(_) => Outcome::Rejected,
            Self::Store(_) | Self::MissingData { .. } | Self::Template { .. } => Outcome::Failed,
            _ => Outcome::Denied,
        }
    }
}

/// A refused undo and the admin event that recorded the refusal (none if even that failed).
#[derive(Debug)]
pub struct UndoRefusal {
    pub error: UndoError,
    pub event_id: Option<String>,
}

impl std::fmt::Display for UndoRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.event_id {
            Some(id) => write!(f, "{} [event {id}]", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

/// What an earlier claim on the same event means for this attempt.
enum Earlier {
    /// It did not undo the event: take the claim over.
    Retry,
    /// It was approved and has now run.
    Ran(Box<CallResponse>),
}

impl Gateway {
    /// Undo `event_id` on an operator's word: run its compensation through the pipeline as the
    /// original agent (and user). The answer is the compensating call's, committed.
    pub async fn undo(
        &self,
        event_id: &str,
        operator: &str,
        channel: Channel,
    ) -> Result<CallResponse, UndoRefusal> {
        match self.try_undo(event_id, operator, channel).await {
            Ok(response) => Ok(response),
            Err(error) => {
                let mut event = AuditEvent::begin(EventKind::Admin, channel.as_str(), None);
                event.operator = Some(operator.to_owned());
                event.action = Some(format!("events.undo:{event_id}"));
                if !matches!(error, UndoError::UnknownEvent(_)) {
                    event.parent_id = Some(event_id.to_owned());
                }
                event.outcome = error.outcome();
                event.reason = Some(error.to_string());
                event.bundle_hash = self.shared().snapshot().bundle.hash().to_owned();
                event.finished_at = Utc::now();
                let recorded = match self.shared().store.append(&event).await {
                    Ok(_) => Some(event.id),
                    Err(e) => {
                        tracing::error!(error = %e, "could not record a refused undo");
                        None
                    }
                };
                Err(UndoRefusal {
                    error,
                    event_id: recorded,
                })
            }
        }
    }

    async fn try_undo(
        &self,
        id: &str,
        operator: &str,
        channel: Channel,
    ) -> Result<CallResponse, UndoError> {
        let shared = self.shared();
        let store = &shared.store;
        let original = store
            .event(id)
            .await?
            .ok_or_else(|| UndoError::UnknownEvent(id.to_owned()))?;
        let (EventKind::ToolCall, Some(action), Some(agent)) =
            (original.kind, &original.action, &original.agent)
        else {
            return Err(UndoError::NotToolCall(id.to_owned()));
        };
        // A capture read is Warden's, not the agent's: nothing to compensate.
        if original.operator.as_deref() == Some(capture::WARDEN_ACTOR) {
            return Err(UndoError::NotToolCall(id.to_owned()));
        }
        if original.outcome != Outcome::Ok {
            return Err(UndoError::NotSucceeded {
                id: id.to_owned(),
                outcome: original.outcome.as_str(),
            });
        }
        let tool: Option<ToolName> = action.parse().ok();
        let recipe = tool
            .as_ref()
            .and_then(|t| shared.config.tool(t))
            .and_then(|t| t.undo.clone());
        let recipe = match recipe {
            None => {
                return Err(UndoError::NoRecipe {
                    id: id.to_owned(),
                    tool: action.clone(),
                });
            }
            Some(UndoRecipe::Irreversible) => {
                return Err(UndoError::Irreversible {
                    id: id.to_owned(),
                    tool: action.clone(),
                });
            }
            Some(r) => r,
        };
        if shared.agent(agent).is_none() {
            return Err(UndoError::UnknownAgent {
                id: id.to_owned(),
                agent: agent.clone(),
            });
        }
        let principal = Principal {
            agent: agent.clone(),
            key_id: None,
            task: None,
        };

        let earlier = store.undo_of(id).await?;
        if let Some(by) = &earlier {
            match self
                .earlier_undo(id, by, &principal, operator, channel)
                .await?
            {
                Earlier::Retry => {}
                Earlier::Ran(response) => return Ok(*response),
            }
        }

        let (tool, arguments) = self.compensation(&original, action, &recipe).await?;
        let request = CallRequest {
            channel,
            tool,
            arguments: Some(Value::Object(arguments)),
            user: original.user.clone(),
            // An operator's undo is not part of the agent's session: it neither sees nor adds
            // to what the agent's session policies count.
            session: None,
            mcp_session: None,
            correlation_id: Some(original.correlation_id.clone()),
        };
        let mut call = self.new_call(principal, request, Some(original.id.clone()));
        call.event.operator = Some(operator.to_owned());
        let won = match &earlier {
            None => store.claim_undo(id, &call.event.id).await?,
            Some(by) => store.reclaim_undo(id, by, &call.event.id).await?,
        };
        if !won {
            let by = store.undo_of(id).await?.unwrap_or_default();
            return Err(UndoError::InProgress {
                id: id.to_owned(),
                by,
            });
        }
        Ok(self.run(call).await)
    }

    /// The undo `by` claimed `id` before: did it undo it, is it still going, or may this
    /// attempt take over?
    async fn earlier_undo(
        &self,
        id: &str,
        by: &str,
        principal: &Principal,
        operator: &str,
        channel: Channel,
    ) -> Result<Earlier, UndoError> {
        let store = &self.shared().store;
        let in_progress = || UndoError::InProgress {
            id: id.to_owned(),
            by: by.to_owned(),
        };
        let Some(event) = store.event(by).await? else {
            return Err(in_progress());
        };
        match event.outcome {
            Outcome::Ok => {
                return Err(UndoError::AlreadyUndone {
                    id: id.to_owned(),
                    by: by.to_owned(),
                });
            }
            Outcome::Pending | Outcome::Proposed => {}
            _ => return Ok(Earlier::Retry),
        }
        let Some(approval) = store
            .approvals(None)
            .await?
            .into_iter()
            .find(|a| a.event_id == by)
        else {
            return Ok(Earlier::Retry);
        };
        let mut approval = approval;
        if approval.status == ApprovalStatus::Approved {
            let mut run_event = AuditEvent::begin(
                EventKind::ToolCall,
                channel.as_str(),
                Some(event.correlation_id.clone()),
            );
            run_event.operator = Some(operator.to_owned());
            match approvals::claim(self.shared(), &principal.agent, &approval.id, &run_event.id)
                .await?
            {
                Some(approvals::Status::Run(approved, approvers)) => {
                    let response = self
                        .run_approved(principal.clone(), channel, approved, approvers, run_event)
                        .await;
                    return Ok(Earlier::Ran(Box::new(response)));
                }
                Some(approvals::Status::Settled(settled)) => approval = settled,
                None => return Ok(Earlier::Retry),
            }
        }
        match approval.status {
            ApprovalStatus::Pending if approval.expires_at > Utc::now() => {
                Err(UndoError::AwaitingApproval {
                    id: id.to_owned(),
                    by: by.to_owned(),
                    approval: approval.id,
                })
            }
            ApprovalStatus::Approved => Err(in_progress()),
            ApprovalStatus::Executed => {
                let Some(ran) = approval.result_event_id else {
                    return Err(in_progress());
                };
                match store.event(&ran).await? {
                    Some(e) if e.outcome == Outcome::Ok => Err(UndoError::AlreadyUndone {
                        id: id.to_owned(),
                        by: ran,
                    }),
                    Some(_) => Ok(Earlier::Retry),
                    None => Err(UndoError::InProgress {
                        id: id.to_owned(),
                        by: ran,
                    }),
                }
            }
            _ => Ok(Earlier::Retry),
        }
    }

    /// The compensating call for `original`: the tool's exposed name and the arguments.
    async fn compensation(
        &self,
        original: &AuditEvent,
        action: &str,
        recipe: &UndoRecipe,
    ) -> Result<(String, Map<String, Value>), UndoError> {
        let id = &original.id;
        let (tool, arguments) = match recipe {
            UndoRecipe::Compensate { tool, args } => {
                let paths = template::placeholders(args).map_err(|e| UndoError::Template {
                    id: id.clone(),
                    tool: action.to_owned(),
                    error: e.to_string(),
                })?;
                let wants = |root: &str| paths.iter().any(|p| p.split('.').next() == Some(root));
                let input = if wants("input") {
                    self.original_payload(id, Artifact::Arguments).await?
                } else {
                    Value::Object(Map::new())
                };
                let result = if wants("result") {
                    let raw = self.original_payload(id, Artifact::Result).await?;
                    Some(
                        template::structured(&raw).ok_or_else(|| UndoError::MissingData {
                            id: id.clone(),
                            what: "result's structured content",
                            why: "the result does not have (it is not JSON)".into(),
                        })?,
                    )
                } else {
                    None
                };
                let filled = template::fill(
                    args,
                    &template::Sources {
                        input: &input,
                        result: result.as_ref(),
                    },
                )
                .map_err(|e| UndoError::Template {
                    id: id.clone(),
                    tool: action.to_owned(),
                    error: e.to_string(),
                })?;
                let Value::Object(map) = filled else {
                    return Err(UndoError::Template {
                        id: id.clone(),
                        tool: action.to_owned(),
                        error: "the arguments must be a table (a JSON object)".into(),
                    });
                };
                (tool, map)
            }
            UndoRecipe::Capture { tool, .. } => {
                let prior = self.original_payload(id, Artifact::PriorState).await?;
                let input = self.original_payload(id, Artifact::Arguments).await?;
                let Value::Object(input) = input else {
                    return Err(UndoError::MissingData {
                        id: id.clone(),
                        what: "arguments",
                        why: "are not a JSON object".into(),
                    });
                };
                (tool, capture::restore_arguments(&input, &prior))
            }
            UndoRecipe::Irreversible => {
                return Err(UndoError::Irreversible {
                    id: id.clone(),
                    tool: action.to_owned(),
                });
            }
        };
        let exposed = self
            .shared()
            .snapshot()
            .catalog
            .get(tool)
            .map(|t| t.exposed_name.clone())
            .ok_or_else(|| UndoError::UnknownTool(tool.to_string()))?;
        Ok((exposed, arguments))
    }
}
