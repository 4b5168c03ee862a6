//! Undo argument templates: a compensating call's arguments, written over the original call's
//! arguments (`input`) and result (`result`).
//!
//! A string that is exactly one placeholder, `"{{result.refund_id}}"`, becomes the value at that
//! path with its JSON type kept (a number stays a number); placeholders inside a longer string,
//! `"undo of {{input.customer_id}}"`, are replaced by their text. Paths are dotted: members by
//! name, array elements by index (`result.items.0.id`). `result` is the original result's
//! structured content (`structuredContent`, else its first text block parsed as JSON). A path
//! that leads nowhere is an error naming it: the compensation is not guessed.

use serde_json::{Map, Value};

/// Why a template could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("placeholder `{{{{{0}}}}}` must start with `input.` or `result.`")]
    UnknownRoot(String),
    #[error("placeholder `{{{{{0}}}}}` names nothing in the original call")]
    Missing(String),
    #[error("an unclosed `{{{{` in `{0}`")]
    Unclosed(String),
}

/// What placeholders may refer to.
pub struct Sources<'a> {
    pub input: &'a Value,
    /// The original result's structured content, when it had one.
    pub result: Option<&'a Value>,
}

/// The structured content of an MCP `CallToolResult`: `structuredContent`, else the first text
/// block if it is JSON.
pub fn structured(result: &Value) -> Option<Value> {
    if let Some(s) = result.get("structuredContent")
        && !s.is_null()
    {
        return Some(s.clone());
    }
    result
        .get("content")?
        .as_array()?
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .find_map(|b| serde_json::from_str(b.get("text")?.as_str()?).ok())
}

/// Fill every placeholder in `template`.
pub fn fill(template: &Value, sources: &Sources<'_>) -> Result<Value, TemplateError> {
    Ok(match template {
        Value::String(s) => fill_string(s, sources)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| fill(v, sources))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), fill(v, sources)?)))
                .collect::<Result<Map<_, _>, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// The placeholders' paths in `template`, for checking a recipe before it is needed.
pub fn placeholders(template: &Value) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    collect(template, &mut out)?;
    Ok(out)
}

fn collect(template: &Value, out: &mut Vec<String>) -> Result<(), TemplateError> {
    match template {
        Value::String(s) => {
            for piece in split(s)? {
                if let Piece::Path(p) = piece {
                    out.push(p.to_owned());
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                collect(v, out)?;
            }
        }
        Value::Object(map) => {
            for v in map.values() {
                collect(v, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

enum Piece<'a> {
    Text(&'a str),
    Path(&'a str),
}

fn split(s: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(s.to_owned()))?;
        pieces.push(Piece::Path(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

fn fill_string(s: &str, sources: &Sources<'_>) -> Result<Value, TemplateError> {
    let pieces = split(s)?;
    if let [Piece::Path(path)] = pieces.as_slice() {
        return lookup(path, sources).cloned();
    }
    let mut out = String::with_capacity(s.len());
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Path(path) => match lookup(path, sources)? {
                Value::String(v) => out.push_str(v),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

fn lookup<'a>(path: &str, sources: &Sources<'a>) -> Result<&'a Value, TemplateError> {
    let mut parts = path.split('.');
    let mut at = match parts.next() {
        Some("input") => sources.input,
        Some("result") => sources
            .result
            .ok_or_else(|| TemplateError::Missing(path.to_owned()))?,
        _ => return Err(TemplateError::UnknownRoot(path.to_owned())),
    };
    for part in parts {
        let next = match at {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        at = next.ok_or_else(|| TemplateError::Missing(path.to_owned()))?;
    }
    if at.is_null() {
        return Err(TemplateError::Missing(path.to_owned()));
    }
    Ok(at)
}

/// Check a recipe's placeholders name a known root (done when the gateway starts, so a typo is
/// found before an undo needs it).
pub fn check(template: &Value) -> Result<(), TemplateError> {
    for p in placeholders(template)? {
        let root = p.split('.').next().unwrap_or("");
        if root != "input" && root != "result" || !p.contains('.') {
            return Err(TemplateError::UnknownRoot(p));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sources<'a>(input: &'a Value, result: &'a Value) -> Sources<'a> {
        Sources {
            input,
            result: Some(result),
        }
    }

    #[test]
    fn a_whole_placeholder_keeps_the_type_of_its_value() {
        let input = json!({"amount": 2500, "customer_id": "C001"});
        let result = json!({"refund_id": "R0001", "lines": [{"id": 7}]});
        let filled = fill(
            &json!({"refund_id": "{{result.refund_id}}", "amount": "{{ input.amount }}", "line": "{{result.lines.0.id}}", "fixed": true}),
            &sources(&input, &result),
        )
        .unwrap();
        assert_eq!(
            filled,
            json!({"refund_id": "R0001", "amount": 2500, "line": 7, "fixed": true})
        );
    }

    #[test]
    fn placeholders_inside_text_are_interpolated() {
        let input = json!({"customer_id": "C001", "amount": 5});
        let result = json!({});
        let filled = fill(
            &json!({"reason": "undo of {{input.amount}} for {{input.customer_id}}"}),
            &sources(&input, &result),
        )
        .unwrap();
        assert_eq!(filled, json!({"reason": "undo of 5 for C001"}));
    }

    #[test]
    fn a_missing_value_or_unknown_root_is_an_error_not_a_guess() {
        let input = json!({});
        let result = json!({"refund_id": null});
        let s = sources(&input, &result);
        assert_eq!(
            fill(&json!({"id": "{{result.refund_id}}"}), &s),
            Err(TemplateError::Missing("result.refund_id".into()))
        );
        assert_eq!(
            fill(&json!("{{output.x}}"), &s),
            Err(TemplateError::UnknownRoot("output.x".into()))
        );
        assert_eq!(
            fill(&json!("{{input.x"), &s),
            Err(TemplateError::Unclosed("{{input.x".into()))
        );
        let none = Sources {
            input: &input,
            result: None,
        };
        assert!(fill(&json!("{{result.a}}"), &none).is_err());
        assert!(check(&json!({"a": "{{result}}"})).is_err());
        assert!(check(&json!({"a": ["{{input.a}}", "x {{result.b.c}}"]})).is_ok());
    }

    #[test]
    fn structured_content_comes_from_the_field_or_a_json_text_block() {
        assert_eq!(
            structured(&json!({"structuredContent": {"a": 1}, "content": []})),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            structured(&json!({"content": [{"type": "text", "text": "{\"a\": 2}"}]})),
            Some(json!({"a": 2}))
        );
        assert_eq!(
            structured(&json!({"content": [{"type": "text", "text": "hello"}]})),
            None
        );
    }
}
