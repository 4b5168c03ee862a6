//! Bearer secrets (agent keys, task tokens, operator tokens): generation and hashing.
//!
//! A secret is 256 random bits, shown once to whoever asked for it; only its SHA-256 is stored.
//! The prefix says what kind of secret it is, so a leaked one is easy to recognise and scan for.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a bearer secret grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    AgentKey,
    TaskToken,
    OperatorToken,
}

impl SecretKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::AgentKey => "wdn_ak_",
            Self::TaskToken => "wdn_tt_",
            Self::OperatorToken => "wdn_op_",
        }
    }

    /// The kind a presented secret claims to be, by its prefix.
    pub fn of(secret: &str) -> Option<Self> {
        [Self::AgentKey, Self::TaskToken, Self::OperatorToken]
            .into_iter()
            .find(|k| secret.starts_with(k.prefix()))
    }
}

/// A freshly generated secret: the value to hand out once, its public id, and its stored hash.
pub struct NewSecret {
    pub secret: String,
    pub id: String,
    pub hash: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub fn generate(kind: SecretKind) -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!(
        "{}{}",
        kind.prefix(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let mut id_bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut id_bytes);
    NewSecret {
        hash: hash(&secret),
        id: hex::encode(id_bytes),
        secret,
    }
}

/// The stored form of a secret: hex SHA-256. Secrets carry 256 bits of entropy, so a fast hash
/// is enough; a slow password hash would only add latency to every call.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_carries_its_kind_and_hashes_to_its_stored_form() {
        let k = generate(SecretKind::AgentKey);
        assert_eq!(SecretKind::of(&k.secret), Some(SecretKind::AgentKey));
        assert_eq!(hash(&k.secret), k.hash);
        assert!(k.secret.len() >= 7 + 43);
        assert!(!format!("{k:?}").contains(&k.secret));
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(
            generate(SecretKind::TaskToken).secret,
            generate(SecretKind::TaskToken).secret
        );
    }
}
