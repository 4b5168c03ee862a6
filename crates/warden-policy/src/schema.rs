//! The Cedar schema Warden generates from the config and the tool catalog.
//!
//! The schema is written as Cedar schema text first and then parsed by Cedar: the text is what
//! `warden schema` prints, so what people read is exactly what policies are validated against.
//! Every catalog tool becomes one action whose context carries `input`, the tool's arguments typed
//! from its JSON input schema, so a policy that names a missing tool or argument fails validation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use cedar_policy::Schema;
use warden_core::{Catalog, Config, Diagnostic, Diagnostics, RiskTier, ToolName};

/// The Cedar namespace of everything Warden generates.
pub const NAMESPACE: &str = "Warden";

/// Deeper JSON schemas are cut off here: argument trees that deep are not something a policy can
/// sensibly test, and the cut-off bounds recursion when converting arguments.
const MAX_DEPTH: usize = 32;

/// The Cedar type of a tool argument, derived from its JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputType {
    String,
    Long,
    Bool,
    /// JSON `number`: a Cedar `decimal` (four fractional digits).
    Decimal,
    Set(Box<InputType>),
    Record(Vec<Field>),
}

/// One attribute of a record type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// Listed in the JSON Schema's `required`.
    pub required: bool,
    pub ty: InputType,
}

impl InputType {
    /// The Cedar type of a JSON Schema, or `None` when it has no single Cedar equivalent (no
    /// `type`, `anyOf`/`oneOf`/`allOf`, a list of types, an object without `properties`): such
    /// arguments are left out of the typed input, and so are invisible to policies.
    pub fn from_json_schema(schema: &serde_json::Value) -> Option<InputType> {
        Self::convert(schema, 0)
    }

    /// The typed input of a tool: its schema as a record, or an empty record when the schema
    /// does not describe an object with properties.
    pub fn tool_input(schema: &serde_json::Value) -> InputType {
        match Self::from_json_schema(schema) {
            Some(record @ InputType::Record(_)) => record,
            _ => InputType::Record(Vec::new()),
        }
    }

    fn convert(schema: &serde_json::Value, depth: usize) -> Option<InputType> {
        if depth > MAX_DEPTH {
            return None;
        }
        let obj = schema.as_object()?;
        let is_combinator = ["anyOf", "oneOf", "allOf", "$ref"]
            .iter()
            .any(|k| obj.contains_key(*k));
        if is_combinator {
            return None;
        }
        match obj.get("type")?.as_str()? {
            "string" => Some(InputType::String),
            "integer" => Some(InputType::Long),
            "boolean" => Some(InputType::Bool),
            "number" => Some(InputType::Decimal),
            "array" => {
                let items = Self::convert(obj.get("items")?, depth + 1)?;
                Some(InputType::Set(Box::new(items)))
            }
            "object" => Self::record(obj, depth),
            _ => None,
        }
    }

