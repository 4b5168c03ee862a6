//! `serve`, `check`, `schema`, `init` and `sample-upstream`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use warden_core::config::Transport;
use warden_core::{Config, Diagnostics};
use warden_server::{AppState, StartError};

/// Exit code for invalid config or policies.
const EXIT_INVALID: u8 = 2;

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,warden=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `warden` as an upstream's command means this very binary, so configs work wherever it is
/// installed (and in a build tree) without naming a path.
pub fn resolve_self_command(config: &mut Config) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    for upstream in &mut config.upstreams {
        if let Transport::Stdio { command, .. } = &mut upstream.transport
            && command.first().map(String::as_str) == Some("warden")
        {
            command[0] = exe.display().to_string();
        }
    }
}

fn print_diagnostics(d: &Diagnostics) -> ExitCode {
    eprintln!("{d}");
    eprintln!(
        "{} error{} found",
        d.len(),
        if d.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(EXIT_INVALID)
}

/// Load, resolve `warden` commands, and run the full check.
type Checked = (
    Config,
    warden_core::Catalog,
    warden_policy::PolicyBundle,
    Option<warden_policy::PolicyBundle>,
);

async fn checked(path: &Path) -> Result<Checked, Diagnostics> {
    let mut config = Config::load(path)?;
    resolve_self_command(&mut config);
    let pool = warden_upstream::UpstreamPool::start(
        &config.upstreams,
        &config.base_dir,
        config.server.call_timeout,
    );
    let catalog = warden_server::assemble::discover_catalog(
        &config,
        &pool,
        warden_server::assemble::DISCOVERY_WAIT,
    )
    .await;
    pool.shutdown().await;
    let catalog = catalog?;
    let bundle = warden_server::assemble::load_bundle(&config, &catalog)?;
    // The shadow bundle (`[policy] shadow`) must pass everything the active one does.
    let shadow = warden_server::assemble::load_shadow_bundle(&config, &catalog)?;
    Ok((config, catalog, bundle, shadow))
}

/// The validated policy bundle of a config (for `policy test`).
pub async fn checked_bundle(path: &Path) -> Result<warden_policy::PolicyBundle, Diagnostics> {
    checked(path).await.map(|(_, _, bundle, _)| bundle)
}

pub async fn check(path: &Path) -> ExitCode {
    init_logging();
    match checked(path).await {
        Ok((config, catalog, bundle, shadow)) => {
            for w in bundle.warnings() {
                eprintln!("{w}");
            }
            if let Some(shadow) = &shadow {
                for w in shadow.warnings() {
                    eprintln!("{w}");
                }
                println!(
                    "ok: shadow bundle {} — {} policies (bundle {}); it decides nothing",
                    config
                        .policy
                        .shadow
                        .as_deref()
                        .map(Path::display)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    shadow.policies().count(),
                    &shadow.hash()[..12.min(shadow.hash().len())]
                );
            }
            println!(
                "ok: {} — {} upstreams, {} tools, {} agents, {} policies (bundle {})",
                config.path.display(),
                config.upstreams.len(),
                catalog.len(),
                config.agents.len(),
                bundle.policies().count(),
                &bundle.hash()[..12.min(bundle.hash().len())]
            );
            ExitCode::SUCCESS
        }
        Err(d) => print_diagnostics(&d),
    }
}

pub async fn schema(path: &Path) -> ExitCode {
    init_logging();
    let mut config = match Config::load(path) {
        Ok(c) => c,
        Err(d) => return print_diagnostics(&d),
    };
    resolve_self_command(&mut config);
    let pool = warden_upstream::UpstreamPool::start(
        &config.upstreams,
        &config.base_dir,
        config.server.call_timeout,
    );
    let catalog = warden_server::assemble::discover_catalog(
        &config,
        &pool,
        warden_server::assemble::DISCOVERY_WAIT,
    )
    .await;
    pool.shutdown().await;
    let catalog = match catalog {
        Ok(c) => c,
        Err(d) => return print_diagnostics(&d),
    };
    match warden_policy::generate_schema(&config, &catalog) {
        Ok(schema) => {
            println!("{}", schema.text());
            ExitCode::SUCCESS
        }
        Err(d) => print_diagnostics(&d),
    }
}

pub async fn serve(path: &Path) -> anyhow::Result<()> {
    init_logging();
    let mut config = Config::load(path).map_err(|d| anyhow::anyhow!("invalid config:\n{d}"))?;
    resolve_self_command(&mut config);
    let listen = config.server.listen.clone();
    let assembled = match warden_server::assemble(config).await {
        Ok(a) => a,
        Err(StartError::Invalid(d)) => anyhow::bail!("invalid config or policies:\n{d}"),
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = &assembled.bootstrap_token {
        eprintln!(
            "bootstrap admin token written to {} (mode 0600); the CLI uses it by default",
            path.display()
        );
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "warden is serving: MCP at /mcp, REST at /v1");
    eprintln!("warden listening on http://{addr} (MCP at /mcp)");
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        on_signal.cancel();
    });
    let retention = warden_server::vault::spawn_retention(
        assembled.gateway.clone(),
        assembled.gateway.config().retention.interval,
        shutdown.clone(),
    );
    let state = AppState {
        gateway: assembled.gateway.clone(),
    };
    let served = warden_server::serve(listener, state, shutdown).await;
    let _ = retention.await;
    assembled.shutdown().await;
    served?;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// [`sample_upstream`], with tool descriptions replaced (`--describe TOOL=TEXT`).
pub async fn sample_upstream_described(
    kind: warden_samples::SampleKind,
    http: Option<String>,
    describe: Vec<String>,
) -> anyhow::Result<()> {
    if describe.is_empty() {
        return sample_upstream(kind, http).await;
    }
    if http.is_some() {
        anyhow::bail!("--describe works only over stdio");
    }
    let descriptions = describe
        .iter()
        .map(|d| warden_samples::parse_description(d))
        .collect::<anyhow::Result<_>>()?;
    warden_samples::serve_stdio_with(kind, descriptions).await
}

pub async fn sample_upstream(
    kind: warden_samples::SampleKind,
    http: Option<String>,
) -> anyhow::Result<()> {
    match http {
        None => warden_samples::serve_stdio(kind).await,
        Some(addr) => {
            init_logging();
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            eprintln!(
                "sample upstream {kind} at http://{}/mcp",
                listener.local_addr()?
            );
            let shutdown = CancellationToken::new();
            let on_signal = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                on_signal.cancel();
            });
            warden_samples::serve_http(kind, listener, shutdown).await
        }
    }
}

