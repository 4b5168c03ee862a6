//! `warden`: the governance gateway for AI agents — one binary for serving, checking,
//! administering, demonstrating and benchmarking it.

mod admin;
mod audit;
mod bench;
mod connect;
mod demo;
mod evidence;
mod serve;
mod shadow_report;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Every call allocates and frees many small buffers (JSON-RPC, headers, events, digests); under
// load glibc's allocator took about a tenth of the gateway's CPU time (`warden bench` profile).
// With the `override` feature mimalloc also serves C's malloc, which SQLite uses: the audit
// writer's SQLite thread spent about a tenth of its time in glibc's malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "A governance gateway for AI agents' tool calls"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct ConfigArg {
    /// The config file.
    #[arg(
        short = 'c',
        long = "config",
        default_value = "warden.toml",
        env = "WARDEN_CONFIG"
    )]
    pub config: PathBuf,
}

/// How admin commands reach the running server.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The server's base URL (default: from the config's `listen`).
    #[arg(long, env = "WARDEN_URL")]
    pub url: Option<String>,
    /// An operator token (default: the bootstrap admin token in the data dir).
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Scaffold a config, example policies and a data dir.
    Init {
        /// Where to create them.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Validate config and policies; print each error with file and line; exit 2 on error.
    Check(ConfigArg),
    /// Print the Cedar schema generated from the config and the upstreams' tools.
    Schema(ConfigArg),
    /// Run the gateway, its API and metrics.
    Serve(ConfigArg),
    /// A self-contained walkthrough: gateway, sample upstreams and a scripted agent over MCP.
    Demo,
    /// Bridge stdio MCP to a Warden gateway, for clients that only speak stdio.
    Connect {
        /// The gateway's MCP endpoint, e.g. http://127.0.0.1:8700/mcp.
        #[arg(long)]
        url: String,
        /// The agent key or task token.
        #[arg(long, env = "WARDEN_AGENT_KEY", hide_env_values = true)]
        key: String,
    },
    /// Serve a built-in sample MCP server (crm, payments, email, echo, faulty) over stdio.
    SampleUpstream {
        kind: warden_samples::SampleKind,
        /// Serve over Streamable HTTP on this address instead of stdio.
        #[arg(long)]
        http: Option<String>,
        /// Replace a tool's description, as TOOL=TEXT (repeatable; stdio only): plays an
        /// upstream that changes a tool's definition, for tool pinning.
        #[arg(long = "describe", value_name = "TOOL=TEXT")]
        describe: Vec<String>,
        /// Read the replacements from FILE instead, one TOOL=TEXT per line (stdio only).
        #[arg(long, value_name = "FILE", conflicts_with = "describe")]
        describe_from: Option<std::path::PathBuf>,
        /// Watch the --describe-from file, and announce each change to the client with
        /// `notifications/tools/list_changed`.
        #[arg(long, requires = "describe_from")]
        announce_changes: bool,
    },
    /// Agent registry and credentials.
    #[command(subcommand)]
    Agents(admin::AgentsCommand),
    /// The approval queue.
    #[command(subcommand)]
    Approvals(admin::ApprovalsCommand),
    /// Operator tokens (admin, approver, auditor, viewer).
    #[command(subcommand)]
    Operators(admin::OperatorsCommand),
    /// Pause and resume upstreams (kill switch).
    #[command(subcommand)]
    Upstreams(admin::UpstreamsCommand),
    /// Deny every new call, everywhere, until `warden unfreeze`.
    Freeze(admin::FreezeArgs),
    /// Lift the global freeze.
    Unfreeze(admin::FreezeArgs),
    /// Undo an event: run its tool's compensation through the pipeline, as its agent (once).
    Undo(admin::UndoArgs),
    /// The audit log: tail, and the tamper-evident log's verify, export, checkpoint, prove.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Policy tools.
    #[command(subcommand)]
    Policy(admin::PolicyCommand),
    /// The evidence vault: show an event's raw payloads (audited), legal holds.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Evidence retention: shred what has expired.
    #[command(subcommand)]
    Retention(evidence::RetentionCommand),
    /// Reconstruct one event's decision: who, what, policies, approvals, outcome, proof.
    Explain(evidence::ExplainArgs),
    /// Tool pinning: pinned tool definitions, changes waiting for approval.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// Measure the gateway's overhead against the direct upstream.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::SampleUpstream {
            kind,
            http,
            describe,
            describe_from,
            announce_changes,
        } => match describe_from {
            Some(file) if http.is_none() => {
                warden_samples::serve_stdio_from_file(kind, file, announce_changes).await
            }
            Some(_) => Err(anyhow::anyhow!("--describe-from works only over stdio")),
            None => serve::sample_upstream_described(kind, http, describe).await,
        },
        Command::Init { dir } => serve::init(&dir),
        Command::Check(c) => return serve::check(&c.config).await,
        Command::Schema(c) => return serve::schema(&c.config).await,
        Command::Serve(c) => serve::serve(&c.config).await,
        Command::Demo => demo::run().await,
        Command::Connect { url, key } => connect::run(&url, &key).await,
        Command::Agents(cmd) => admin::agents(cmd).await,
        Command::Upstreams(cmd) => admin::upstreams(cmd).await,
        Command::Approvals(cmd) => admin::approvals(cmd).await,
        Command::Operators(cmd) => admin::operators(cmd).await,
        Command::Freeze(args) => admin::freeze(args, true).await,
        Command::Unfreeze(args) => admin::freeze(args, false).await,
        Command::Undo(args) => admin::undo(args).await,
        Command::Audit(cmd) => return audit::run(cmd).await,
        Command::Policy(cmd) => return admin::policy(cmd).await,
        Command::Tools(cmd) => tools::run(cmd).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Evidence(cmd) => evidence::evidence(cmd).await,
        Command::Retention(cmd) => evidence::retention(cmd).await,
        Command::Explain(args) => evidence::explain(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
