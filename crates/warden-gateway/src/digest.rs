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
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        let mut buf = Vec::with_capacity(256);
        write_canonical(value, &mut buf);
        mac.update(&buf);
        hex::encode(mac.finalize().into_bytes())
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
    fn canonical_form_is_compact_and_sorted() {
        let mut out = Vec::new();
        write_canonical(&json!({"b": [true, null], "a": "x\"y"}), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x\"y","b":[true,null]}"#
        );
    }
}
