//! Projection: what is left of a JSON value for a party cleared up to some class.

use std::fmt;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use warden_core::ClassLevel;

use crate::classify::{FieldRules, MAX_DEPTH, Matcher, Root, Seg, Step, parse_segments};
use crate::error::DlpError;
use crate::redact::{Action, Tally};

/// What happens to a field (or a detected span) above the clearance.
#[derive(Debug, Clone)]
pub enum FieldAction {
    /// Remove it (a field is removed from its object or array; a span from its text).
    Drop,
    /// Replace it by `[REDACTED:<class>]`.
    Mask,
    /// Replace it by `pii_<16 hex>`: a keyed HMAC-SHA256 of the value, stable for one
    /// deployment key, so equal values stay joinable without being revealed.
    Pseudonym(PseudonymKey),
}

impl FieldAction {
    /// What replaces `value` of class `class` (empty for `Drop`).
    pub(crate) fn replacement(&self, class: &str, value: &str) -> String {
        match self {
            FieldAction::Drop => String::new(),
            FieldAction::Mask => format!("[REDACTED:{class}]"),
            FieldAction::Pseudonym(key) => key.pseudonym(value),
        }
    }

    pub(crate) fn tally_action(&self) -> Action {
        match self {
            FieldAction::Drop => Action::Dropped,
            FieldAction::Mask => Action::Redacted,
            FieldAction::Pseudonym(_) => Action::Pseudonymized,
        }
    }
}

/// The deployment's pseudonym key. `Debug` never shows it.
#[derive(Clone)]
pub struct PseudonymKey {
    mac: Hmac<Sha256>,
}

impl PseudonymKey {
    /// A key from secret bytes (32 random bytes recommended).
    pub fn new(key: &[u8]) -> Result<Self, DlpError> {
        if key.is_empty() {
            return Err(DlpError::EmptyKey);
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| DlpError::EmptyKey)?;
        Ok(Self { mac })
    }

    /// `pii_` and the first 16 hex digits of HMAC-SHA256(key, value).
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(b"warden-dlp pseudonym v1\0");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("pii_{}", hex::encode(digest.get(..8).unwrap_or_default()))
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

/// Apply `action` to every field of `value` whose class is above `clearance`, by `rules` for
/// `root`. A removed root becomes `null`. Returns counts by `field.<class>`.
pub fn project(
    value: &mut Value,
    root: Root,
    rules: &FieldRules,
    clearance: ClassLevel,
    action: &FieldAction,
) -> Tally {
    let mut p = Projector {
        rules,
        clearance,
        action,
        tally: Tally::default(),
    };
    if !p.visit(value, &rules.matcher(root), None) {
        *value = Value::Null;
    }
    p.tally
}

struct Projector<'a> {
    rules: &'a FieldRules,
    clearance: ClassLevel,
    action: &'a FieldAction,
    tally: Tally,
}

impl Projector<'_> {
    /// Project one node; `false` when it must be removed from its parent.
    fn visit(&mut self, value: &mut Value, m: &Matcher<'_>, inherited: Option<ClassLevel>) -> bool {
        let ruled = inherited.max(m.here());
        let is_branch = match value {
            Value::Object(map) => !map.is_empty(),
            Value::Array(items) => !items.is_empty(),
            _ => false,
        };
        let class = if m.depth() > MAX_DEPTH {
            Some(self.rules.classes().highest())
        } else if is_branch {
            ruled
        } else {
            Some(ruled.unwrap_or(self.rules.default_class()))
        };
        match class {
            Some(c) if c > self.clearance => self.act(value, c),
            _ if is_branch => {
                self.children(value, m, ruled);
                true
            }
            _ => true,
        }
    }

    fn children(&mut self, value: &mut Value, m: &Matcher<'_>, ruled: Option<ClassLevel>) {
        match value {
            Value::Object(map) => {
                map.retain(|k, v| self.visit(v, &m.child(Step::Key(k)), ruled));
            }
            Value::Array(items) => {
                let mut i = 0;
                items.retain_mut(|v| {
                    let keep = self.visit(v, &m.child(Step::Index(i)), ruled);
                    i += 1;
                    keep
                });
            }
            _ => {}
        }
    }

    /// Apply the action to a node of class `class`; `false` when it is to be removed.
    fn act(&mut self, value: &mut Value, class: ClassLevel) -> bool {
        let name = self.rules.classes().name(class);
        self.tally
            .add(&format!("field.{name}"), self.action.tally_action());
        match self.action {
            FieldAction::Drop => false,
            FieldAction::Mask => {
                *value = Value::String(self.action.replacement(name, ""));
                true
            }
            FieldAction::Pseudonym(key) => {
                let text = match &mut *value {
                    Value::String(s) => std::mem::take(s),
                    other => other.to_string(),
                };
                *value = Value::String(key.pseudonym(&text));
                true
            }
        }
    }
}

