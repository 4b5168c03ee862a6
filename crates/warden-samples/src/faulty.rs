//! `faulty`: a misbehaving server for failure tests. Besides a healthy `ok`,
//! its tools kill the process, never answer, or answer with garbage.

use std::sync::LazyLock;

use rmcp::{
    Json, ServerHandler,
    handler::server::tool::{ToolRouter, schema_for_output},
    model::{CallToolResult, ContentBlock},
    schemars::{self, JsonSchema},
    tool, tool_handler, tool_router,
};
use serde::Serialize;

/// Exit status of the process after `crash`.
pub const CRASH_EXIT_CODE: i32 = 3;

/// What every faulty tool claims to return.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OkReply {
    /// Always true.
    pub ok: bool,
}

/// The `faulty` sample server. Stateless.
#[derive(Clone, Default)]
pub struct Faulty;

static ROUTER: LazyLock<ToolRouter<Faulty>> = LazyLock::new(Faulty::tool_router);

#[tool_router]
impl Faulty {
    /// Answer `{ok: true}`, proving the server is alive.
    #[tool(annotations(title = "Ok", read_only_hint = true, open_world_hint = false))]
    fn ok(&self) -> Json<OkReply> {
        Json(OkReply { ok: true })
    }

    /// Terminate the server process immediately (exit status 3) without answering.
    #[tool(annotations(title = "Crash", read_only_hint = true, open_world_hint = false))]
    fn crash(&self) -> Json<OkReply> {
        tracing::warn!("faulty sample: crash() called, exiting with status {CRASH_EXIT_CODE}");
        std::process::exit(CRASH_EXIT_CODE)
    }

    /// Never answer. The call stays pending until the caller gives up or cancels it.
    #[tool(annotations(title = "Hang", read_only_hint = true, open_world_hint = false))]
    async fn hang(&self) -> Json<OkReply> {
        std::future::pending().await
    }

    /// Answer with text that is not JSON and no structuredContent, despite
    /// declaring an output schema.
    #[tool(
        output_schema = schema_for_output::<OkReply>(),
        annotations(title = "Garbage", read_only_hint = true, open_world_hint = false)
    )]
    fn garbage(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(
            "<html><body>502 Bad Gateway</body></html> {\"ok\": tru",
        )])
    }
}

#[tool_handler(
    router = ROUTER,
    name = "warden-sample-faulty",
    instructions = "Misbehaves on purpose: crash exits the process, hang never answers, \
                    garbage returns non-JSON text."
)]
impl ServerHandler for Faulty {}
