//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A note is its text (lines, each ending in a newline), a blank line, then one or more
//! signature lines `— <key name> <base64(key hash || signature)>` (an em dash, U+2014). The
//! key hash is the first four bytes, big-endian, of `SHA-256(name || 0x0A || 0x01 || public
//! key)`; the signature is Ed25519 over the text. Keys are written as text, as the Go
//! `golang.org/x/mod/sumdb/note` package writes them:
//!
//! - signing key: `PRIVATE+KEY+<name>+<hash, 8 hex digits>+<base64(0x01 || 32-byte seed)>`
//! - verifier key: `<name>+<hash, 8 hex digits>+<base64(0x01 || 32-byte public key)>`

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer};
use sha2::{Digest, Sha256};

/// The algorithm byte of Ed25519 keys.
const ALG_ED25519: u8 = 0x01;
/// What every signature line starts with: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Notes with more signature lines than this are refused, as the Go package does.
const MAX_SIGNATURES: usize = 100;
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// A key text or key name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key name {0:?} is not valid: it must be non-empty, with no spaces and no '+'")]
    BadName(String),
    #[error("a signing key reads PRIVATE+KEY+<name>+<hash>+<key>; this text does not")]
    BadSigningKeyText,
    #[error("a verifier key reads <name>+<hash>+<key>; {0:?} does not")]
    BadVerifierKeyText(String),
    #[error("key {name}: key hash {text:?} is not 8 hex digits")]
    BadHashText { name: String, text: String },
    #[error("key {name}: its text says key hash {stated:08x}, but the key's hash is {actual:08x}")]
    HashMismatch {
        name: String,
        stated: u32,
        actual: u32,
    },
    #[error("key {name}: the key part is not base64 of an algorithm byte and 32 key bytes")]
    BadKeyBytes { name: String },
    #[error("key {name}: algorithm {alg:#04x} is not Ed25519 (0x01)")]
    UnsupportedAlgorithm { name: String, alg: u8 },
    #[error("key {name}: not a valid Ed25519 public key")]
    BadPublicKey { name: String },
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
}

/// A note that cannot be signed or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error(
        "note text must be non-empty, end with a newline, and contain no blank line and no \
         control character but newline"
    )]
    BadText,
    #[error("note is malformed: {0}")]
    Malformed(&'static str),
    #[error("signature line {line} is malformed: {problem}")]
    BadSignatureLine { line: usize, problem: &'static str },
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("note has no signature by key {name} (key hash {hash:08x})")]
    NoSignature { name: String, hash: u32 },
    #[error(
        "the signature by key {name} does not verify: the note was altered, or signed by \
         another key of that name"
    )]
    BadSignature { name: String },
}

/// An Ed25519 signing key with its name. `Debug` never shows the private key.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    hash: u32,
    key: ed25519_dalek::SigningKey,
}

/// An Ed25519 public key with its name: what a verifier needs.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    hash: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl SigningKey {
    /// A new key from the operating system's random generator.
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        use rand::TryRngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Self::from_seed(name, seed)
    }

    /// The key whose 32-byte Ed25519 seed is `seed`.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        check_name(name)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let hash = key_hash(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            hash,
            key,
        })
    }

    /// Read `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>` (surrounding whitespace
    /// ignored). Errors never echo the text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::BadSigningKeyText)?;
        let (name, hash, bytes) = split_key_text(rest).ok_or(KeyError::BadSigningKeyText)?;
        check_name(name)?;
        let stated = parse_hash_text(name, hash)?;
        let seed = decode_key_bytes(name, bytes)?;
        let key = Self::from_seed(name, seed)?;
        check_hash(name, stated, key.hash)?;
        Ok(key)
    }

    /// The text form, for a key file (mode 0600). It holds the private key: keep it secret.
    pub fn to_private_text(&self) -> String {
        let mut bytes = Vec::with_capacity(33);
        bytes.push(ALG_ED25519);
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_PREFIX}{}+{:08x}+{}",
            self.name,
            self.hash,
            STANDARD.encode(&bytes)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The four-byte key hash that identifies this key in signature lines.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            hash: self.hash,
            key: self.key.verifying_key(),
        }
    }

    /// Sign `text` (lines ending in newlines, no blank line): the note with one signature.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        if !is_valid_text(text) || text.contains("\n\n") {
            return Err(NoteError::BadText);
        }
        let signature = self.key.sign(text.as_bytes());
        let mut sig = Vec::with_capacity(68);
        sig.extend_from_slice(&self.hash.to_be_bytes());
        sig.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(&sig)
        ))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("key_hash", &format_args!("{:08x}", self.hash))
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl VerifierKey {
    /// Read `<name>+<hash>+<base64(0x01 || public key)>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bad = || KeyError::BadVerifierKeyText(text.to_owned());
        let (name, hash, bytes) = split_key_text(text).ok_or_else(bad)?;
        check_name(name)?;
        let stated = parse_hash_text(name, hash)?;
        let public = decode_key_bytes(name, bytes)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|_| {
            KeyError::BadPublicKey {
                name: name.to_owned(),
            }
        })?;
        check_hash(name, stated, key_hash(name, key.as_bytes()))?;
        Ok(Self {
            name: name.to_owned(),
            hash: stated,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// Check a signed note and return its text. Signatures by other keys are ignored; one
    /// by this key (same name and key hash) must be present and valid.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let (text, sigs) = split_note(note)?;
        let mut found = false;
        for (i, line) in sigs.split_terminator('\n').enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let (name, hash, signature) = parse_signature_line(i + 1, line)?;
            if name != self.name || hash != self.hash {
                continue;
            }
            let signature =
                Signature::from_slice(&signature).map_err(|_| NoteError::BadSignatureLine {
                    line: i + 1,
                    problem: "an Ed25519 signature is 64 bytes",
                })?;
            if self.key.verify_strict(text.as_bytes(), &signature).is_err() {
                return Err(NoteError::BadSignature {
                    name: self.name.clone(),
                });
            }
            found = true;
        }
        if !found {
            return Err(NoteError::NoSignature {
                name: self.name.clone(),
                hash: self.hash,
            });
        }
        Ok(text)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(33);
        bytes.push(ALG_ED25519);
        bytes.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.hash,
            STANDARD.encode(&bytes)
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::parse(s)
    }
}

