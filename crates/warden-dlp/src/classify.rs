//! Field classification from a tool's `classify` map: `"result/items/*/ssn" = "regulated"`.
//!
//! A path names a node of the arguments (`input/...`) or of the result (`result/...`); its
//! segments are JSON Pointer tokens (`~1` is `/`, `~0` is `~`) and `*` matches every array
//! element or object member. A node's class is the highest class of the rules naming it or
//! any of its ancestors (a child is never less sensitive than a classified parent); a leaf no
//! rule reaches has the default class.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use warden_core::{ClassLevel, DataClasses};

use crate::error::DlpError;

/// Deeper nesting than this is treated as one leaf of the highest class (fail closed).
pub(crate) const MAX_DEPTH: usize = 128;

/// Which side of a call a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// The tool call's arguments.
    Input,
    /// The tool's result (`structuredContent`, or JSON in a text block).
    Result,
}

impl Root {
    pub fn as_str(self) -> &'static str {
        match self {
            Root::Input => "input",
            Root::Result => "result",
        }
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Root {
    type Err = DlpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "input" => Ok(Root::Input),
            "result" => Ok(Root::Result),
            _ => Err(DlpError::BadPath {
                path: s.to_owned(),
                reason: "the root must be `input` or `result`",
            }),
        }
    }
}

/// One segment of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Any,
}

impl Seg {
    pub(crate) fn matches(&self, step: Step<'_>) -> bool {
        match (self, step) {
            (Seg::Any, _) => true,
            (Seg::Key(k), Step::Key(s)) => k == s,
            (Seg::Key(k), Step::Index(i)) => k.parse::<usize>() == Ok(i),
        }
    }
}

/// A step from a node to a child.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Parse JSON Pointer tokens (`*` as a wildcard).
pub(crate) fn parse_segments<'a>(tokens: impl Iterator<Item = &'a str>) -> Vec<Seg> {
    tokens
        .map(|t| match t {
            "*" => Seg::Any,
            _ => Seg::Key(t.replace("~1", "/").replace("~0", "~")),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Rule {
    root: Root,
    segs: Vec<Seg>,
    level: ClassLevel,
}

/// A tool's field classification, ready to apply.
#[derive(Debug, Clone)]
pub struct FieldRules {
    rules: Vec<Rule>,
    default: ClassLevel,
    classes: DataClasses,
}

impl FieldRules {
    /// Rules from a tool's `classify` map (`ToolConfig::classify`), the class order and the
    /// class of fields nobody classified (`Config::default_class`).
    pub fn new(
        classify: &BTreeMap<String, String>,
        classes: &DataClasses,
        default_class: &str,
    ) -> Result<Self, DlpError> {
        let level = |class: &str, context: &str| {
            classes.level(class).ok_or_else(|| DlpError::UnknownClass {
                class: class.to_owned(),
                context: context.to_owned(),
            })
        };
        let default = level(default_class, "the default class")?;
        let mut rules = Vec::with_capacity(classify.len());
        for (path, class) in classify {
            let mut tokens = path.split('/');
            let root: Root =
                tokens
                    .next()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| DlpError::BadPath {
                        path: path.clone(),
                        reason: "a classify path starts with `input/` or `result/`",
                    })?;
            rules.push(Rule {
                root,
                segs: parse_segments(tokens),
                level: level(class, &format!("classify path `{path}`"))?,
            });
        }
        Ok(Self {
            rules,
            default,
            classes: classes.clone(),
        })
    }

    /// No rules: every field has `default_class`.
    pub fn unclassified(classes: &DataClasses, default_class: &str) -> Result<Self, DlpError> {
        Self::new(&BTreeMap::new(), classes, default_class)
    }

    pub fn classes(&self) -> &DataClasses {
        &self.classes
    }

    pub fn default_class(&self) -> ClassLevel {
        self.default
    }

    /// Where rule matching starts for a value at `root`.
    pub(crate) fn matcher(&self, root: Root) -> Matcher<'_> {
        Matcher {
            rules: self.rules.iter().filter(|r| r.root == root).collect(),
            depth: 0,
        }
    }
}

/// The rules still matching the path from the root to the current node.
#[derive(Debug, Clone)]
pub(crate) struct Matcher<'r> {
    rules: Vec<&'r Rule>,
    depth: usize,
}

