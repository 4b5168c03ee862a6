//! What both backends share for tool pins: the definition's text form.

use warden_core::store::StoreError;

use crate::error::corrupt;

/// A definition as stored: its JSON text.
pub(crate) fn definition_text(definition: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(definition)
        .map_err(|e| StoreError::Database(format!("encoding a tool definition: {e}")))
}

/// A stored definition.
pub(crate) fn definition_from_db(
    upstream: &str,
    tool: &str,
    text: &str,
) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(format_args!("definition of {upstream}.{tool}"), e))
}
