//! [`DlpConfig`]: which detectors run, which class each maps to, and custom detectors.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use warden_core::DataClasses;

/// Settings for a [`crate::Scanner`]. `DlpConfig::default()` runs every built-in detector with
/// its default class over the default class order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DlpConfig {
    /// The ordered data classes; detector classes are resolved against it.
    pub classes: DataClasses,
    /// Detector name (`ssn`, `email`, ...) to class name, overriding the default mapping.
    /// A built-in default class missing from a custom class order maps to the highest class.
    pub detector_classes: BTreeMap<String, String>,
    /// Names of built-in detectors not to run.
    pub disabled: BTreeSet<String>,
    /// Extra detectors from configuration.
    pub custom: Vec<CustomDetector>,
    /// Minimum Shannon entropy, in bits per character, of a generic secret.
    pub entropy_threshold: f64,
    /// Minimum length, in bytes, of a generic secret.
    pub min_secret_len: usize,
    /// How far (bytes) from a keyword a keyword-gated value may be.
    pub keyword_window: usize,
}

impl Default for DlpConfig {
    fn default() -> Self {
        Self {
            classes: DataClasses::default(),
            detector_classes: BTreeMap::new(),
            disabled: BTreeSet::new(),
            custom: Vec::new(),
            entropy_threshold: 3.5,
            min_secret_len: 16,
            keyword_window: 64,
        }
    }
}

/// A detector defined by a regular expression.
///
/// With `keywords`, the pattern only runs within [`DlpConfig::keyword_window`] bytes of one of
/// them (ASCII case-insensitive); without, it runs over the whole text, so give keywords when
/// the pattern is meant for large volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetector {
    pub name: String,
    /// A `regex`-syntax pattern.
    pub pattern: String,
    /// The data class of what it matches.
    pub class: String,
    #[serde(default)]
    pub keywords: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_reads_from_serde_with_defaults() {
        let config: DlpConfig = serde_json::from_value(serde_json::json!({
            "detector_classes": {"ip_address": "confidential"},
            "custom": [{"name": "employee_id", "pattern": "EMP-\\d{6}", "class": "confidential",
                        "keywords": ["emp-"]}]
        }))
        .expect("parses");
        assert_eq!(config.min_secret_len, 16);
        assert_eq!(config.custom[0].keywords, vec!["emp-".to_string()]);
        let unknown = serde_json::from_value::<DlpConfig>(serde_json::json!({"nope": 1}));
        assert!(unknown.is_err());
    }
}