/// The text of a note, without checking any signature: for locating a note that failed to
/// verify. Never trust what it returns.
pub(crate) fn unverified_text(note: &str) -> Option<&str> {
    split_note(note).ok().map(|(text, _)| text)
}

/// The key hash of an Ed25519 key: the first four bytes of `SHA-256(name || "\n" || 0x01 ||
/// public key)`, big-endian.
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Split at the last blank line into text (ending in its newline) and signature lines.
fn split_note(note: &str) -> Result<(&str, &str), NoteError> {
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    if !is_valid_text(text) {
        return Err(NoteError::BadText);
    }
    if sigs.is_empty() {
        return Err(NoteError::Malformed("no signature lines"));
    }
    if !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the last signature line does not end with a newline",
        ));
    }
    Ok((text, sigs))
}

/// `— <name> <base64(hash || signature)>` → (name, hash, signature bytes).
fn parse_signature_line(line_no: usize, line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let bad = |problem| NoteError::BadSignatureLine {
        line: line_no,
        problem,
    };
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or_else(|| bad("it does not start with an em dash and a space"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| bad("it has no space between key name and signature"))?;
    if !is_valid_name(name) {
        return Err(bad("the key name is empty or holds a space or '+'"));
    }
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| bad("the signature is not base64"))?;
    match bytes.split_first_chunk::<4>() {
        Some((hash, signature)) if !signature.is_empty() => {
            Ok((name, u32::from_be_bytes(*hash), signature.to_vec()))
        }
        _ => Err(bad("the signature is shorter than a key hash and one byte")),
    }
}

/// UTF-8 (given by `&str`), non-empty, ending in a newline, no control character but `\n`.
fn is_valid_text(text: &str) -> bool {
    text.ends_with('\n') && !text.chars().any(|c| c.is_control() && c != '\n')
}

/// Non-empty, no whitespace, no `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_owned()))
    }
}

/// `<name>+<hash>+<key>`: the first two `+` separate (base64 may hold more).
fn split_key_text(text: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = text.split_once('+')?;
    let (hash, key) = rest.split_once('+')?;
    Some((name, hash, key))
}

fn parse_hash_text(name: &str, text: &str) -> Result<u32, KeyError> {
    let bad = || KeyError::BadHashText {
        name: name.to_owned(),
        text: text.to_owned(),
    };
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u32::from_str_radix(text, 16).map_err(|_| bad())
}

fn decode_key_bytes(name: &str, b64: &str) -> Result<[u8; 32], KeyError> {
    let bytes = STANDARD.decode(b64).map_err(|_| KeyError::BadKeyBytes {
        name: name.to_owned(),
    })?;
    let (alg, key) = bytes.split_first().ok_or(KeyError::BadKeyBytes {
        name: name.to_owned(),
    })?;
    if *alg != ALG_ED25519 {
        return Err(KeyError::UnsupportedAlgorithm {
            name: name.to_owned(),
            alg: *alg,
        });
    }
    <[u8; 32]>::try_from(key).map_err(|_| KeyError::BadKeyBytes {
        name: name.to_owned(),
    })
}

