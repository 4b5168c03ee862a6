//! Envelope encryption for the evidence vault.
//!
//! Raw arguments and results never go to the audit log; they go here. Each record is encrypted
//! with its own random 256-bit data key (AES-256-GCM), and that data key is stored only wrapped
//! (encrypted) by the master key, which lives outside the database (a file or an environment
//! variable). Destroying a record's wrapped key makes the record unreadable for good
//! (crypto-shredding), while the audit log — which holds only digests — still verifies.
//!
//! The record id is bound into both encryptions as associated data, so a ciphertext or a wrapped
//! key moved to another record fails to open. This crate is pure: no files, no database.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("the master key must be 32 bytes (base64 of them in text form), got {0} bytes")]
    BadMasterKey(usize),
    #[error("the master key text is not base64: {0}")]
    BadMasterKeyText(String),
    #[error("record {0} does not open: wrong master key, wrong record, or tampered data")]
    Tampered(String),
    #[error("record {0} is malformed")]
    Malformed(String),
    #[error("encryption failed")]
    Encrypt,
}

/// The key that wraps every record's data key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| VaultError::BadMasterKey(bytes.len()))?;
        Ok(Self { key })
    }

    /// Parse the text form: standard base64 of the 32 key bytes (surrounding whitespace ignored).
    pub fn from_text(text: &str) -> Result<Self, VaultError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| VaultError::BadMasterKeyText(e.to_string()))?;
        Self::from_bytes(&bytes)
    }

    pub fn to_text(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key)
    }

    /// A short public id of the key (first 8 bytes of its SHA-256, hex), stored with each record
    /// so a rotation can tell which key wrapped it.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.key)[..8])
    }

    /// Encrypt `plaintext` for record `record_id` under a fresh data key.
    pub fn seal(&self, record_id: &str, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        let mut data_key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut data_key);
        let ciphertext = encrypt(&data_key, record_id, plaintext)?;
        let wrapped_key = encrypt(&self.key, record_id, &data_key)?;
        data_key.fill(0);
        Ok(Sealed {
            key_id: self.id(),
            wrapped_key,
            ciphertext,
        })
    }

    /// Decrypt a record. Fails if anything — ciphertext, wrapped key, record id — was changed.
    pub fn open(&self, record_id: &str, sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        let mut data_key: [u8; KEY_LEN] = decrypt(&self.key, record_id, &sealed.wrapped_key)?
            .try_into()
            .map_err(|_| VaultError::Malformed(record_id.to_owned()))?;
        let plaintext = decrypt(&data_key, record_id, &sealed.ciphertext);
        data_key.fill(0);
        plaintext
    }
}

/// An encrypted record as stored: delete `wrapped_key` to shred it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// nonce || AES-256-GCM(master key, data key), with the record id as associated data.
    pub wrapped_key: Vec<u8>,
    /// nonce || AES-256-GCM(data key, plaintext), with the record id as associated data.
    pub ciphertext: Vec<u8>,
}

fn encrypt(key: &[u8; KEY_LEN], record_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: record_id.as_bytes(),
            },
        )
        .map_err(|_| VaultError::Encrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn decrypt(key: &[u8; KEY_LEN], record_id: &str, data: &[u8]) -> Result<Vec<u8>, VaultError> {
    if data.len() < NONCE_LEN {
        return Err(VaultError::Malformed(record_id.to_owned()));
    }
    let (nonce, body) = data.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into())
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: record_id.as_bytes(),
            },
        )
        .map_err(|_| VaultError::Tampered(record_id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_with_its_key_and_id() {
        let key = MasterKey::generate();
        let sealed = key.seal("ev1/args", b"{\"ssn\":\"123-45-6789\"}").unwrap();
        assert_eq!(
            key.open("ev1/args", &sealed).unwrap(),
            b"{\"ssn\":\"123-45-6789\"}"
        );
        assert!(
            !sealed.ciphertext.windows(11).any(|w| w == b"123-45-6789"),
            "the plaintext is not visible"
        );
    }

    #[test]
    fn each_record_gets_its_own_data_key() {
        let key = MasterKey::generate();
        let a = key.seal("a", b"same").unwrap();
        let b = key.seal("b", b"same").unwrap();
        assert_ne!(a.wrapped_key, b.wrapped_key);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn a_record_moved_to_another_id_or_tampered_does_not_open() {
        let key = MasterKey::generate();
        let sealed = key.seal("ev1/result", b"payload").unwrap();
        assert!(matches!(
            key.open("ev2/result", &sealed),
            Err(VaultError::Tampered(_))
        ));
        let mut bent = sealed.clone();
        if let Some(last) = bent.ciphertext.last_mut() {
            *last ^= 1;
        }
        assert!(key.open("ev1/result", &bent).is_err());
        assert!(
            MasterKey::generate().open("ev1/result", &sealed).is_err(),
            "another master key cannot open it"
        );
    }

    #[test]
    fn a_shredded_record_cannot_be_recovered() {
        let key = MasterKey::generate();
        let mut sealed = key.seal("ev1/args", b"secret").unwrap();
        sealed.wrapped_key.clear();
        assert!(key.open("ev1/args", &sealed).is_err());
    }

    #[test]
    fn the_master_key_round_trips_as_text_and_hides_in_debug() {
        let key = MasterKey::generate();
        let again = MasterKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.id(), key.id());
        assert!(!format!("{key:?}").contains(&key.to_text()));
        assert_eq!(
            MasterKey::from_text("AAAA").unwrap_err(),
            VaultError::BadMasterKey(3)
        );
    }
}