    fn record(obj: &serde_json::Map<String, serde_json::Value>, depth: usize) -> Option<InputType> {
        let properties = obj.get("properties")?.as_object()?;
        let required: BTreeSet<&str> = obj
            .get("required")
            .and_then(serde_json::Value::as_array)
            .map(|names| names.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        let fields = properties
            .iter()
            .filter_map(|(name, sub)| {
                let ty = Self::convert(sub, depth + 1)?;
                Some(Field {
                    name: name.clone(),
                    required: required.contains(name.as_str()),
                    ty,
                })
            })
            .collect();
        Some(InputType::Record(fields))
    }

    /// Write this type in Cedar schema syntax; records span lines indented by `indent`.
    fn write_cedar(&self, out: &mut String, indent: usize) {
        match self {
            InputType::String => out.push_str("String"),
            InputType::Long => out.push_str("Long"),
            InputType::Bool => out.push_str("Bool"),
            InputType::Decimal => out.push_str("decimal"),
            InputType::Set(item) => {
                out.push_str("Set<");
                item.write_cedar(out, indent);
                out.push('>');
            }
            InputType::Record(fields) if fields.is_empty() => out.push_str("{}"),
            InputType::Record(fields) => {
                out.push_str("{\n");
                for (i, f) in fields.iter().enumerate() {
                    push_indent(out, indent + 1);
                    out.push_str(&attr_name(&f.name));
                    if !f.required {
                        out.push('?');
                    }
                    out.push_str(": ");
                    f.ty.write_cedar(out, indent + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                push_indent(out, indent);
                out.push('}');
            }
        }
    }
}

/// The generated schema: Cedar's parsed form, its text, and each tool's typed input.
#[derive(Debug, Clone)]
pub struct GeneratedSchema {
    schema: Schema,
    text: String,
    inputs: BTreeMap<ToolName, InputType>,
}

impl GeneratedSchema {
    /// The schema in Cedar schema syntax (what `warden schema` prints).
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
    /// The typed `context.input` of a tool.
    pub fn input_type(&self, tool: &ToolName) -> Option<&InputType> {
        self.inputs.get(tool)
    }
}

impl fmt::Display for GeneratedSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Generate the Cedar schema for a config and the tools its upstreams offer.
pub fn generate_schema(config: &Config, catalog: &Catalog) -> Result<GeneratedSchema, Diagnostics> {
    let inputs: BTreeMap<ToolName, InputType> = catalog
        .iter()
        .map(|t| (t.name.clone(), InputType::tool_input(&t.input_schema)))
        .collect();
    let text = schema_text(config, catalog, &inputs);
    let schema = match Schema::from_cedarschema_str(&text) {
        Ok((schema, _warnings)) => schema,
        // Only a bug in the generator gets here; report it rather than panic.
        Err(e) => {
            let message = format!("the generated Cedar schema is invalid (a Warden bug): {e}");
            return Err(Diagnostic::new(&config.path, 0, 0, message).into());
        }
    };
    Ok(GeneratedSchema {
        schema,
        text,
        inputs,
    })
}

/// The action group every tool of `upstream` belongs to.
pub fn upstream_group(upstream: &str) -> String {
    format!("upstream:{upstream}")
}

/// The action group every tool of a risk tier belongs to.
pub fn risk_group(risk: RiskTier) -> String {
    format!("risk:{}", risk.as_str())
}

/// The numeric rank of a risk tier (`read` = 0 … `critical` = 3), for comparisons in policies.
pub fn risk_level(risk: RiskTier) -> i64 {
    match risk {
        RiskTier::Read => 0,
        RiskTier::Low => 1,
        RiskTier::High => 2,
        RiskTier::Critical => 3,
    }
}

const HEADER: &str = r#"// Generated by Warden from the config and the upstreams' tool schemas.
// Policies refer to these names with the namespace, e.g. Warden::Action::"crm.get_customer".
namespace Warden {
  entity Role;
  entity User in [Role];
  entity Agent in [Role] = {
    owner: String,
    purpose: String,
    mode: String,
    // rank of the agent's data class in [classes].order; 0 = least sensitive
    clearance: Long,
    clearance_name: String,
    delegation: Bool
  };
  entity Upstream = {
    vendor: String,
    trusted: Bool,
    vendor_clearance: Long
  };
  entity Tool in [Upstream] = {
    name: String,
    upstream: String,
    risk: String,
    // read = 0, low = 1, high = 2, critical = 3
    risk_level: Long,
    reversible: Bool,
    // the vendor of the tool's upstream, and the rank of the most sensitive class it may receive
    vendor: String,
    vendor_clearance: Long
  };

  // UTC; weekday: Monday = 1 ... Sunday = 7
  type Time = { unix: Long, hour: Long, weekday: Long };
  type Task = { id: String, tools: Set<String>, max_clearance: Long };
"#;

fn schema_text(
    config: &Config,
    catalog: &Catalog,
    inputs: &BTreeMap<ToolName, InputType>,
) -> String {
    let mut out = String::from(HEADER);
    write_session_type(&mut out, catalog);
    out.push_str(
        "  // action groups: every tool is in its upstream's group and its risk tier's group\n",
    );
    for upstream in upstream_names(config, catalog) {
        let _ = writeln!(out, "  action {};", quote(&upstream_group(&upstream)));
    }
    for risk in RiskTier::ALL {
        let _ = writeln!(out, "  action {};", quote(&risk_group(risk)));
    }
    for tool in catalog.iter() {
        let empty = InputType::Record(Vec::new());
        let input = inputs.get(&tool.name).unwrap_or(&empty);
        out.push('\n');
        write_tool_action(&mut out, &tool.name, tool.risk, input);
    }
    out.push_str("}\n");
    out
}

/// Upstreams that get an action group: the configured ones (so policies may name an upstream
/// whose tools are not discovered yet) and any the catalog mentions.
pub(crate) fn upstream_names(config: &Config, catalog: &Catalog) -> BTreeSet<String> {
    let configured = config.upstreams.iter().map(|u| u.name.clone());
    let discovered = catalog.iter().map(|t| t.name.upstream().to_owned());
    configured.chain(discovered).collect()
}

fn write_tool_action(out: &mut String, name: &ToolName, risk: RiskTier, input: &InputType) {
    let groups = [upstream_group(name.upstream()), risk_group(risk)];
    let _ = writeln!(
        out,
        "  action {} in [{}, {}] appliesTo {{",
        quote(name.as_str()),
        quote(&groups[0]),
        quote(&groups[1])
    );
    out.push_str(
        "    principal: [Agent, User],\n    resource: [Tool],\n    context: {\n      input: ",
    );
    input.write_cedar(out, 3);
    out.push_str(concat!(
        ",\n",
        "      mode: String,\n",
        "      time: Time,\n",
        "      user?: String,\n",
        "      task?: Task,\n",
        "      session: Session,\n",
        "      approved: Bool,\n",
        "      approvers: Set<String>,\n",
        "      // data classes in the arguments (fields and detected values), the rank of the\n",
        "      // most sensitive, and what detectors found (e.g. \"dlp.payment_card\")\n",
        "      classes: Set<String>,\n",
        "      class_level: Long,\n",
        "      findings: Set<String>\n",
        "    }\n",
        "  };\n"
    ));
}

/// `type Session`: what the agent's session did before this call; `counts` has one attribute
/// per catalog tool, so `context.session.counts["payments.refund"]` is checked like an action.
fn write_session_type(out: &mut String, catalog: &Catalog) {
    out.push_str(concat!(
        "\n  // what the agent's session did before this call (calls that reached their upstream):\n",
        "  // id (\"\" outside a session), calls, tools called, calls per tool, data classes seen\n",
        "  // in arguments and results (and the rank of the most sensitive), findings in results\n",
        "  // (\"injection.<indicator>\", \"untrusted_output\"), and whether untrusted content was seen\n",
        "  type Session = {\n",
        "    id: String,\n",
        "    calls: Long,\n",
        "    tools: Set<String>,\n",
        "    counts: ",
    ));
    let fields: Vec<Field> = catalog
        .iter()
        .map(|t| Field {
            name: t.name.as_str().to_owned(),
            required: true,
            ty: InputType::Long,
        })
        .collect();
    InputType::Record(fields).write_cedar(out, 2);
    out.push_str(concat!(
        ",\n",
        "    classes: Set<String>,\n",
        "    class_level: Long,\n",
        "    findings: Set<String>,\n",
        "    untrusted: Bool\n",
        "  };\n\n",
    ));
}

fn push_indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// A record attribute name: bare when it is a plain identifier, quoted otherwise (so argument
/// names like `customer-id` or `in` still work).
fn attr_name(name: &str) -> String {
    const RESERVED: [&str; 14] = [
        "true",
        "false",
        "if",
        "then",
        "else",
        "in",
        "is",
        "like",
        "has",
        "principal",
        "action",
        "resource",
        "context",
        "__cedar",
    ];
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name);
    if plain { name.to_owned() } else { quote(name) }
}

/// A Cedar string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_schema_scalars_map_to_cedar_types() {
        let t = |s| InputType::from_json_schema(&s);
        assert_eq!(t(json!({"type": "string"})), Some(InputType::String));
        assert_eq!(t(json!({"type": "integer"})), Some(InputType::Long));
        assert_eq!(t(json!({"type": "boolean"})), Some(InputType::Bool));
        assert_eq!(t(json!({"type": "number"})), Some(InputType::Decimal));
        assert_eq!(
            t(json!({"type": "array", "items": {"type": "string"}})),
            Some(InputType::Set(Box::new(InputType::String)))
        );
    }

    #[test]
    fn schemas_without_a_single_cedar_type_are_left_out() {
        for s in [
            json!({}),
            json!({"type": ["string", "null"]}),
            json!({"anyOf": [{"type": "string"}]}),
            json!({"type": "string", "oneOf": [{"minLength": 1}]}),
            json!({"type": "object"}),
            json!({"type": "array"}),
            json!({"type": "null"}),
        ] {
            assert_eq!(InputType::from_json_schema(&s), None, "{s}");
        }
    }

    #[test]
    fn a_property_is_required_only_when_listed() {
        let s = json!({"type": "object", "required": ["a"],
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {}}});
        let InputType::Record(fields) = InputType::tool_input(&s) else {
            panic!("not a record")
        };
        assert_eq!(fields.len(), 2, "untyped `c` is left out");
        assert!(fields[0].required && !fields[1].required);
    }

    #[test]
    fn odd_attribute_names_are_quoted() {
        assert_eq!(attr_name("amount"), "amount");
        assert_eq!(attr_name("customer-id"), "\"customer-id\"");
        assert_eq!(attr_name("in"), "\"in\"");
        assert_eq!(attr_name("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
