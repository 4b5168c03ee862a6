//! The evidence vault's master key: from `$WARDEN_VAULT_KEY` (base64 of 32 bytes), else the key
//! file (`[vault] key_file`, default `<data_dir>/vault.key`), created with mode 0600 on first
//! start. The key is never written to the database or to logs; only its short public id is.
//!
//! Starting with a key that cannot open the evidence already stored is an error, named with the
//! key ids involved, rather than a vault that silently cannot be read.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use warden_core::Config;
use warden_core::store::{EvidenceStore, StoreError};
use warden_vault::{MasterKey, VaultError};

/// The environment variable that, when set, holds the master key (base64).
pub const KEY_ENV: &str = "WARDEN_VAULT_KEY";
/// The default key file, in the data dir.
pub const KEY_FILE: &str = "vault.key";

#[derive(Debug, thiserror::Error)]
pub enum VaultKeyError {
    #[error("vault master key from ${KEY_ENV}: {0}")]
    Env(VaultError),
    #[error("vault master key file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "the vault master key file {path} does not exist, but the evidence vault holds records \
         sealed with key {stored}: restore that key file (or set ${KEY_ENV}) instead of starting \
         with a new key"
    )]
    Missing { path: PathBuf, stored: String },
    #[error(
        "the vault master key ({source_name}, key id {configured}) cannot open the evidence \
         stored with key(s) {stored}: set ${KEY_ENV} or [vault] key_file to the key it was \
         written with"
    )]
    Wrong {
        source_name: String,
        configured: String,
        stored: String,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Where the key file is: `[vault] key_file` or `<data_dir>/vault.key`.
pub fn key_path(config: &Config) -> PathBuf {
    match &config.vault.key_file {
        Some(file) => config.resolve_path(file),
        None => config.resolve_path(&config.server.data_dir).join(KEY_FILE),
    }
}

/// Load (or on first start, create) the master key, and check it opens the stored evidence.
pub async fn load_master_key(
    config: &Config,
    store: &dyn EvidenceStore,
) -> Result<MasterKey, VaultKeyError> {
    let in_use = store.evidence_key_ids().await?;
    let path = key_path(config);
    let file_error = |message: String| VaultKeyError::File {
        path: path.clone(),
        message,
    };
    let (key, source_name) = match std::env::var(KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => (
            MasterKey::from_text(&text).map_err(VaultKeyError::Env)?,
            format!("${KEY_ENV}"),
        ),
        _ => match fs::read_to_string(&path) {
            Ok(text) => (
                MasterKey::from_text(&text).map_err(|e| file_error(e.to_string()))?,
                path.display().to_string(),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !in_use.is_empty() {
                    return Err(VaultKeyError::Missing {
                        path,
                        stored: in_use.join(", "),
                    });
                }
                let key = MasterKey::generate();
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir).map_err(|e| file_error(e.to_string()))?;
                }
                write_new_private(&path, format!("{}\n", key.to_text()).as_bytes())
                    .map_err(|e| file_error(e.to_string()))?;
                tracing::info!(path = %path.display(), key_id = %key.id(), "created the vault master key");
                (key, path.display().to_string())
            }
            Err(e) => return Err(file_error(e.to_string())),
        },
    };
    if !in_use.is_empty() && !in_use.contains(&key.id()) {
        return Err(VaultKeyError::Wrong {
            source_name,
            configured: key.id(),
            stored: in_use.join(", "),
        });
    }
    Ok(key)
}

/// Create `path` (it must not exist) with mode 0600 and write `bytes`.
fn write_new_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Run retention every `interval` until `stop`: shred expired evidence outside legal holds.
/// A failed run is logged and retried at the next tick (nothing is shredded by a failed run).
pub fn spawn_retention(
    gateway: std::sync::Arc<warden_gateway::Gateway>,
    interval: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match gateway.run_retention(None).await {
                Ok(r) if r.shredded > 0 => {
                    tracing::info!(
                        shredded = r.shredded,
                        held = r.held,
                        "retention shredded expired evidence"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "retention run failed; retrying at the next interval")
                }
            }
        }
    })
}
