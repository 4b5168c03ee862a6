//! Keyed digests of payloads for the audit log: HMAC-SHA256 over canonical JSON.
//!
//! The audit log proves *which* arguments and results a call had without holding them: anyone
//! with the raw payload (from the evidence vault) and the deployment key can recompute the digest.
//! Keying it stops a reader of the log from confirming guesses of low-entropy values.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Digester {
    key: [u8; 32],
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digester(<key>)")
    }
}

impl Digester {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Hex HMAC-SHA256 of the value's canonical JSON form.
    pub fn digest(&self, value: &Value) -> String {
        self.digest_sized(value).0
    }

    /// The digest and the length in bytes of the canonical form it covers (the same length as
    /// compact JSON): one serialization gives both, so a size limit costs nothing extra.
    pub fn digest_sized(&self, value: &Value) -> (String, usize) {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        let mut buf = Vec::with_capacity(256);
        write_canonical(value, &mut buf);
        mac.update(&buf);
        (hex::encode(mac.finalize().into_bytes()), buf.len())
    }

    /// A key for another purpose (`label`), derived from the digest key by HMAC, so the one
    /// secret in the data dir keys both while neither reveals the other.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(b"warden derived key v1\0");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// JSON with object keys sorted and no insignificant whitespace, so equal values hash equally
/// whatever order the keys arrived in.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Serializing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_digest() {
        let d = Digester::new([7; 32]);
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(d.digest(&a), d.digest(&b));
    }

    #[test]
    fn a_different_key_gives_a_different_digest() {
        let v = json!({"amount": 100});
        assert_ne!(
            Digester::new([1; 32]).digest(&v),
            Digester::new([2; 32]).digest(&v)
        );
    }

    #[test]
    fn the_sized_digest_counts_the_compact_json_bytes() {
        let d = Digester::new([7; 32]);
        let v = json!({"b": [1, "x"], "a": {"c": null}});
        let (digest, len) = d.digest_sized(&v);
        assert_eq!(digest, d.digest(&v));
        assert_eq!(len, serde_json::to_vec(&v).unwrap().len());
    }

    #[test]
    fn derived_keys_differ_by_label_and_from_the_digest_key() {
        let d = Digester::new([7; 32]);
        assert_ne!(d.derive_key("pseudonym"), d.derive_key("other"));
        assert_ne!(d.derive_key("pseudonym"), [7; 32]);
        assert_eq!(
            d.derive_key("pseudonym"),
            Digester::new([7; 32]).derive_key("pseudonym")
        );
    }

    #[test]
    fn canonical_form_is_compact_and_sorted() {
        let mut out = Vec::new();
        write_canonical(&json!({"b": [true, null], "a": "x\"y"}), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x\"y","b":[true,null]}"#
        );
    }
}
