//! minimize: what leaves Warden for the upstream. For now it records the arguments' keyed
//! digest; field classification and DLP against the vendor's clearance plug in here.

use async_trait::async_trait;
use serde_json::Value;

use super::Stage;
use crate::call::{Call, Flow, StageError};
use crate::gateway::Shared;

pub struct Minimize;

#[async_trait]
impl Stage for Minimize {
    fn name(&self) -> &'static str {
        "minimize"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let input = Value::Object(std::mem::take(&mut call.input));
        call.event.args_digest = Some(shared.digester.digest(&input));
        if let Value::Object(map) = input {
            call.input = map;
        }
        Ok(Flow::Continue)
    }
}