fn check_hash(name: &str, stated: u32, actual: u32) -> Result<(), KeyError> {
    if stated == actual {
        Ok(())
    } else {
        Err(KeyError::HashMismatch {
            name: name.to_owned(),
            stated,
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_seed("example.com/log", [7; 32]).unwrap()
    }

    /// The example key and note from the documentation of Go's
    /// `golang.org/x/mod/sumdb/note`: same verifier key, byte-identical signed note.
    #[test]
    fn interoperates_with_the_go_note_package() {
        let signer = SigningKey::parse(
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        )
        .unwrap();
        let verifier = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        assert_eq!(signer.verifier().to_string(), verifier);
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let note = format!(
            "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1\
             FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        );
        assert_eq!(signer.sign_note(text).unwrap(), note);
        assert_eq!(VerifierKey::parse(verifier).unwrap().open(&note), Ok(text));
    }

    #[test]
    fn keys_round_trip_through_text() {
        let k = key();
        let again = SigningKey::parse(&k.to_private_text()).unwrap();
        assert_eq!(again.verifier(), k.verifier());
        let v = VerifierKey::parse(&k.verifier().to_string()).unwrap();
        assert_eq!(v, k.verifier());
        assert!(
            k.to_private_text()
                .starts_with("PRIVATE+KEY+example.com/log+")
        );
        let generated = SigningKey::generate("x").unwrap();
        assert_ne!(
            generated.verifier(),
            SigningKey::generate("x").unwrap().verifier()
        );
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let k = key();
        let text = k.to_private_text();
        let secret = text.rsplit('+').next().unwrap();
        let debug = format!("{k:?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn bad_key_texts_are_refused() {
        let k = key();
        let good = k.verifier().to_string();
        let (name, rest) = good.split_once('+').unwrap();
        let (hash, b64) = rest.split_once('+').unwrap();
        let cases = [
            String::new(),
            format!("{name}+{hash}"),
            format!("+{hash}+{b64}"),
            format!("a b+{hash}+{b64}"),
            format!("{name}+zzzzzzzz+{b64}"),
            format!("{name}+{hash}0+{b64}"),
            format!("{name}+00000000+{b64}"),
            format!("other+{hash}+{b64}"),
            format!("{name}+{hash}+{}", &b64[..10]),
            format!("{name}+{hash}+!!!!"),
        ];
        for case in cases {
            assert!(VerifierKey::parse(&case).is_err(), "{case:?}");
        }
        assert!(matches!(
            SigningKey::parse(&good),
            Err(KeyError::BadSigningKeyText)
        ));
        assert!(SigningKey::from_seed("a+b", [0; 32]).is_err());
    }

    #[test]
    fn notes_verify_and_tampering_is_caught() {
        let k = key();
        let note = k.sign_note("hello\nworld\n").unwrap();
        assert!(note.starts_with("hello\nworld\n\n\u{2014} example.com/log "));
        let v = k.verifier();
        assert_eq!(v.open(&note), Ok("hello\nworld\n"));
        assert!(matches!(
            v.open(&note.replace("world", "World")),
            Err(NoteError::BadSignature { .. })
        ));
        let other = SigningKey::from_seed("example.com/log", [8; 32]).unwrap();
        assert!(matches!(
            other.verifier().open(&note),
            Err(NoteError::NoSignature { .. })
        ));
        // A second, unknown signature is ignored.
        let cosigned = format!("{note}\u{2014} witness AAAAAAAA\n");
        assert_eq!(v.open(&cosigned), Ok("hello\nworld\n"));
    }

    #[test]
    fn malformed_notes_are_errors() {
        let k = key();
        let v = k.verifier();
        let note = k.sign_note("a\n").unwrap();
        let cases = [
            "",
            "a\n",
            "a\n\n",
            &note[..note.len() - 1],
            &note.replace('\u{2014}', "-"),
            &note.replace("log ", "log"),
            "a\n\n\u{2014} example.com/log AAAA\n",
            "a\n\n\u{2014} example.com/log !!!\n",
            "a\x01\n\n\u{2014} example.com/log AAAAAAAA\n",
        ];
        for case in cases {
            assert!(v.open(case).is_err(), "{case:?}");
        }
        assert!(k.sign_note("no newline").is_err());
        assert!(k.sign_note("blank\n\nline\n").is_err());
        let many: String = (0..=MAX_SIGNATURES)
            .map(|_| "\u{2014} w AAAAAAAA\n")
            .collect();
        assert_eq!(
            v.open(&format!("a\n\n{many}")),
            Err(NoteError::TooManySignatures)
        );
    }
}
