//! Data protection for the pipeline: detectors and field rules built once from the config, and
//! the three uses the stages make of them:
//!
//! - `authorize` classifies the arguments first ([`Protection::classify`]) so policies can test
//!   `context.classes` and `context.findings`;
//! - `minimize` rewrites (or refuses) what the destination vendor may not receive
//!   ([`Protection::inspect_arguments`]);
//! - `inspect` checks a result before the agent sees it ([`Protection::inspect_result`],
//!   [`Protection::project_result`]).
//!
//! Everything here reports kinds and counts, never values.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use warden_core::config::{Config, ExcessAction, OutputCheck};
use warden_core::{ClassLevel, DataClasses, Finding, ToolName};
use warden_dlp::{
    CustomDetector, DetectorKind, DlpConfig, DlpError, FieldAction, FieldRules, Inspection,
    Inspector, PseudonymKey, Root, Scanner, classify_value, keep_only,
};

/// The label of the pseudonym key derived from the digest key.
pub const PSEUDONYM_KEY_LABEL: &str = "dlp pseudonym";

/// Why data protection could not do its job. The call fails closed.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// The detectors or rules could not be built from the config (`warden check` reports the
    /// same problems with their lines); every call fails until the config is fixed.
    #[error("data protection is unavailable: {0}")]
    Unavailable(String),
    #[error("data protection: {0}")]
    Dlp(#[from] DlpError),
}

/// One tool's data settings, ready to apply.
#[derive(Debug)]
pub struct ToolRules {
    pub rules: FieldRules,
    /// What happens above a receiver's clearance (the tool's `on_excess`).
    pub action: FieldAction,
    /// JSON Pointers into the result (`result/a/b` is `/a/b`), when the tool has a projection.
    pub projection: Option<Vec<String>>,
    pub output: OutputCheck,
}

/// What the arguments of a call hold, found before authorization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgumentData {
    /// Data classes present (fields and detected values), least sensitive first.
    pub classes: Vec<String>,
    /// Detector finding kinds present (`dlp.payment_card`, ...).
    pub kinds: Vec<String>,
    /// The most sensitive class present; `None` for no arguments.
    pub level: Option<ClassLevel>,
    /// The same as audit findings (all `flagged`).
    pub findings: Vec<Finding>,
}

/// The detectors and rules of a deployment.
#[derive(Debug)]
pub struct Protection {
    built: Result<Built, String>,
}

#[derive(Debug)]
struct Built {
    classes: DataClasses,
    scanner: Scanner,
    /// Scanners for vendors with `receives`: those kinds are classed at the vendor's clearance.
    vendor_scanners: HashMap<String, Scanner>,
    tools: HashMap<ToolName, ToolRules>,
    /// For tools the config does not name.
    fallback: ToolRules,
    allowed_hosts: Vec<String>,
}

impl Protection {
    /// Build everything from the config. `pseudonym_key` keys `on_excess = "pseudonym"`. A
    /// config that passed validation builds; should it not, every call fails closed with the
    /// reason (it is never logged with a value).
    pub fn new(config: &Config, pseudonym_key: &[u8]) -> Self {
        let built = Built::new(config, pseudonym_key).map_err(|e| e.to_string());
        if let Err(e) = &built {
            tracing::error!(error = %e, "data protection could not be built; every call will fail");
        }
        Self { built }
    }

    fn built(&self) -> Result<&Built, ProtectionError> {
        self.built
            .as_ref()
            .map_err(|e| ProtectionError::Unavailable(e.clone()))
    }

    /// The settings of `tool` (the defaults for a tool the config does not name).
    pub fn tool(&self, tool: &ToolName) -> Result<&ToolRules, ProtectionError> {
        Ok(self.built()?.tool(tool))
    }

    /// The rank of a class name; an unknown name ranks lowest (it grants the least).
    pub fn level(&self, class: &str) -> Result<ClassLevel, ProtectionError> {
        Ok(self.built()?.classes.level(class).unwrap_or(ClassLevel(0)))
    }

    /// The name of a class rank.
    pub fn class_name(&self, level: ClassLevel) -> Result<String, ProtectionError> {
        Ok(self.built()?.classes.name(level).to_owned())
    }

