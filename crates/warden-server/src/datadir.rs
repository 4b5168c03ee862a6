//! The data directory: local secrets Warden creates for itself on first start.
//!
//! Files here are created with mode 0600 inside a 0700 directory; their values never go to logs.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot use data dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds {len} bytes; expected a 32-byte key")]
    BadKey { path: PathBuf, len: usize },
}

pub struct DataDir {
    path: PathBuf,
}

/// The file the bootstrap admin token is written to.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
const DIGEST_KEY_FILE: &str = "digest.key";

impl DataDir {
    pub fn open(path: &Path) -> Result<Self, DataDirError> {
        fs::create_dir_all(path).map_err(|source| DataDirError::Io {
            path: path.to_owned(),
            source,
        })?;
        restrict(path, 0o700)?;
        Ok(Self {
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.path.join(ADMIN_TOKEN_FILE)
    }

    /// The key for audit digests, created on first use.
    pub fn digest_key(&self) -> Result<[u8; 32], DataDirError> {
        let path = self.path.join(DIGEST_KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| DataDirError::BadKey {
                path: path.clone(),
                len: bytes.len(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                write_private(&path, &key)?;
                Ok(key)
            }
            Err(source) => Err(DataDirError::Io { path, source }),
        }
    }

    /// Write the bootstrap admin token (mode 0600).
    pub fn write_admin_token(&self, token: &str) -> Result<PathBuf, DataDirError> {
        let path = self.admin_token_path();
        write_private(&path, format!("{token}\n").as_bytes())?;
        Ok(path)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    let io = |source| DataDirError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    restrict(path, 0o600)
}

fn restrict(path: &Path, mode: u32) -> Result<(), DataDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
            DataDirError::Io {
                path: path.to_owned(),
                source,
            }
        })?;
    }
    let _ = mode;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_key_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::open(&dir.path().join("state")).unwrap();
        let k1 = d.digest_key().unwrap();
        assert_eq!(k1, d.digest_key().unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.path().join(DIGEST_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
