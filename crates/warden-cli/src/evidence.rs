//! `warden evidence ...`, `warden retention run` and `warden explain`: the evidence vault and
//! decision reconstruction, through the running server's API (which audits every read).

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::ServerArgs;
use crate::admin::Api;

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Print the decrypted evidence of an event (auditor or admin token). The read is audited.
    Show {
        event: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Put a legal hold on an agent's or an event's evidence: retention never shreds it.
    Hold {
        #[arg(long, conflicts_with = "event", required_unless_present = "event")]
        agent: Option<String>,
        #[arg(long)]
        event: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the legal holds.
    Holds(ServerArgs),
    /// Lift a legal hold.
    Release {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Shred expired evidence outside legal holds now (admin token).
    Run(ServerArgs),
}

/// `warden explain EVENT`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    pub event: String,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn evidence(cmd: EvidenceCommand) -> anyhow::Result<()> {
    match cmd {
        EvidenceCommand::Show {
            event,
            json,
            server,
        } => {
            let body = Api::from_args(&server)?
                .get(&format!("/v1/evidence/{event}"))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            println!(
                "evidence of event {event} (this read is recorded as event {})",
                body["audit_event_id"].as_str().unwrap_or("?")
            );
            let records = body["records"].as_array().cloned().unwrap_or_default();
            if records.is_empty() {
                println!("  the vault holds nothing for this event");
            }
            for r in records {
                let expires = r["expires_at"].as_str().unwrap_or("never");
                let held = if r["held"].as_bool() == Some(true) {
                    ", on legal hold"
                } else {
                    ""
                };
                println!(
                    "\n{} (class {}, kept since {}, expires {expires}{held}):",
                    r["artifact"].as_str().unwrap_or("?"),
                    r["class"].as_str().unwrap_or("?"),
                    r["created_at"].as_str().unwrap_or("?"),
                );
                match r["payload"]["state"].as_str() {
                    Some("present") => println!(
                        "{}",
                        serde_json::to_string_pretty(&r["payload"]["value"]).unwrap_or_default()
                    ),
                    Some("shredded") => println!(
                        "  erased at {}",
                        r["payload"]["value"]["at"].as_str().unwrap_or("?")
                    ),
                    _ => println!("  not kept"),
                }
            }
        }
        EvidenceCommand::Hold {
            agent,
            event,
            reason,
            server,
        } => {
            let body = Api::from_args(&server)?
                .post_json(
                    "/v1/evidence/holds",
                    &json!({ "agent": agent, "event": event, "reason": reason }),
                )
                .await?;
            let hold = &body["hold"];
            println!(
                "legal hold {} on {}",
                hold["id"].as_str().unwrap_or("?"),
                hold["scope"].as_str().unwrap_or("?")
            );
        }
        EvidenceCommand::Holds(server) => {
            let body = Api::from_args(&server)?.get("/v1/evidence/holds").await?;
            let holds = body["holds"].as_array().cloned().unwrap_or_default();
            if holds.is_empty() {
                println!("no legal hold");
            }
            for h in holds {
                println!(
                    "{:<38} {:<40} by {} at {}: {}",
                    h["id"].as_str().unwrap_or(""),
                    h["scope"].as_str().unwrap_or(""),
                    h["operator"].as_str().unwrap_or(""),
                    h["created_at"].as_str().unwrap_or(""),
                    h["reason"].as_str().unwrap_or(""),
                );
            }
        }
        EvidenceCommand::Release { id, server } => {
            Api::from_args(&server)?
                .post(&format!("/v1/evidence/holds/{id}/release"))
                .await?;
            println!("released legal hold {id}");
        }
    }
    Ok(())
}

pub async fn retention(cmd: RetentionCommand) -> anyhow::Result<()> {
    match cmd {
        RetentionCommand::Run(server) => {
            let body = Api::from_args(&server)?.post("/v1/retention/run").await?;
            println!(
                "shredded {} evidence record(s); {} expired record(s) kept by legal holds",
                body["shredded"], body["held"]
            );
        }
    }
    Ok(())
}

pub async fn explain(args: ExplainArgs) -> anyhow::Result<()> {
    let body = Api::from_args(&args.server)?
        .get(&format!("/v1/events/{}", args.event))
        .await?;
    let x = &body["explanation"];
    if x.is_null() {
        bail!("the server sent no explanation");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(x)?);
        return Ok(());
    }
    print!("{}", render(x));
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn payload_text(p: &Value, digest: &Value) -> String {
    match p["state"].as_str() {
        Some("shown") => {
            let redacted = p["redacted"].as_u64().unwrap_or(0);
            let note = if redacted > 0 {
                format!(" ({redacted} value(s) redacted above your clearance)")
            } else {
                String::new()
            };
            format!(
                "class {}{note}\n      {}",
                s(&p["class"]),
                serde_json::to_string(&p["value"]).unwrap_or_default()
            )
        }
        Some("erased") => format!("erased at {}", s(&p["at"])),
        Some("digest_only") => format!("digest {} (your role sees digests only)", s(digest)),
        Some("unreadable") => format!("unreadable: {}", s(&p["reason"])),
        _ => "not kept".into(),
    }
}

/// The human-readable explanation.
fn render(x: &Value) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "event {} ({}, via {})",
        s(&x["event_id"]),
        s(&x["kind"]),
        s(&x["channel"])
    );
    let _ = writeln!(
        o,
        "  when:     {} .. {}",
        s(&x["started_at"]),
        s(&x["finished_at"])
    );
    let w = &x["who"];
    let _ = writeln!(
        o,
        "who\n  agent:    {} (owner {}{})",
        s(&w["agent"]),
        s(&w["owner"]),
        w["purpose"]
            .as_str()
            .map(|p| format!(", purpose: {p}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "  user:     {}\n  task:     {}",
        s(&w["user"]),
        s(&w["task"])
    );
    if !w["operator"].is_null() {
        let _ = writeln!(o, "  operator: {}", s(&w["operator"]));
    }
    let what = &x["what"];
    let _ = writeln!(
        o,
        "what\n  action:   {} (mode {})",
        s(&what["action"]),
        s(&what["mode"])
    );
    let _ = writeln!(
        o,
        "  arguments: {}",
        payload_text(&what["arguments"], &what["args_digest"])
    );
    let _ = writeln!(
        o,
        "  result:    {}",
        payload_text(&what["result"], &what["result_digest"])
    );
    let p = &x["policy"];
    let _ = writeln!(
        o,
        "policy\n  bundle:   {}\n  verdict:  {}",
        s(&p["bundle_hash"]),
        s(&p["verdict"])
    );
    for d in p["deciding"].as_array().into_iter().flatten() {
        match d["text"].as_str() {
            Some(text) => {
                let _ = writeln!(
                    o,
                    "  deciding policy {} ({}:{}):",
                    s(&d["id"]),
                    s(&d["file"]),
                    d["line"]
                );
                for line in text.lines() {
                    let _ = writeln!(o, "    | {line}");
                }
            }
            None => {
                let _ = writeln!(
                    o,
                    "  deciding rule {} (built in, or its bundle was not kept)",
                    s(&d["id"])
                );
            }
        }
    }
    let approvals = x["approvals"].as_array().cloned().unwrap_or_default();
    if !approvals.is_empty() || x["approvers"].as_array().is_some_and(|a| !a.is_empty()) {
        let _ = writeln!(o, "approvals");
        for a in approvals {
            let _ = writeln!(
                o,
                "  {} {} ({}), needs {}x{}, requested {}",
                s(&a["kind"]),
                s(&a["approval_id"]),
                s(&a["status"]),
                a["required_count"],
                a["required_role"].as_str().unwrap_or("any"),
                s(&a["requested_at"])
            );
            for v in a["votes"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "    {} by {} at {}{}",
                    if v["approve"].as_bool() == Some(true) {
                        "approved"
                    } else {
                        "denied"
                    },
                    s(&v["approver"]),
                    s(&v["at"]),
                    v["reason"]
                        .as_str()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
        }
        let approvers: Vec<&str> = x["approvers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !approvers.is_empty() {
            let _ = writeln!(o, "  approved by: {}", approvers.join(", "));
        }
    }
    let _ = writeln!(
        o,
        "outcome\n  {}{}",
        s(&x["outcome"]),
        x["reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let l = &x["linked"];
    if !l["parent"].is_null() || l["children"].as_array().is_some_and(|c| !c.is_empty()) {
        let _ = writeln!(o, "linked events");
        if !l["parent"].is_null() {
            let e = &l["parent"];
            let _ = writeln!(
                o,
                "  parent:   {} {} ({})",
                s(&e["event_id"]),
                s(&e["action"]),
                s(&e["outcome"])
            );
        }
        for e in l["children"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "  follow-up: {} {} ({}){}",
                s(&e["event_id"]),
                s(&e["action"]),
                s(&e["outcome"]),
                e["operator"]
                    .as_str()
                    .map(|op| format!(" by {op}"))
                    .unwrap_or_default()
            );
        }
    }
    let pr = &x["proof"];
    match pr["state"].as_str() {
        Some("verified") => {
            let _ = writeln!(
                o,
                "proof\n  included at index {} of {} events; verified against the root {} of the latest checkpoint{}",
                pr["index"],
                pr["size"],
                s(&pr["root"]),
                if pr["signature_checked"].as_bool() == Some(true) {
                    " (signature checked)"
                } else {
                    ""
                }
            );
        }
        _ => {
            let _ = writeln!(o, "proof\n  unavailable: {}", s(&pr["reason"]));
        }
    }
    let r = &x["reader"];
    let _ = writeln!(
        o,
        "read by {} ({}), clearance {}",
        s(&r["name"]),
        s(&r["role"]),
        r["clearance"].as_str().unwrap_or("none: digests only")
    );
    if let Some(read) = r["read_event_id"].as_str() {
        let _ = writeln!(o, "this read of the evidence is recorded as event {read}");
    }
    o
}