/// The quickstart, embedded so `warden init` and `warden demo` need no files.
pub const QUICKSTART: &[(&str, &str)] = &[
    (
        "warden.toml",
        include_str!("../../../examples/quickstart/warden.toml"),
    ),
    (
        "policies/crm.cedar",
        include_str!("../../../examples/quickstart/policies/crm.cedar"),
    ),
    (
        "policies/payments.cedar",
        include_str!("../../../examples/quickstart/policies/payments.cedar"),
    ),
    (
        "policies/email.cedar",
        include_str!("../../../examples/quickstart/policies/email.cedar"),
    ),
    (
        "policies/tests/quickstart.toml",
        include_str!("../../../examples/quickstart/policies/tests/quickstart.toml"),
    ),
];

/// Write the quickstart files into `dir`, refusing to overwrite anything.
pub fn write_quickstart(dir: &Path) -> anyhow::Result<()> {
    for (name, _) in QUICKSTART {
        let path = dir.join(name);
        if path.exists() {
            anyhow::bail!("{} already exists; not overwriting", path.display());
        }
    }
    for (name, text) in QUICKSTART {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub fn init(dir: &Path) -> anyhow::Result<()> {
    write_quickstart(dir)?;
    println!(
        "created {}/warden.toml and policies/ — next: `warden check -c {0}/warden.toml`, then `warden serve -c {0}/warden.toml`",
        dir.display()
    );
    Ok(())
}