    /// Classify a call's arguments: the classes of their fields (by the tool's `input/...`
    /// rules, else the default class) and of every value a detector finds in them.
    pub fn classify(
        &self,
        tool: &ToolName,
        input: &Map<String, Value>,
    ) -> Result<ArgumentData, ProtectionError> {
        let b = self.built()?;
        if input.is_empty() {
            return Ok(ArgumentData::default());
        }
        let t = b.tool(tool);
        let mut value = Value::Object(input.clone());
        let mut levels: BTreeSet<ClassLevel> = classify_value(&value, Root::Input, &t.rules)
            .into_iter()
            .map(|(_, level)| level)
            .collect();
        // Cleared for everything, so nothing is rewritten: every detected value is counted.
        let inspector = Inspector {
            scanner: &b.scanner,
            rules: &t.rules,
            clearance: b.classes.highest(),
            action: &FieldAction::Mask,
            allowed_hosts: &[],
        };
        let inspection = warden_dlp::inspect_arguments(&mut value, &inspector)?;
        let mut kinds = BTreeSet::new();
        for (kind, _, _) in inspection.data.iter() {
            if let Some(level) = b.finding_level(&b.scanner, kind) {
                levels.insert(level);
                if kind.starts_with("dlp.") {
                    kinds.insert(kind.to_owned());
                }
            }
        }
        Ok(ArgumentData {
            classes: levels
                .iter()
                .map(|l| b.classes.name(*l).to_owned())
                .collect(),
            kinds: kinds.into_iter().collect(),
            level: levels.last().copied(),
            findings: inspection.findings(),
        })
    }

    /// The data class of a finding kind (`field.<class>`, `dlp.<kind>`), when it has one.
    pub fn class_of_finding(&self, kind: &str) -> Result<Option<String>, ProtectionError> {
        let b = self.built()?;
        Ok(b.finding_level(&b.scanner, kind)
            .map(|l| b.classes.name(l).to_owned()))
    }

    /// Rewrite the arguments for `vendor`, cleared up to `clearance`: fields and values above it
    /// get the tool's `on_excess`; kinds the vendor `receives` pass.
    pub fn inspect_arguments(
        &self,
        tool: &ToolName,
        vendor: &str,
        clearance: ClassLevel,
        arguments: &mut Value,
    ) -> Result<Inspection, ProtectionError> {
        let b = self.built()?;
        let t = b.tool(tool);
        let inspector = Inspector {
            scanner: b.vendor_scanners.get(vendor).unwrap_or(&b.scanner),
            rules: &t.rules,
            clearance,
            action: &t.action,
            allowed_hosts: &[],
        };
        Ok(warden_dlp::inspect_arguments(arguments, &inspector)?)
    }

    /// The classes (names, least sensitive first) of what an inspection for `vendor` (or for
    /// an agent, with `None`) changed: what was above the clearance.
    pub fn excess_classes(
        &self,
        vendor: Option<&str>,
        inspection: &Inspection,
    ) -> Result<Vec<String>, ProtectionError> {
        let b = self.built()?;
        let scanner = vendor
            .and_then(|v| b.vendor_scanners.get(v))
            .unwrap_or(&b.scanner);
        let levels: BTreeSet<ClassLevel> = inspection
            .data
            .iter()
            .filter(|(_, action, _)| *action != warden_dlp::Action::Flagged)
            .filter_map(|(kind, _, _)| b.finding_level(scanner, kind))
            .collect();
        Ok(levels
            .iter()
            .map(|l| b.classes.name(*l).to_owned())
            .collect())
    }

    /// Inspect a result for an agent cleared up to `clearance`: field rules, detectors and
    /// injection indicators (see [`warden_dlp::inspect_call_tool_result`]).
    pub fn inspect_result(
        &self,
        tool: &ToolName,
        clearance: ClassLevel,
        result: &mut Value,
    ) -> Result<Inspection, ProtectionError> {
        let b = self.built()?;
        let t = b.tool(tool);
        let inspector = Inspector {
            scanner: &b.scanner,
            rules: &t.rules,
            clearance,
            action: &t.action,
            allowed_hosts: &b.allowed_hosts,
        };
        Ok(warden_dlp::inspect_call_tool_result(result, &inspector)?)
    }

    /// The most sensitive data class in a result as the upstream returned it (what the
    /// evidence vault keeps it under): everything field rules and detectors would take away
    /// from a party cleared for nothing, on a copy. The least sensitive class when none.
    pub fn result_class(&self, tool: &ToolName, result: &Value) -> Result<String, ProtectionError> {
        let b = self.built()?;
        let mut copy = result.clone();
        let lowest = ClassLevel(0);
        let inspection = self.inspect_result(tool, lowest, &mut copy)?;
        let classes = self.excess_classes(None, &inspection)?;
        Ok(classes
            .last()
            .cloned()
            .unwrap_or_else(|| b.classes.name(lowest).to_owned()))
    }

