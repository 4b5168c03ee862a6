//! `echo`: returns its payload unchanged; the cheapest possible tool, used to
//! measure the gateway's own overhead.

use std::sync::LazyLock;

use rmcp::{
    Json, ServerHandler,
    handler::server::{tool::ToolRouter, wrapper::Parameters},
    schemars::{self, JsonSchema},
    tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoPayload {
    /// Any text; it is returned unchanged.
    pub payload: String,
}

/// The `echo` sample server. Stateless.
#[derive(Clone, Default)]
pub struct Echo;

static ROUTER: LazyLock<ToolRouter<Echo>> = LazyLock::new(Echo::tool_router);

#[tool_router]
impl Echo {
    /// Return the payload unchanged, as `{payload}`.
    #[tool(annotations(
        title = "Echo",
        read_only_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    fn echo(&self, Parameters(params): Parameters<EchoPayload>) -> Json<EchoPayload> {
        Json(params)
    }
}

#[tool_handler(
    router = ROUTER,
    name = "warden-sample-echo",
    instructions = "Echoes its payload; for benchmarks."
)]
impl ServerHandler for Echo {}
