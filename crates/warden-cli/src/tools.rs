//! `warden tools`: pinned tool definitions and the changes ("rug pulls") waiting for approval.

use clap::Subcommand;
use serde_json::Value;

use crate::ServerArgs;
use crate::admin::Api;

#[derive(Subcommand)]
pub enum ToolsCommand {
    /// Every pinned tool, and whether its upstream now offers a different definition.
    Pins(ServerArgs),
    /// Old and new definition of tools whose definition changed (all of them, or TOOL).
    Diff {
        /// A tool (`upstream.tool` or the name agents see).
        tool: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Accept the new definition of TOOL: it is listed and callable again (admin).
    Approve {
        tool: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn run(cmd: ToolsCommand) -> anyhow::Result<()> {
    match cmd {
        ToolsCommand::Pins(server) => {
            let body = Api::from_args(&server)?.get("/v1/tools/pins").await?;
            println!("{:<32} {:<14} {:<26} STATE", "TOOL", "PIN", "PINNED AT");
            for p in body["pins"].as_array().into_iter().flatten() {
                let state = if p["change"].is_null() {
                    "ok".to_owned()
                } else {
                    format!(
                        "CHANGED (withheld; event {})",
                        p["change"]["event_id"].as_str().unwrap_or("?")
                    )
                };
                println!(
                    "{:<32} {:<14} {:<26} {state}",
                    p["tool"].as_str().unwrap_or(""),
                    short(p["pin"]["hash"].as_str().unwrap_or("")),
                    p["pin"]["pinned_at"].as_str().unwrap_or(""),
                );
            }
        }
        ToolsCommand::Diff { tool, server } => {
            let path = match &tool {
                Some(t) => format!("/v1/tools/pins?changed=true&tool={}", encode(t)),
                None => "/v1/tools/pins?changed=true".to_owned(),
            };
            let body = Api::from_args(&server)?.get(&path).await?;
            let pins = body["pins"].as_array().cloned().unwrap_or_default();
            if pins.is_empty() {
                println!(
                    "no changed tool definitions{}",
                    tool.map(|t| format!(" for {t}")).unwrap_or_default()
                );
            }
            for p in pins {
                print_diff(&p);
            }
        }
        ToolsCommand::Approve { tool, server } => {
            let body = Api::from_args(&server)?
                .post(&format!("/v1/tools/pins/{}/approve", encode(&tool)))
                .await?;
            println!(
                "{}: new definition {} approved; the tool is listed and callable again",
                body["tool"].as_str().unwrap_or(&tool),
                short(body["hash"].as_str().unwrap_or(""))
            );
        }
    }
    Ok(())
}

fn print_diff(p: &Value) {
    let change = &p["change"];
    println!(
        "tool {}: definition changed (pinned {} at {}{}; now {} seen at {}, event {})",
        p["tool"].as_str().unwrap_or("?"),
        short(p["pin"]["hash"].as_str().unwrap_or("")),
        p["pin"]["pinned_at"].as_str().unwrap_or("?"),
        p["pin"]["approved_by"]
            .as_str()
            .map(|a| format!(", approved by {a}"))
            .unwrap_or_default(),
        short(change["new_hash"].as_str().unwrap_or("")),
        change["detected_at"].as_str().unwrap_or("?"),
        change["event_id"].as_str().unwrap_or("?"),
    );
    for d in p["diff"].as_array().into_iter().flatten() {
        println!("  {}", d["path"].as_str().unwrap_or("/"));
        if !d["old"].is_null() {
            println!("    - {}", render(&d["old"]));
        }
        if !d["new"].is_null() {
            println!("    + {}", render(&d["new"]));
        }
    }
}

/// A value on one line: strings as they are, anything else as JSON.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.replace('\n', "\\n"),
        other => other.to_string(),
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A tool name for a URL path or query (names are `[A-Za-z0-9._-]`, but be safe).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
