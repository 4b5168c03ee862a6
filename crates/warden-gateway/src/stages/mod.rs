//! The pipeline's stages, in order: identify → authorize → minimize → gate → evidence
//! (arguments) → execute → evidence (result) → inspect.
//! `record` is not a stage: the pipeline runs it for every call, whatever the path.

use async_trait::async_trait;

use crate::call::{Call, Flow, StageError};
use crate::gateway::Shared;

mod authorize;
mod evidence;
mod execute;
mod gate;
mod identify;
mod inspect;
mod minimize;

pub use authorize::{Authorize, approval_obligation};
pub use evidence::{KeepArguments, KeepResult};
pub use execute::Execute;
pub use gate::Gate;
pub use identify::Identify;
pub use inspect::Inspect;
pub use minimize::Minimize;

/// One named step of the pipeline: passes the call on, answers it, or fails (closed).
#[async_trait]
pub trait Stage: Send + Sync {
    fn name(&self) -> &'static str;
    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError>;
}

/// The stages in the order every call meets them.
pub fn standard() -> Vec<Box<dyn Stage>> {
    vec![
        Box::new(Identify),
        Box::new(Authorize),
        Box::new(Minimize),
        Box::new(Gate),
        Box::new(KeepArguments),
        Box::new(crate::undo::Capture),
        Box::new(Execute),
        Box::new(KeepResult),
        Box::new(Inspect),
    ]
}
