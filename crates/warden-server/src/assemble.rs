//! Wiring: from a config file to a running gateway (store, upstreams, catalog, policies).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use warden_core::catalog::Catalog;
use warden_core::store::{OperatorRole, Store};
use warden_core::{Config, Diagnostic, Diagnostics};
use warden_gateway::{Gateway, GatewayParts};
use warden_policy::PolicyBundle;
use warden_store::WardenStore;
use warden_upstream::UpstreamPool;

use crate::datadir::{DataDir, DataDirError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Config or policy problems, each with file and line.
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("store: {0}")]
    Store(#[from] warden_core::store::StoreError),
    #[error("audit log: {0}")]
    Audit(#[from] crate::checkpointer::CheckpointerError),
    #[error(transparent)]
    VaultKey(#[from] crate::vault::VaultKeyError),
    #[error("{0}")]
    Other(String),
}

impl From<Diagnostics> for StartError {
    fn from(d: Diagnostics) -> Self {
        Self::Invalid(d)
    }
}

/// How long startup waits for each upstream to list its tools.
pub const DISCOVERY_WAIT: Duration = Duration::from_secs(20);

/// Ask every upstream for its tools and build the catalog. An upstream that cannot be reached
/// is an error at its place in the config: policies naming its tools could not be checked.
pub async fn discover_catalog(
    config: &Config,
    pool: &UpstreamPool,
    wait: Duration,
) -> Result<Catalog, Diagnostics> {
    let mut catalog = Catalog::new();
    let mut diags = Diagnostics::default();
    let lookups = config
        .upstreams
        .iter()
        .map(|u| async move { (u, pool.discover(&u.name, wait).await) });
    for (upstream, result) in futures::future::join_all(lookups).await {
        match result {
            Ok(tools) => catalog.add_upstream(config, &upstream.name, tools),
            Err(e) => diags.push(
                config
                    .spans
                    .diagnostic(&config.path, &format!("upstreams.{}", upstream.name), format!("upstream `{}` is unavailable: {e}", upstream.name))
                    .with_help("Warden needs each upstream's tool list to type-check policies; fix the command/url or start the server"),
            ),
        }
    }
    check_configured_tools_exist(config, &catalog, &mut diags);
    diags.into_result(catalog)
}

/// A `[[tools]]` entry or undo recipe naming a tool its upstream does not offer is an error.
fn check_configured_tools_exist(config: &Config, catalog: &Catalog, diags: &mut Diagnostics) {
    for tool in &config.tools {
        if catalog.get(&tool.name).is_none() {
            diags.push(config.spans.diagnostic(
                &config.path,
                &format!("tools.{}", tool.name),
                format!(
                    "upstream `{}` has no tool `{}`",
                    tool.name.upstream(),
                    tool.name.tool()
                ),
            ));
        }
        let undo_tools = match &tool.undo {
            Some(warden_core::config::UndoRecipe::Compensate { tool, .. }) => vec![tool],
            Some(warden_core::config::UndoRecipe::Capture { capture, tool }) => vec![capture, tool],
            _ => vec![],
        };
        for t in undo_tools {
            if catalog.get(t).is_none() {
                diags.push(config.spans.diagnostic(
                    &config.path,
                    &format!("undo.{t}"),
                    format!(
                        "undo recipe names `{t}`, which upstream `{}` does not offer",
                        t.upstream()
                    ),
                ));
            }
        }
    }
}

/// Load and validate the policies against the catalog.
pub fn load_bundle(config: &Config, catalog: &Catalog) -> Result<PolicyBundle, Diagnostics> {
    let dir = config.resolve_path(&config.policy.dir);
    let sources = warden_policy::load_policy_dir(&dir)?;
    PolicyBundle::build(config, catalog, &sources)
}

/// Load and validate the shadow (candidate) bundle of `[policy] shadow`, if there is one,
/// against the same catalog: it must pass everything the active one passes.
pub fn load_shadow_bundle(
    config: &Config,
    catalog: &Catalog,
) -> Result<Option<PolicyBundle>, Diagnostics> {
    let Some(dir) = &config.policy.shadow else {
        return Ok(None);
    };
    let sources = warden_policy::load_policy_dir(&config.resolve_path(dir))?;
    PolicyBundle::build(config, catalog, &sources).map(Some)
}

/// Everything `warden check` validates: config, upstream tool lists, policies.
pub async fn check(config_path: &Path) -> Result<(Config, Catalog, PolicyBundle), Diagnostics> {
    let config = Config::load(config_path)?;
    let pool = UpstreamPool::start(
        &config.upstreams,
        &config.base_dir,
        config.server.call_timeout,
    );
    let catalog = discover_catalog(&config, &pool, DISCOVERY_WAIT).await;
    pool.shutdown().await;
    let catalog = catalog?;
    let bundle = load_bundle(&config, &catalog)?;
    load_shadow_bundle(&config, &catalog)?;
    Ok((config, catalog, bundle))
}

/// A gateway ready to serve, with what the operator needs to know about it.
pub struct Assembled {
    pub gateway: Arc<Gateway>,
    pub store: Arc<dyn WardenStore>,
    pub data_dir: DataDir,
    /// Set when this start created the bootstrap admin token.
    pub bootstrap_token: Option<std::path::PathBuf>,
    /// Signs the audit log's checkpoints.
    pub checkpointer: Arc<crate::checkpointer::Checkpointer>,
}

/// Build the whole gateway from a validated config.
pub async fn assemble(config: Config) -> Result<Assembled, StartError> {
    let config = Arc::new(config);
    let data_dir = DataDir::open(&config.resolve_path(&config.server.data_dir))?;
    let digest_key = data_dir.digest_key()?;
    let checkpoint_key = crate::checkpointer::load_signing_key(&config)?;
    let store = warden_store::open_warden_store(
        &config.database_url(),
        warden_store::StoreOptions {
            batch_max: config.server.audit_batch_max,
            ..Default::default()
        },
    )
    .await?;
    let vault_key = crate::vault::load_master_key(&config, store.as_ref()).await?;
    let checkpointer = Arc::new(
        crate::checkpointer::Checkpointer::start(
            store.clone(),
            checkpoint_key,
            config.audit.origin.clone(),
            config.audit.checkpoint_interval,
        )
        .await?,
    );
    let upstreams = UpstreamPool::start(
        &config.upstreams,
        &config.base_dir,
        config.server.call_timeout,
    );
    let catalog = discover_catalog(&config, &upstreams, DISCOVERY_WAIT).await?;
    let bundle = load_bundle(&config, &catalog)?;
    let shadow = load_shadow_bundle(&config, &catalog)?;
    let gateway = Arc::new(Gateway::new(GatewayParts {
        config: config.clone(),
        bundle,
        catalog,
        upstreams,
        store: store.clone() as Arc<dyn Store>,
        digest_key,
        vault_key,
    }));
    if let Some(shadow) = shadow {
        tracing::info!(hash = %shadow.hash(), "shadow policy bundle loaded; it decides nothing");
        gateway.set_shadow_bundle(shadow);
    }
    crate::explain::remember_bundle(&gateway).await?;
    // Tool pinning: withhold tools whose definitions changed since they were pinned. If the pins
    // cannot be checked, do not serve.
    gateway
        .check_pins()
        .await
        .map_err(|e| StartError::Other(format!("cannot check the tool pins: {e}")))?;
    crate::pin_watch::spawn(&gateway);
    let bootstrap_token =
        bootstrap_admin(&gateway, &(store.clone() as Arc<dyn Store>), &data_dir).await?;
    Ok(Assembled {
        gateway,
        store,
        data_dir,
        bootstrap_token,
        checkpointer,
    })
}

/// On a store with no operators, create an admin token and write it to the data dir.
async fn bootstrap_admin(
    gateway: &Gateway,
    store: &Arc<dyn Store>,
    dir: &DataDir,
) -> Result<Option<std::path::PathBuf>, StartError> {
    if !store.operator_tokens().await?.is_empty() {
        return Ok(None);
    }
    let (_, secret) = gateway
        .create_operator_token("bootstrap-admin", OperatorRole::Admin, "warden")
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
    Ok(Some(dir.write_admin_token(&secret.secret)?))
}

impl From<Diagnostic> for StartError {
    fn from(d: Diagnostic) -> Self {
        Self::Invalid(d.into())
    }
}

impl Assembled {
    /// Stop upstreams, sign a last audit checkpoint and flush the audit writer: called once
    /// the server has stopped serving.
    pub async fn shutdown(&self) {
        self.gateway.shared().upstreams.close().await;
        self.checkpointer.shutdown().await;
        self.store.close().await;
    }
}
