//! C2SP tlog-checkpoints (<https://c2sp.org/tlog-checkpoint>), signed as notes.
//!
//! The body is three lines: the log's origin, the tree size in decimal, the root hash in
//! standard base64 (with padding):
//!
//! ```text
//! warden.example/audit
//! 1024
//! 9ByTQ6tc1Yf5qPsKrnbV7ebY9VhMTdrsbiyFD6J/1eQ=
//! ```
//!
//! Extension lines after the root are accepted (they are covered by the signature) and
//! ignored; Warden writes none.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::Hash;
use crate::note::{NoteError, SigningKey, VerifierKey, unverified_text};

/// A signed statement: the log named `origin` had `size` leaves with root `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint that cannot be signed, parsed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint origin {0:?} must be non-empty, on one line, without control characters")]
    BadOrigin(String),
    #[error("checkpoint body is malformed: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Note(#[from] NoteError),
}

impl Checkpoint {
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
        }
    }

    /// The note text: `"<origin>\n<size>\n<base64 root>\n"`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Read a checkpoint body (the text of a note, already verified).
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let lines = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("it does not end with a newline"))?;
        let mut lines = lines.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin)?;
        let size = parse_size(
            lines
                .next()
                .ok_or(CheckpointError::Malformed("no size line"))?,
        )?;
        let root = parse_root(
            lines
                .next()
                .ok_or(CheckpointError::Malformed("no root line"))?,
        )?;
        if lines.any(str::is_empty) {
            return Err(CheckpointError::Malformed("an extension line is empty"));
        }
        Ok(Self::new(origin, size, root))
    }
}

impl SigningKey {
    /// The signed note for `checkpoint`.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, CheckpointError> {
        check_origin(&checkpoint.origin)?;
        Ok(self.sign_note(&checkpoint.body())?)
    }
}

/// Verify a signed checkpoint note with `key` and return the checkpoint. Rejects a note
/// without a valid signature by `key`, a tampered body and malformed lines.
pub fn verify(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let text = key.open(note)?;
    Checkpoint::parse_body(text)
}

/// The checkpoint a note claims to carry, without checking its signature: only for
/// reporting where a forged checkpoint points.
pub(crate) fn claimed(note: &str) -> Option<Checkpoint> {
    unverified_text(note).and_then(|text| Checkpoint::parse_body(text).ok())
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() || origin.chars().any(char::is_control) {
        return Err(CheckpointError::BadOrigin(origin.to_owned()));
    }
    Ok(())
}

/// Decimal, no sign, no leading zeros (but `0` itself).
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let digits_only = !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (line.len() > 1 && line.starts_with('0')) {
        return Err(CheckpointError::Malformed(
            "the size is not a decimal number without leading zeros",
        ));
    }
    line.parse()
        .map_err(|_| CheckpointError::Malformed("the size does not fit in 64 bits"))
}

/// Standard base64 with padding of exactly 32 bytes, in its one canonical spelling.
fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| CheckpointError::Malformed("the root is not base64"))?;
    let root = Hash::try_from(bytes.as_slice())
        .map_err(|_| CheckpointError::Malformed("the root is not 32 bytes"))?;
    if STANDARD.encode(root) != line {
        return Err(CheckpointError::Malformed(
            "the root's base64 is not canonical",
        ));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    fn key() -> SigningKey {
        SigningKey::from_seed("warden.example/audit", [3; 32]).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        let leaves = [leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")];
        Checkpoint::new("warden.example/audit", 3, root(&leaves))
    }

    #[test]
    fn signs_and_verifies() {
        let key = key();
        let note = key.sign(&checkpoint()).unwrap();
        let body = checkpoint().body();
        assert!(note.starts_with(&body));
        assert_eq!(body.lines().count(), 3);
        assert!(note.contains("\n\n\u{2014} warden.example/audit "));
        assert_eq!(verify(&note, &key.verifier()), Ok(checkpoint()));
        assert_eq!(claimed(&note), Some(checkpoint()));
    }

    #[test]
    fn tampered_notes_are_rejected() {
        let key = key();
        let note = key.sign(&checkpoint()).unwrap();
        let v = key.verifier();
        // Another size, another root, another origin: the signature no longer matches.
        let bigger = note.replacen("\n3\n", "\n4\n", 1);
        assert!(matches!(
            verify(&bigger, &v),
            Err(CheckpointError::Note(NoteError::BadSignature { .. }))
        ));
        let root_line = STANDARD.encode(checkpoint().root);
        let other_root = STANDARD.encode(leaf_hash(b"x"));
        assert!(verify(&note.replace(&root_line, &other_root), &v).is_err());
        assert!(verify(&note.replacen("warden", "warden2", 1), &v).is_err());
        // Signed by another key with the same name.
        let forger = SigningKey::from_seed("warden.example/audit", [4; 32]).unwrap();
        let forged = forger.sign(&checkpoint()).unwrap();
        assert!(matches!(
            verify(&forged, &v),
            Err(CheckpointError::Note(NoteError::NoSignature { .. }))
        ));
        // A signature line with the right key hash but a forged signature.
        let sig_start = note.rfind(' ').unwrap() + 1;
        let mut sig = STANDARD.decode(note[sig_start..].trim_end()).unwrap();
        sig[10] ^= 1;
        let bad = format!("{}{}\n", &note[..sig_start], STANDARD.encode(&sig));
        assert!(matches!(
            verify(&bad, &v),
            Err(CheckpointError::Note(NoteError::BadSignature { .. }))
        ));
    }

    #[test]
    fn malformed_bodies_are_rejected() {
        let root = STANDARD.encode(checkpoint().root);
        let cases = [
            "".to_owned(),
            "origin\n".to_owned(),
            "origin\n3\n".to_owned(),
            format!("\n3\n{root}\n"),
            format!("origin\n03\n{root}\n"),
            format!("origin\n-3\n{root}\n"),
            format!("origin\n+3\n{root}\n"),
            format!("origin\n18446744073709551616\n{root}\n"),
            format!("origin\n3\n{}\n", &root[..20]),
            format!("origin\n3\n{}\n", root.trim_end_matches('=')),
            format!("origin\n3\n{root}"),
            format!("origin\n3\n{root}\n\n"),
        ];
        for case in &cases {
            assert!(Checkpoint::parse_body(case).is_err(), "{case:?}");
        }
        let with_extension = format!("origin\n3\n{root}\nextension\n");
        assert_eq!(Checkpoint::parse_body(&with_extension).unwrap().size, 3);
        let bad_origin = Checkpoint::new("two\nlines", 1, [0; 32]);
        assert!(matches!(
            key().sign(&bad_origin),
            Err(CheckpointError::BadOrigin(_))
        ));
    }
}