    /// Redact evidence for a reader cleared up to `clearance` (`explain`): values and fields
    /// above it are masked, whatever the tool's `on_excess`. `result` selects the result's
    /// rules (`result/...`) over the arguments' (`input/...`).
    pub fn redact_for_reader(
        &self,
        tool: &ToolName,
        clearance: ClassLevel,
        value: &mut Value,
        result: bool,
    ) -> Result<u32, ProtectionError> {
        let b = self.built()?;
        let t = b.tool(tool);
        let inspector = Inspector {
            scanner: &b.scanner,
            rules: &t.rules,
            clearance,
            action: &FieldAction::Mask,
            allowed_hosts: &[],
        };
        let inspection = if result && value.is_object() {
            warden_dlp::inspect_call_tool_result(value, &inspector)?
        } else {
            warden_dlp::inspect_arguments(value, &inspector)?
        };
        Ok(inspection.changed())
    }

    /// Apply the tool's projection to a successful result, if it has one: `structuredContent`
    /// and JSON text blocks keep only the listed parts; other blocks (free text, images,
    /// resources), which a projection cannot reach into, are removed; when no text block is
    /// left, the projected structured content is added as one (the MCP convention). Returns
    /// whether a projection applied.
    pub fn project_result(
        &self,
        tool: &ToolName,
        result: &mut Value,
    ) -> Result<bool, ProtectionError> {
        let Some(paths) = &self.tool(tool)?.projection else {
            return Ok(false);
        };
        let Some(obj) = result.as_object_mut() else {
            return Ok(false);
        };
        if let Some(structured) = obj.get_mut("structuredContent") {
            keep_only(structured, paths)?;
        }
        let mut blocks = Vec::new();
        if let Some(Value::Array(content)) = obj.get_mut("content") {
            for block in content.drain(..) {
                let Some(text) = block.get("text").and_then(Value::as_str) else {
                    continue;
                };
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    continue;
                }
                let Some(mut json) = parse_json_text(text) else {
                    continue;
                };
                keep_only(&mut json, paths)?;
                blocks.push(text_block(render_like(&json, text)));
            }
        }
        if blocks.is_empty()
            && let Some(structured) = obj.get("structuredContent")
        {
            blocks.push(text_block(render_like(structured, "")));
        }
        obj.insert("content".into(), Value::Array(blocks));
        Ok(true)
    }
}

impl Built {
    fn new(config: &Config, pseudonym_key: &[u8]) -> Result<Self, DlpError> {
        let dlp = &config.dlp;
        let base = DlpConfig {
            classes: config.classes.clone(),
            detector_classes: dlp.detector_classes.clone(),
            disabled: dlp.disabled.iter().cloned().collect(),
            custom: dlp
                .detectors
                .iter()
                .map(|d| CustomDetector {
                    name: d.name.clone(),
                    pattern: d.pattern.clone(),
                    class: d.class.clone(),
                    keywords: d.keywords.clone(),
                })
                .collect(),
            ..DlpConfig::default()
        };
        let scanner = Scanner::new(&base)?;
        let mut vendor_scanners = HashMap::new();
        for vendor in config.vendors.iter().filter(|v| !v.receives.is_empty()) {
            let mut c = base.clone();
            for kind in &vendor.receives {
                c.detector_classes
                    .insert(kind.clone(), vendor.cleared.clone());
            }
            vendor_scanners.insert(vendor.name.clone(), Scanner::new(&c)?);
        }
        let key = PseudonymKey::new(pseudonym_key)?;
        let classes = config.classes.clone();
        let mut tools = HashMap::new();
        for t in &config.tools {
            let rules = FieldRules::new(&t.classify, &classes, &config.default_class)?;
            let action = match t.on_excess {
                ExcessAction::Drop => FieldAction::Drop,
                ExcessAction::Mask => FieldAction::Mask,
                ExcessAction::Pseudonym => FieldAction::Pseudonym(key.clone()),
            };
            let projection = t.projection.as_ref().map(|paths| {
                paths
                    .iter()
                    .map(|p| {
                        let rest = p.strip_prefix("result").unwrap_or(p);
                        rest.to_owned()
                    })
                    .collect()
            });
            tools.insert(
                t.name.clone(),
                ToolRules {
                    rules,
                    action,
                    projection,
                    output: t.output,
                },
            );
        }
        let fallback = ToolRules {
            rules: FieldRules::unclassified(&classes, &config.default_class)?,
            action: FieldAction::Mask,
            projection: None,
            output: OutputCheck::default(),
        };
        Ok(Self {
            classes,
            scanner,
            vendor_scanners,
            tools,
            fallback,
            allowed_hosts: dlp.allowed_link_hosts.clone(),
        })
    }