impl<'r> Matcher<'r> {
    /// The highest class of the rules that name this node.
    pub(crate) fn here(&self) -> Option<ClassLevel> {
        self.rules
            .iter()
            .filter(|r| r.segs.len() == self.depth)
            .map(|r| r.level)
            .max()
    }

    pub(crate) fn child(&self, step: Step<'_>) -> Matcher<'r> {
        let depth = self.depth;
        Matcher {
            rules: self
                .rules
                .iter()
                .copied()
                .filter(|r| r.segs.get(depth).is_some_and(|s| s.matches(step)))
                .collect(),
            depth: depth + 1,
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth
    }
}

/// The class of every leaf (scalars and empty containers) of `value`, by JSON Pointer
/// relative to `value`. Nesting beyond the depth limit is reported as one leaf of the highest
/// class.
pub fn classify_value(value: &Value, root: Root, rules: &FieldRules) -> Vec<(String, ClassLevel)> {
    let mut out = Vec::new();
    let mut pointer = String::new();
    walk(
        value,
        &rules.matcher(root),
        None,
        rules,
        &mut pointer,
        &mut out,
    );
    out
}

fn walk(
    value: &Value,
    m: &Matcher<'_>,
    inherited: Option<ClassLevel>,
    rules: &FieldRules,
    pointer: &mut String,
    out: &mut Vec<(String, ClassLevel)>,
) {
    let ruled = inherited.max(m.here());
    if m.depth() > MAX_DEPTH {
        out.push((pointer.clone(), rules.classes.highest()));
        return;
    }
    let len = pointer.len();
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                push_token(pointer, k);
                walk(v, &m.child(Step::Key(k)), ruled, rules, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(v, &m.child(Step::Index(i)), ruled, rules, pointer, out);
                pointer.truncate(len);
            }
        }
        _ => out.push((pointer.clone(), ruled.unwrap_or(rules.default))),
    }
}

fn push_token(pointer: &mut String, key: &str) {
    pointer.push('/');
    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(pairs: &[(&str, &str)]) -> FieldRules {
        let map = pairs
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        FieldRules::new(&map, &DataClasses::default(), "internal").unwrap()
    }

    #[test]
    fn leaves_get_rule_inherited_or_default_classes() {
        let r = rules(&[
            ("result/ssn", "regulated"),
            ("result/items/*/card", "regulated"),
            ("result/address", "confidential"),
            ("result/id", "public"),
        ]);
        let v = json!({"id": 1, "ssn": "x", "name": "n", "address": {"city": "c"},
                       "items": [{"card": "4111", "sku": "a"}]});
        let got: BTreeMap<String, ClassLevel> =
            classify_value(&v, Root::Result, &r).into_iter().collect();
        let c = DataClasses::default();
        let at = |p: &str| got.get(p).copied();
        assert_eq!(at("/ssn"), c.level("regulated"));
        assert_eq!(at("/name"), c.level("internal"));
        assert_eq!(at("/id"), c.level("public"));
        assert_eq!(at("/address/city"), c.level("confidential"));
        assert_eq!(at("/items/0/card"), c.level("regulated"));
        assert_eq!(at("/items/0/sku"), c.level("internal"));
    }

    #[test]
    fn input_rules_do_not_apply_to_results() {
        let r = rules(&[("input/ssn", "regulated")]);
        let got = classify_value(&json!({"ssn": "x"}), Root::Result, &r);
        assert_eq!(got, vec![("/ssn".to_string(), r.default_class())]);
    }

    #[test]
    fn bad_paths_and_classes_are_errors() {
        let map = [("output/x".to_string(), "internal".to_string())].into();
        assert!(FieldRules::new(&map, &DataClasses::default(), "internal").is_err());
        let map = [("result/x".to_string(), "secret".to_string())].into();
        assert!(FieldRules::new(&map, &DataClasses::default(), "internal").is_err());
    }

    #[test]
    fn pointer_escapes_round_trip() {
        let r = rules(&[("result/a~1b", "regulated")]);
        let got = classify_value(&json!({"a/b": 1}), Root::Result, &r);
        assert_eq!(
            got,
            vec![(
                "/a~1b".to_string(),
                DataClasses::default().level("regulated").unwrap()
            )]
        );
    }
}
