//! Operator commands. State changes go through the running server's API: it is the single
//! writer of the audit log, so every change is recorded there.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;
use warden_core::Config;

use crate::ServerArgs;

#[derive(Subcommand)]
pub enum AgentsCommand {
    /// List configured agents and their keys.
    List(ServerArgs),
    /// Issue the first API key of a configured agent (shown once).
    Create {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Issue a new key and revoke the agent's other keys.
    Rotate {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke every key of the agent.
    Revoke {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Deny every new call of the agent and cancel its pending approvals.
    Pause {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Lift the agent's pause.
    Resume {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// The queue (pending requests by default).
    List {
        /// pending, approved, denied, expired, cancelled, executed, or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Approve a request (your operator token's name must be a user holding the required role).
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Deny a request.
    Deny {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator token (shown once). NAME is the person; for approvers, a configured user.
    Create {
        name: String,
        /// admin, approver, auditor or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
pub enum UpstreamsCommand {
    /// Deny every new call to the upstream's tools and cancel their pending approvals.
    Pause {
        name: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Lift the upstream's pause.
    Resume {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `warden freeze` / `warden unfreeze`: the global kill switch.
#[derive(clap::Args)]
pub struct FreezeArgs {
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Show the most recent events, newest last.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Print the events as JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Run policy test cases (expected allow / deny) against the config's policies.
    Test {
        file: PathBuf,
        #[command(flatten)]
        config: crate::ConfigArg,
    },
}

/// A client for the server's operator API.
pub(crate) struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub(crate) fn from_args(args: &ServerArgs) -> anyhow::Result<Self> {
        let config = Config::load(&args.config.config).ok();
        let base = match (&args.url, &config) {
            (Some(u), _) => u.trim_end_matches('/').to_owned(),
            (None, Some(c)) => format!("http://{}", c.server.listen),
            (None, None) => bail!(
                "no server URL: pass --url or -c with a readable config ({})",
                args.config.config.display()
            ),
        };
        let token = match (&args.token, &config) {
            (Some(t), _) => t.clone(),
            (None, Some(c)) => {
                let path = c
                    .resolve_path(&c.server.data_dir)
                    .join(warden_server::datadir::ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no --token and cannot read the admin token at {}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
            (None, None) => bail!("no operator token: pass --token or set WARDEN_TOKEN"),
        };
        Ok(Self {
            base,
            token,
            http: reqwest::Client::new(),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no details");
            bail!("the server answered {status}: {message}");
        }
        Ok(body)
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub(crate) async fn post(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)))
            .await
    }

    async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }
}

fn print_switches(body: &Value) {
    let paused = body["paused"].as_array().cloned().unwrap_or_default();
    if paused.is_empty() {
        println!("no kill switch is on");
    }
    for s in paused {
        println!(
            "{:<28} paused by {} at {}{}",
            s["scope"].as_str().unwrap_or("?"),
            s["by"].as_str().unwrap_or("?"),
            s["at"].as_str().unwrap_or("?"),
            s["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
}

pub async fn upstreams(cmd: UpstreamsCommand) -> anyhow::Result<()> {
    let (name, action, reason, server) = match cmd {
        UpstreamsCommand::Pause {
            name,
            reason,
            server,
        } => (name, "pause", reason, server),
        UpstreamsCommand::Resume { name, server } => (name, "resume", None, server),
    };
    let path = format!("/v1/upstreams/{name}/{action}");
    let body = Api::from_args(&server)?
        .post_json(&path, &serde_json::json!({ "reason": reason }))
        .await?;
    print_switches(&body);
    Ok(())
}

pub async fn freeze(args: FreezeArgs, on: bool) -> anyhow::Result<()> {
    let path = if on { "/v1/freeze" } else { "/v1/unfreeze" };
    let body = Api::from_args(&args.server)?
        .post_json(path, &serde_json::json!({ "reason": args.reason }))
        .await?;
    print_switches(&body);
    Ok(())
}

pub async fn agents(cmd: AgentsCommand) -> anyhow::Result<()> {
    match cmd {
        AgentsCommand::List(server) => {
            let body = Api::from_args(&server)?.get("/v1/agents").await?;
            println!(
                "{:<16} {:<10} {:<13} {:<22} {:<28} KEYS",
                "AGENT", "MODE", "CLEARANCE", "ROLES", "OWNER"
            );
            for a in body["agents"].as_array().into_iter().flatten() {
                let keys = a["keys"]
                    .as_array()
                    .map(|k| k.iter().filter(|k| k["revoked_at"].is_null()).count())
                    .unwrap_or(0);
                let roles: Vec<&str> = a["roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{:<16} {:<10} {:<13} {:<22} {:<28} {keys} live",
                    a["id"].as_str().unwrap_or(""),
                    a["mode"].as_str().unwrap_or(""),
                    a["clearance"].as_str().unwrap_or(""),
                    roles.join(","),
                    a["owner"].as_str().unwrap_or(""),
                );
            }
        }
        AgentsCommand::Create { id, server } => print_key(
            Api::from_args(&server)?
                .post(&format!("/v1/agents/{id}/keys"))
                .await?,
        ),
        AgentsCommand::Rotate { id, server } => print_key(
            Api::from_args(&server)?
                .post(&format!("/v1/agents/{id}/rotate"))
                .await?,
        ),
        AgentsCommand::Pause { id, reason, server } => {
            let body = Api::from_args(&server)?
                .post_json(
                    &format!("/v1/agents/{id}/pause"),
                    &serde_json::json!({ "reason": reason }),
                )
                .await?;
            print_switches(&body);
        }
        AgentsCommand::Resume { id, server } => {
            let body = Api::from_args(&server)?
                .post_json(&format!("/v1/agents/{id}/resume"), &serde_json::json!({}))
                .await?;
            print_switches(&body);
        }
        AgentsCommand::Revoke { id, server } => {
            let body = Api::from_args(&server)?
                .post(&format!("/v1/agents/{id}/revoke"))
                .await?;
            println!("revoked {} key(s) of agent {id}", body["revoked"]);
        }
    }
    Ok(())
}

fn print_key(body: Value) {
    eprintln!(
        "new key {} for agent {} — shown once; Warden keeps only its hash:",
        body["key_id"].as_str().unwrap_or("?"),
        body["agent"].as_str().unwrap_or("?")
    );
    println!("{}", body["key"].as_str().unwrap_or(""));
}

pub async fn audit(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Tail {
            lines,
            json,
            server,
        } => {
            let body = Api::from_args(&server)?
                .get(&format!("/v1/events?limit={lines}"))
                .await?;
            let mut events: Vec<Value> = body["events"].as_array().cloned().unwrap_or_default();
            events.reverse();
            if !json {
                println!(
                    "{:<36} {:<20} {:<10} {:<14} {:<24} {:<10} POLICIES",
                    "EVENT", "TIME", "KIND", "AGENT", "ACTION", "OUTCOME"
                );
            }
            for e in events {
                if json {
                    println!("{e}");
                    continue;
                }
                let policies: Vec<&str> = e["policies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{:<36} {:<20} {:<10} {:<14} {:<24} {:<10} {}",
                    e["id"].as_str().unwrap_or(""),
                    e["started_at"]
                        .as_str()
                        .map(|t| t.get(..19).unwrap_or(t))
                        .unwrap_or(""),
                    e["kind"].as_str().unwrap_or(""),
                    e["agent"].as_str().unwrap_or("-"),
                    e["action"].as_str().unwrap_or("-"),
                    e["outcome"].as_str().unwrap_or(""),
                    policies.join(","),
                );
            }
        }
    }
    Ok(())
}

pub async fn policy(cmd: PolicyCommand) -> ExitCode {
    crate::serve::init_logging();
    match cmd {
        PolicyCommand::Test { file, config } => {
            let bundle = match crate::serve::checked_bundle(&config.config).await {
                Ok(b) => b,
                Err(d) => {
                    eprintln!("{d}");
                    return ExitCode::from(2);
                }
            };
            match warden_policy::run_policy_tests(&bundle, &file) {
                Ok(report) => {
                    print!("{report}");
                    if report.all_passed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(d) => {
                    eprintln!("{d}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

pub async fn approvals(cmd: ApprovalsCommand) -> anyhow::Result<()> {
    match cmd {
        ApprovalsCommand::List { status, server } => {
            let body = Api::from_args(&server)?
                .get(&format!("/v1/approvals?status={status}"))
                .await?;
            println!(
                "{:<32} {:<10} {:<14} {:<8} {:<22} {:<10} {:<21} ARGUMENTS",
                "ID", "STATUS", "AGENT", "USER", "TOOL", "NEEDS", "EXPIRES"
            );
            for a in body["approvals"].as_array().into_iter().flatten() {
                let needs = format!(
                    "{}x{}",
                    a["required_count"],
                    a["required_role"].as_str().unwrap_or("any")
                );
                println!(
                    "{:<32} {:<10} {:<14} {:<8} {:<22} {:<10} {:<21} {}",
                    a["id"].as_str().unwrap_or(""),
                    a["status"].as_str().unwrap_or(""),
                    a["agent"].as_str().unwrap_or(""),
                    a["user"].as_str().unwrap_or("-"),
                    a["tool"].as_str().unwrap_or(""),
                    needs,
                    a["expires_at"]
                        .as_str()
                        .map(|t| t.get(..19).unwrap_or(t))
                        .unwrap_or(""),
                    a["args"],
                );
            }
        }
        ApprovalsCommand::Approve { id, reason, server } => {
            vote(&server, &id, "approve", reason).await?
        }
        ApprovalsCommand::Deny { id, reason, server } => vote(&server, &id, "deny", reason).await?,
    }
    Ok(())
}

async fn vote(
    server: &ServerArgs,
    id: &str,
    action: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let body = Api::from_args(server)?
        .post_json(
            &format!("/v1/approvals/{id}/{action}"),
            &serde_json::json!({ "reason": reason }),
        )
        .await?;
    println!("{id}: {}", body["outcome"].as_str().unwrap_or("recorded"));
    Ok(())
}

pub async fn operators(cmd: OperatorsCommand) -> anyhow::Result<()> {
    match cmd {
        OperatorsCommand::Create { name, role, server } => {
            let body = Api::from_args(&server)?
                .post_json(
                    "/v1/operators",
                    &serde_json::json!({ "name": name, "role": role }),
                )
                .await?;
            eprintln!(
                "new {} token for {} — shown once; Warden keeps only its hash:",
                role, name
            );
            println!("{}", body["token"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}