/// Keep only the nodes named by `projection` (JSON Pointers relative to `value`, `*` for
/// every element or member, `""` for the whole value) and their subtrees; remove the rest.
/// Containers on the way to a kept node stay (pruned); a scalar root that is not kept
/// becomes `null`.
pub fn keep_only<S: AsRef<str>>(value: &mut Value, projection: &[S]) -> Result<(), DlpError> {
    let paths = projection
        .iter()
        .map(|p| parse_pointer(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let views: Vec<&[Seg]> = paths.iter().map(Vec::as_slice).collect();
    if !prune(value, &views, 0) {
        *value = Value::Null;
    }
    Ok(())
}

fn parse_pointer(pointer: &str) -> Result<Vec<Seg>, DlpError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| DlpError::BadPath {
        path: pointer.to_owned(),
        reason: "a JSON Pointer starts with `/`",
    })?;
    Ok(parse_segments(rest.split('/')))
}

/// Prune `value` to `paths`; `false` when nothing of it is to be kept.
fn prune(value: &mut Value, paths: &[&[Seg]], depth: usize) -> bool {
    if paths.iter().any(|p| p.is_empty()) {
        return true;
    }
    if depth > MAX_DEPTH {
        return false;
    }
    let tails = |step: Step<'_>| -> Vec<&[Seg]> {
        paths
            .iter()
            .filter_map(|p| p.split_first())
            .filter(|(head, _)| head.matches(step))
            .map(|(_, tail)| tail)
            .collect()
    };
    match value {
        Value::Object(map) => {
            map.retain(|k, v| {
                let t = tails(Step::Key(k));
                !t.is_empty() && prune(v, &t, depth + 1)
            });
            true
        }
        Value::Array(items) => {
            let mut i = 0;
            items.retain_mut(|v| {
                let t = tails(Step::Index(i));
                i += 1;
                !t.is_empty() && prune(v, &t, depth + 1)
            });
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;
    use warden_core::DataClasses;

    fn rules() -> FieldRules {
        let map: BTreeMap<String, String> = [
            ("result/ssn", "regulated"),
            ("result/email", "confidential"),
            ("result/items/*/card", "regulated"),
            ("result/id", "public"),
        ]
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
        FieldRules::new(&map, &DataClasses::default(), "internal").unwrap()
    }

    fn internal() -> ClassLevel {
        DataClasses::default().level("internal").unwrap()
    }

    #[test]
    fn drop_removes_fields_above_clearance() {
        let mut v = json!({"id": 1, "ssn": "123-45-6789", "email": "a@b.co", "name": "A",
                           "items": [{"card": "4111", "sku": "x"}]});
        let t = project(
            &mut v,
            Root::Result,
            &rules(),
            internal(),
            &FieldAction::Drop,
        );
        assert_eq!(v, json!({"id": 1, "name": "A", "items": [{"sku": "x"}]}));
        assert_eq!(t.count("field.regulated", Action::Dropped), 2);
        assert_eq!(t.count("field.confidential", Action::Dropped), 1);
    }

    #[test]
    fn mask_and_pseudonym_replace_values() {
        let mut v = json!({"ssn": "123-45-6789", "name": "A"});
        project(
            &mut v,
            Root::Result,
            &rules(),
            internal(),
            &FieldAction::Mask,
        );
        assert_eq!(v, json!({"ssn": "[REDACTED:regulated]", "name": "A"}));

        let key = PseudonymKey::new(b"deployment key").unwrap();
        let mut a = json!({"ssn": "123-45-6789"});
        let mut b = json!({"ssn": "123-45-6789"});
        project(
            &mut a,
            Root::Result,
            &rules(),
            internal(),
            &FieldAction::Pseudonym(key.clone()),
        );
        project(
            &mut b,
            Root::Result,
            &rules(),
            internal(),
            &FieldAction::Pseudonym(key),
        );
        let p = a["ssn"].as_str().unwrap();
        assert!(p.starts_with("pii_") && p.len() == 20, "{p}");
        assert_eq!(a, b);
        let other = PseudonymKey::new(b"another key")
            .unwrap()
            .pseudonym("123-45-6789");
        assert_ne!(p, other);
    }

    #[test]
    fn a_public_clearance_loses_default_fields_too() {
        let mut v = json!({"id": 7, "name": "A"});
        project(
            &mut v,
            Root::Result,
            &rules(),
            ClassLevel(0),
            &FieldAction::Drop,
        );
        assert_eq!(v, json!({"id": 7}));
    }

    #[test]
    fn keep_only_keeps_listed_paths() {
        let mut v =
            json!({"a": 1, "b": {"c": 2, "d": 3}, "items": [{"x": 1, "y": 2}, {"x": 3}], "s": "t"});
        keep_only(&mut v, &["/a", "/b/c", "/items/*/x"]).unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": {"c": 2}, "items": [{"x": 1}, {"x": 3}]})
        );
        assert!(keep_only(&mut v, &["a"]).is_err());
        let mut all = json!({"k": [1, 2]});
        keep_only(&mut all, &[""]).unwrap();
        assert_eq!(all, json!({"k": [1, 2]}));
    }

    #[test]
    fn pseudonym_key_debug_hides_the_key() {
        let key = PseudonymKey::new(b"hunter2").unwrap();
        assert_eq!(format!("{key:?}"), "PseudonymKey(..)");
        assert!(PseudonymKey::new(b"").is_err());
    }
}
