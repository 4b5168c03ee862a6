//! The bundle hash: what every audit event names, so a decision can be traced to the exact
//! policies and settings that made it.
//!
//! It covers the policy files (name and text, in load order) and everything from the config and
//! the catalog that changes a decision: classes, vendors, upstreams, roles, agents, users, tool
//! settings and each tool's risk and input schema. It leaves out what cannot change a decision
//! (listen address, database, secrets), so moving a deployment does not change the hash.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_core::{Catalog, Config};

use crate::sources::PolicySource;

/// Bumped when the hashed content's layout changes.
const DOMAIN: &[u8] = b"warden-policy-bundle/v1";

pub(crate) fn bundle_hash(sources: &[PolicySource], config: &Config, catalog: &Catalog) -> String {
    let mut h = Sha256::new();
    field(&mut h, DOMAIN);
    for source in sources {
        // The file name, not the full path: the same files checked out elsewhere hash the same.
        let name = source
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        field(&mut h, name.as_bytes());
        field(&mut h, source.text.as_bytes());
    }
    let mut canonical = Vec::new();
    write_canonical(&decision_inputs(config, catalog), &mut canonical);
    field(&mut h, &canonical);
    hex::encode(h.finalize())
}

/// Length-prefixed, so no two different sequences of fields hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn decision_inputs(config: &Config, catalog: &Catalog) -> Value {
    json!({
        "classes": config.classes.names(),
        "vendors": config.vendors.iter().map(|v| json!([v.name, v.cleared])).collect::<Vec<_>>(),
        "upstreams": config.upstreams.iter().map(|u| json!([u.name, u.vendor, u.trusted, u.sandbox])).collect::<Vec<_>>(),
        "roles": config.roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        "agents": config.agents.iter().map(|a| json!({
            "id": a.id, "owner": a.owner, "purpose": a.purpose, "roles": a.roles,
            "mode": a.mode.as_str(), "clearance": a.clearance, "delegation": a.delegation,
            "risk": a.risk.map(|r| r.as_str()),
            "tool_modes": a.tool_modes.iter().map(|(t, m)| json!([t.as_str(), m.as_str()])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "users": config.users.iter().map(|u| json!([u.id, u.roles])).collect::<Vec<_>>(),
        "tool_settings": config.tools.iter().map(|t| json!({
            "name": t.name.as_str(), "risk": t.risk.map(|r| r.as_str()),
            "mode": t.mode.map(|m| m.as_str()), "classify": t.classify,
        })).collect::<Vec<_>>(),
        "catalog": catalog.iter().map(|t| json!({
            "name": t.name.as_str(), "risk": t.risk.as_str(), "reversible": t.reversible,
            "input": t.input_schema,
        })).collect::<Vec<_>>(),
    })
}

/// JSON with object keys sorted, whatever order the map kept them in, so the hash does not
/// depend on serde_json's `preserve_order` feature or on upstream key order.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(k.clone()), out);
                out.push(b':');
                if let Some(value) = map.get(k) {
                    write_canonical(value, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = Vec::new();
        write_canonical(
            &json!({"b": 1, "a": {"d": [true, null], "c": "x"}}),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"c":"x","d":[true,null]},"b":1}"#
        );
    }
}
