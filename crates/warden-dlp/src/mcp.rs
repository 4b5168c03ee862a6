//! Whole-call inspection: a call's arguments on their way to a vendor, an MCP
//! `CallToolResult` on its way to an agent.
//!
//! Field rules apply first (to `structuredContent`, to JSON held in text blocks, to the
//! arguments); then detectors run over every string that is left (JSON string values with
//! their key as context, object keys, free text), rewriting what is above the clearance;
//! results are also scanned for injection indicators, which are flagged, never rewritten.

use serde_json::Value;
use warden_core::{ClassLevel, Finding};

use crate::classify::{FieldRules, MAX_DEPTH, Root};
use crate::injection::scan_injection;
use crate::project::{FieldAction, project};
use crate::redact::{Action, Tally, redact_text};
use crate::scanner::Scanner;

/// Everything an inspection needs: the detectors, the tool's field rules, whom the data is
/// for (their clearance and what to do above it) and, for results, the hosts links may
/// point to.
#[derive(Debug, Clone, Copy)]
pub struct Inspector<'a> {
    pub scanner: &'a Scanner,
    pub rules: &'a FieldRules,
    pub clearance: ClassLevel,
    pub action: &'a FieldAction,
    pub allowed_hosts: &'a [String],
}

/// What an inspection found and did (kinds and counts, never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// `input` (arguments) or `result`.
    pub location: Root,
    /// Fields (`field.<class>`) and detected values (`dlp.<kind>`).
    pub data: Tally,
    /// Injection indicators (`injection.<kind>`), all flagged.
    pub injection: Tally,
}

impl Inspection {
    fn new(location: Root) -> Self {
        Self {
            location,
            data: Tally::default(),
            injection: Tally::default(),
        }
    }

    /// Findings for the audit event.
    pub fn findings(&self) -> Vec<Finding> {
        let at = self.location.as_str();
        let mut out = self.data.findings(at);
        out.extend(self.injection.findings(at));
        out
    }

    /// Whether any injection indicator was seen.
    pub fn injection_found(&self) -> bool {
        !self.injection.is_empty()
    }

    /// How many fields or values were dropped, masked or pseudonymised.
    pub fn changed(&self) -> u32 {
        self.data.changed()
    }
}

/// Inspect a `CallToolResult` in place: field rules on `structuredContent` and on text
/// blocks holding JSON (parsed, projected, re-serialised), detectors on every remaining
/// string, injection indicators flagged. Text and embedded resource text are handled;
/// images, audio and blobs pass untouched. Errors when the value is not a result object or
/// its `content` is not an array (fail closed: the caller should withhold the result).
pub fn inspect_call_tool_result(
    result: &mut Value,
    inspector: &Inspector<'_>,
) -> Result<Inspection, crate::DlpError> {
    let obj = result
        .as_object_mut()
        .ok_or(crate::DlpError::MalformedResult(
            "the result is not an object",
        ))?;
    let mut report = Inspection::new(Root::Result);
    let mut run = Run {
        inspector,
        report: &mut report,
        flag_injection: true,
    };
    if let Some(structured) = obj.get_mut("structuredContent") {
        run.json(structured);
    }
    match obj.get_mut("content") {
        None => {}
        Some(Value::Array(blocks)) => {
            for block in blocks {
                run.block(block);
            }
        }
        Some(_) => {
            return Err(crate::DlpError::MalformedResult(
                "`content` is not an array",
            ));
        }
    }
    Ok(report)
}

/// Inspect a call's arguments in place, for the destination vendor's clearance: field rules
/// for `input/...`, then detectors on every string. No injection scan (arguments come from
/// the agent, not to it).
pub fn inspect_arguments(
    arguments: &mut Value,
    inspector: &Inspector<'_>,
) -> Result<Inspection, crate::DlpError> {
    let mut report = Inspection::new(Root::Input);
    let mut run = Run {
        inspector,
        report: &mut report,
        flag_injection: false,
    };
    run.json(arguments);
    Ok(report)
}

struct Run<'i, 'a> {
    inspector: &'i Inspector<'a>,
    report: &'i mut Inspection,
    flag_injection: bool,
}

impl Run<'_, '_> {
    fn block(&mut self, block: &mut Value) {
        let Some(obj) = block.as_object_mut() else {
            return;
        };
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let text = match kind {
            "text" => obj.get_mut("text"),
            "resource" => obj
                .get_mut("resource")
                .and_then(Value::as_object_mut)
                .and_then(|r| r.get_mut("text")),
            _ => None,
        };
        if let Some(Value::String(text)) = text {
            self.text_block(text);
        }
    }

    /// A text block: JSON is projected like structured content; anything else is free text.
    fn text_block(&mut self, text: &mut String) {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(mut value) = serde_json::from_str::<Value>(text)
        {
            self.json(&mut value);
            let pretty = text.contains('\n');
            let rendered = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            };
            // Rendering a `Value` cannot fail; if it ever did, withhold the block.
            *text = rendered.unwrap_or_else(|_| "[REDACTED]".to_owned());
            return;
        }
        self.free_text("", text);
    }

    /// Field rules, then detectors over what is left.
    fn json(&mut self, value: &mut Value) {
        let i = self.inspector;
        let tally = project(value, self.report.location, i.rules, i.clearance, i.action);
        self.report.data.merge(tally);
        self.strings(value, "", 0);
    }

    /// Detectors over every string (and number) under `value`; `key` is its member name.
    fn strings(&mut self, value: &mut Value, key: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::String(s) => {
                self.free_text(key, s);
            }
            Value::Number(n) => {
                let mut text = n.to_string();
                if self.free_text(key, &mut text) {
                    *value = Value::String(text);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.strings(v, key, depth + 1);
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.strings(v, k, depth + 1);
                }
                self.keys(map);
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// Object keys can hold data too (`{"alice@example.com": ...}`): rename or drop them.
    fn keys(&mut self, map: &mut serde_json::Map<String, Value>) {
        let renames: Vec<(String, String)> = map
            .keys()
            .filter_map(|k| {
                let mut new = k.clone();
                self.redact("", &mut new).then(|| (k.clone(), new))
            })
            .collect();
        for (old, new) in renames {
            if let Some(v) = map.remove(&old)
                && !new.is_empty()
            {
                map.insert(new, v);
            }
        }
    }

    /// Detectors (and, for results, injection indicators) over one string, rewritten in
    /// place. Returns whether it changed.
    fn free_text(&mut self, key: &str, text: &mut String) -> bool {
        if self.flag_injection {
            for f in scan_injection(text, self.inspector.allowed_hosts) {
                self.report
                    .injection
                    .add(&f.kind.finding_kind(), Action::Flagged);
            }
        }
        self.redact(key, text)
    }

    fn redact(&mut self, key: &str, text: &mut String) -> bool {
        let i = self.inspector;
        let spans = i.scanner.scan_field(key, text);
        if spans.is_empty() {
            return false;
        }
        let (out, tally) = redact_text(text, &spans, i.clearance, i.action, i.scanner.classes());
        let changed = tally.changed() > 0;
        self.report.data.merge(tally);
        if changed {
            *text = out;
        }
        changed
    }
}
