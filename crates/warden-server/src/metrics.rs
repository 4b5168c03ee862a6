//! Prometheus metrics: call outcomes, authentication failures, and which part of the MCP edge
//! answered each `tools/call`.
//!
//! A handful of fixed counters does not warrant a metrics framework: they are atomics, and
//! `/metrics` renders them in the Prometheus text format. No label carries payload data.

use std::sync::atomic::{AtomicU64, Ordering};

use warden_core::Outcome;
use warden_gateway::CallResponse;

const OUTCOMES: [Outcome; 7] = [
    Outcome::Ok,
    Outcome::ToolError,
    Outcome::Denied,
    Outcome::Rejected,
    Outcome::Failed,
    Outcome::Proposed,
    Outcome::Pending,
];

static CALLS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
static AUTH_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Who answered an MCP `tools/call`: the edge itself, or rmcp's service.
#[derive(Debug, Clone, Copy)]
pub enum McpPath {
    Edge,
    Rmcp,
}

static MCP_CALLS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

pub fn record_mcp_call(path: McpPath) {
    MCP_CALLS[path as usize].fetch_add(1, Ordering::Relaxed);
}

pub fn record_call(response: &CallResponse) {
    if let Some(i) = OUTCOMES.iter().position(|o| *o == response.outcome) {
        CALLS[i].fetch_add(1, Ordering::Relaxed);
    }
}

pub fn record_auth_failure() {
    AUTH_FAILURES.fetch_add(1, Ordering::Relaxed);
}

pub fn render() -> String {
    let mut out = String::from(
        "# HELP warden_tool_calls_total Tool calls by outcome.\n# TYPE warden_tool_calls_total counter\n",
    );
    for (o, c) in OUTCOMES.iter().zip(CALLS.iter()) {
        out.push_str(&format!(
            "warden_tool_calls_total{{outcome=\"{}\"}} {}\n",
            o.as_str(),
            c.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# HELP warden_auth_failures_total Requests refused for a missing, unknown, revoked or expired credential.\n");
    out.push_str("# TYPE warden_auth_failures_total counter\n");
    out.push_str(&format!(
        "warden_auth_failures_total {}\n",
        AUTH_FAILURES.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP warden_mcp_tool_calls_total MCP tools/call requests by what answered them: the edge itself or rmcp's service.\n");
    out.push_str("# TYPE warden_mcp_tool_calls_total counter\n");
    for (path, calls) in [("edge", McpPath::Edge), ("rmcp", McpPath::Rmcp)] {
        out.push_str(&format!(
            "warden_mcp_tool_calls_total{{path=\"{path}\"}} {}\n",
            MCP_CALLS[calls as usize].load(Ordering::Relaxed)
        ));
    }
    out
}
