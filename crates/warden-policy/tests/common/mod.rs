//! The shared scenario: a CRM, a payments service and an email service; a support agent, a
//! finance agent and their users.
#![allow(dead_code)]

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use warden_core::{Catalog, Config, Mode, RiskTier, ToolInfo, ToolName};
use warden_policy::{AuthzRequest, Decision, PolicyBundle, PolicySource};

pub const CONFIG: &str = r#"
[[vendors]]
name = "internal"
cleared = "restricted"

[[vendors]]
name = "mailco"
cleared = "internal"

[[upstreams]]
name = "crm"
vendor = "internal"
command = ["crm-server"]

[[upstreams]]
name = "payments"
vendor = "internal"
command = ["payments-server"]
trusted = true

[[upstreams]]
name = "email"
vendor = "mailco"
url = "http://127.0.0.1:9/mcp"

[[roles]]
name = "support"

[[roles]]
name = "finance"

[[agents]]
id = "support-bot"
owner = "support-lead@example.com"
purpose = "Answer customer tickets"
roles = ["support"]
mode = "execute"
clearance = "internal"
delegation = true

[[agents]]
id = "finance-bot"
owner = "cfo@example.com"
purpose = "Process refunds"
roles = ["finance"]
mode = "execute"
clearance = "confidential"
delegation = true

[[agents]]
id = "solo-bot"
owner = "ops@example.com"
purpose = "Nightly jobs"
roles = ["finance"]
mode = "execute"
clearance = "internal"

[[users]]
id = "alice"
roles = ["support"]

[[users]]
id = "bob"
roles = ["finance"]
"#;

pub fn config() -> Config {
    Config::parse(Path::new("test.toml"), CONFIG).expect("the test config is valid")
}

fn tool(name: &str, risk: RiskTier, input_schema: Value) -> ToolInfo {
    let name: ToolName = name.parse().expect("valid tool name");
    ToolInfo {
        exposed_name: name.to_string(),
        name,
        description: None,
        input_schema,
        output_schema: None,
        risk,
        reversible: risk == RiskTier::Read,
        annotations: None,
    }
}

pub fn catalog() -> Catalog {
    let mut c = Catalog::new();
    c.insert(tool(
        "crm.get_customer",
        RiskTier::Read,
        json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}),
    ));
    c.insert(tool(
        "crm.update_customer",
        RiskTier::High,
        json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"},
            "email": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "credit-limit": {"type": "number"},
            "address": {"type": "object", "required": ["city"], "properties": {
                "city": {"type": "string"}, "zip": {"type": "string"}}},
            "notes": {"anyOf": [{"type": "string"}, {"type": "null"}]}
        }}),
    ));
    c.insert(tool(
        "payments.refund",
        RiskTier::Critical,
        json!({"type": "object", "required": ["amount", "currency", "customer_id"], "properties": {
            "amount": {"type": "integer"},
            "currency": {"type": "string"},
            "customer_id": {"type": "string"}
        }}),
    ));
    c.insert(tool(
        "email.send",
        RiskTier::Low,
        json!({"type": "object", "required": ["to", "subject", "body"], "properties": {
            "to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}
        }}),
    ));
    c
}

/// The scenario's policies.
pub const POLICIES: &str = r#"// who may do what
@id("support-read")
permit(principal in Warden::Role::"support", action == Warden::Action::"crm.get_customer", resource);

@id("finance-refund")
permit(principal in Warden::Role::"finance", action == Warden::Action::"payments.refund", resource);

@id("refund-limit")
forbid(principal, action == Warden::Action::"payments.refund", resource)
when { context.input.amount > 1000 };
"#;

pub fn bundle_of(files: &[(&str, &str)]) -> Result<PolicyBundle, warden_core::Diagnostics> {
    let sources: Vec<PolicySource> = files
        .iter()
        .map(|(name, text)| PolicySource::new(*name, *text))
        .collect();
    PolicyBundle::build(&config(), &catalog(), &sources)
}

pub fn bundle() -> PolicyBundle {
    bundle_of(&[("policies/main.cedar", POLICIES)]).unwrap_or_else(|d| panic!("{d}"))
}

pub fn noon() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_787_200, 0).expect("valid time")
}

/// Decide `tool` for `agent` (acting for `user`, if any) with `input`.
pub fn decide(
    bundle: &PolicyBundle,
    agent: &str,
    user: Option<&str>,
    tool: &str,
    input: Value,
) -> Decision {
    let tool: ToolName = tool.parse().expect("valid tool name");
    bundle.authorize(&AuthzRequest {
        agent,
        user,
        task: None,
        tool: &tool,
        input: &input,
        mode: Mode::Execute,
        session: None,
        now: noon(),
        classes: &[],
        findings: &[],
    })
}

pub fn may_list(bundle: &PolicyBundle, agent: &str, user: Option<&str>, tool: &str) -> bool {
    let tool: ToolName = tool.parse().expect("valid tool name");
    bundle.may_list(agent, user, None, &tool, Mode::Execute)
}