    fn tool(&self, tool: &ToolName) -> &ToolRules {
        self.tools.get(tool).unwrap_or(&self.fallback)
    }

    /// The class of a finding kind: `field.<class>`, or a detector's (`dlp.<name>`) class in
    /// `scanner`. `None` for other kinds (injection indicators).
    fn finding_level(&self, scanner: &Scanner, kind: &str) -> Option<ClassLevel> {
        if let Some(class) = kind.strip_prefix("field.") {
            return Some(self.classes.level(class).unwrap_or(self.classes.highest()));
        }
        let name = kind.strip_prefix("dlp.")?;
        let detector =
            DetectorKind::builtin(name).unwrap_or_else(|| DetectorKind::Custom(name.into()));
        Some(
            scanner
                .class_of(&detector)
                .unwrap_or(self.classes.highest()),
        )
    }
}

/// A text block's JSON, when it holds a JSON object or array.
pub(crate) fn parse_json_text(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// `value` as JSON text, pretty when `like` was (it spans lines).
pub(crate) fn render_like(value: &Value, like: &str) -> String {
    let rendered = if like.contains('\n') {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // Rendering a `Value` cannot fail; if it ever did, nothing of it is shown.
    rendered.unwrap_or_else(|_| "[REDACTED]".to_owned())
}

pub(crate) fn text_block(text: String) -> Value {
    serde_json::json!({ "type": "text", "text": text })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    const CONFIG: &str = r#"
[[vendors]]
name = "internal"
cleared = "restricted"

[[vendors]]
name = "mailco"
cleared = "internal"
receives = ["email"]

[[upstreams]]
name = "crm"
vendor = "internal"
command = ["crm"]

[[upstreams]]
name = "email"
vendor = "mailco"
command = ["email"]

[[tools]]
name = "crm.get_customer"
classify = { "result/ssn" = "regulated", "result/email" = "confidential", "input/customer_id" = "public" }

[[tools]]
name = "crm.search_customers"
projection = ["result/customers/*/id"]
on_excess = "drop"

[dlp]
allowed_link_hosts = ["docs.example.com"]

[[dlp.detectors]]
name = "employee_id"
pattern = 'EMP-\d{6}'
class = "confidential"
"#;

    fn config() -> Config {
        Config::parse(Path::new("warden.toml"), CONFIG).unwrap_or_else(|d| panic!("{d}"))
    }

    fn protection() -> Protection {
        Protection::new(&config(), &[9; 32])
    }

    fn name(s: &str) -> ToolName {
        s.parse().unwrap()
    }

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn arguments_are_classified_by_field_rules_and_detectors() {
        let p = protection();
        let none = p.classify(&name("crm.get_customer"), &Map::new()).unwrap();
        assert_eq!(none, ArgumentData::default());

        let public = p
            .classify(
                &name("crm.get_customer"),
                &args(json!({"customer_id": "C001"})),
            )
            .unwrap();
        assert_eq!(public.classes, ["public"]);
        assert!(public.kinds.is_empty());

        let data = p
            .classify(
                &name("email.send"),
                &args(
                    json!({"to": "a@example.com", "body": "card 4111 1111 1111 1111, EMP-123456"}),
                ),
            )
            .unwrap();
        assert_eq!(data.classes, ["internal", "confidential", "regulated"]);
        assert_eq!(
            data.kinds,
            ["dlp.email", "dlp.employee_id", "dlp.payment_card"]
        );
        assert_eq!(data.level, Some(ClassLevel(3)));
        assert!(
            data.findings
                .iter()
                .all(|f| f.action == "flagged" && f.location == "input")
        );
        assert!(
            !format!("{data:?}").contains("4111"),
            "kinds and classes, never values"
        );
    }

    #[test]
    fn a_vendor_gets_what_it_receives_and_nothing_above_its_clearance() {
        let p = protection();
        let mut arguments = json!({"to": "a@example.com", "body": "card 4111 1111 1111 1111"});
        let inspection = p
            .inspect_arguments(&name("email.send"), "mailco", ClassLevel(1), &mut arguments)
            .unwrap();
        assert_eq!(arguments["to"], "a@example.com");
        assert_eq!(arguments["body"], "card [REDACTED:regulated]");
        assert_eq!(inspection.changed(), 1);
        assert_eq!(
            p.excess_classes(Some("mailco"), &inspection).unwrap(),
            ["regulated"]
        );
        // Another vendor with the same clearance does not receive addresses.
        let mut arguments = json!({"to": "a@example.com"});
        p.inspect_arguments(&name("email.send"), "other", ClassLevel(1), &mut arguments)
            .unwrap();
        assert_eq!(arguments["to"], "[REDACTED:confidential]");
    }

    #[test]
    fn results_are_held_to_the_clearance_with_the_tools_action() {
        let p = protection();
        let mut result = json!({
            "content": [{"type": "text", "text": "{\"ssn\":\"123-45-6789\",\"email\":\"a@b.example\",\"id\":\"C1\"}"}],
            "structuredContent": {"ssn": "123-45-6789", "email": "a@b.example", "id": "C1"},
        });
        let inspection = p
            .inspect_result(&name("crm.get_customer"), ClassLevel(2), &mut result)
            .unwrap();
        assert_eq!(result["structuredContent"]["ssn"], "[REDACTED:regulated]");
        assert_eq!(result["structuredContent"]["email"], "a@b.example");
        assert!(!result.to_string().contains("6789"));
        assert!(!inspection.injection_found());

        let mut link = json!({"content": [{"type": "text", "text": "see [docs](https://docs.example.com/x) and [x](https://evil.example/y)"}]});
        let inspection = p
            .inspect_result(&name("crm.get_customer"), ClassLevel(4), &mut link)
            .unwrap();
        let kinds: Vec<&str> = inspection.injection.iter().map(|(k, _, _)| k).collect();
        assert_eq!(
            kinds,
            ["injection.external_link"],
            "one link is to an allowed host"
        );

        assert!(
            p.inspect_result(
                &name("crm.get_customer"),
                ClassLevel(4),
                &mut json!({"content": 1})
            )
            .is_err(),
            "a malformed result is an error (the stage withholds it)"
        );
    }

    #[test]
    fn a_projection_keeps_only_its_paths_and_drops_free_text() {
        let p = protection();
        let mut result = json!({
            "content": [
                {"type": "text", "text": "{\"customers\":[{\"id\":\"C1\",\"phone\":\"555\"}]}"},
                {"type": "text", "text": "Alice's phone is 555"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            ],
            "structuredContent": {"customers": [{"id": "C1", "phone": "555"}], "total": 1},
        });
        assert!(
            p.project_result(&name("crm.search_customers"), &mut result)
                .unwrap()
        );
        assert_eq!(
            result["structuredContent"],
            json!({"customers": [{"id": "C1"}]})
        );
        assert_eq!(
            result["content"],
            json!([{"type": "text", "text": "{\"customers\":[{\"id\":\"C1\"}]}"}])
        );
        let mut plain = json!({"content": [{"type": "text", "text": "free"}], "structuredContent": {"customers": []}});
        p.project_result(&name("crm.search_customers"), &mut plain)
            .unwrap();
        assert_eq!(plain["content"][0]["text"], "{\"customers\":[]}");
        let mut untouched = json!({"content": [{"type": "text", "text": "free"}]});
        assert!(
            !p.project_result(&name("crm.get_customer"), &mut untouched)
                .unwrap()
        );
        assert_eq!(untouched["content"][0]["text"], "free");
    }

    #[test]
    fn a_configuration_that_cannot_be_built_fails_every_call_closed() {
        let mut config = config();
        config.dlp.detectors[0].pattern = "(".into();
        let p = Protection::new(&config, &[9; 32]);
        let err = p
            .classify(
                &name("crm.get_customer"),
                &args(json!({"customer_id": "C1"})),
            )
            .unwrap_err();
        assert!(matches!(err, ProtectionError::Unavailable(_)), "{err}");
        assert!(
            p.inspect_result(
                &name("crm.get_customer"),
                ClassLevel(4),
                &mut json!({"content": []})
            )
            .is_err()
        );
        assert!(
            Protection::new(&super::tests::config(), &[])
                .tool(&name("crm.get_customer"))
                .is_err(),
            "an empty pseudonym key"
        );
    }
}
