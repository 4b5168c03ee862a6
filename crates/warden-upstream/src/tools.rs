//! From rmcp's `Tool` to the catalog's [`DiscoveredTool`].

use std::sync::Arc;

use rmcp::model::Tool;
use serde_json::Value;
use warden_core::catalog::DiscoveredTool;

/// What the catalog needs to know about one of the upstream's tools.
pub(crate) fn discovered(tool: Tool) -> DiscoveredTool {
    DiscoveredTool {
        name: tool.name.into_owned(),
        description: tool.description.map(|d| d.into_owned()),
        input_schema: Value::Object(Arc::unwrap_or_clone(tool.input_schema)),
        output_schema: tool
            .output_schema
            .map(|s| Value::Object(Arc::unwrap_or_clone(s))),
        annotations: tool.annotations.and_then(|a| serde_json::to_value(a).ok()),
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ToolAnnotations;
    use serde_json::json;

    use super::*;

    #[test]
    fn schemas_and_annotations_become_json() {
        let schema: serde_json::Map<String, Value> = serde_json::from_value(
            json!({"type": "object", "properties": {"id": {"type": "string"}}}),
        )
        .expect("an object");
        let tool = Tool::new(
            "get_customer",
            "Look a customer up",
            Arc::new(schema.clone()),
        )
        .annotate(ToolAnnotations::new().read_only(true));
        let d = discovered(tool);
        assert_eq!(d.name, "get_customer");
        assert_eq!(d.description.as_deref(), Some("Look a customer up"));
        assert_eq!(d.input_schema, Value::Object(schema));
        assert_eq!(d.output_schema, None);
        assert_eq!(d.annotations, Some(json!({"readOnlyHint": true})));
    }
}
