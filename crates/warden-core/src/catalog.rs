//! The tool catalog: every tool Warden fronts, as discovered from the upstreams and refined by
//! the config. Policy schema generation, listing and the pipeline all read from it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Config, UndoRecipe};
use crate::model::{RiskTier, ToolName};

/// One tool as Warden presents it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Canonical name, `upstream.tool`: what policies and the audit log use.
    pub name: ToolName,
    /// The name agents see (differs when the upstream sets `prefix`).
    pub exposed_name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub risk: RiskTier,
    /// False when the tool's undo recipe is `irreversible` or it has none and is not `read`.
    pub reversible: bool,
    /// The upstream's MCP annotations, as received.
    pub annotations: Option<serde_json::Value>,
}

/// What an upstream said about one of its tools.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiscoveredTool {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub annotations: Option<serde_json::Value>,
}

/// All tools, by canonical name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Shared, so that a call holds its tool without copying its schemas.
    tools: BTreeMap<ToolName, Arc<ToolInfo>>,
    /// The canonical name of each exposed name: every call looks its tool up by it.
    exposed: HashMap<String, ToolName>,
    /// Each tool as its upstream described it, before the config's refinements: what tool
    /// pinning hashes.
    discovered: BTreeMap<ToolName, DiscoveredTool>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add what `upstream` offers, applying the config's settings to each tool.
    pub fn add_upstream(
        &mut self,
        config: &Config,
        upstream: &str,
        discovered: Vec<DiscoveredTool>,
    ) {
        let Some(up) = config.upstream(upstream) else {
            return;
        };
        for d in discovered {
            let Ok(name) = ToolName::new(upstream, &d.name) else {
                continue;
            };
            let configured = config.tool(&name);
            self.discovered.insert(name.clone(), d.clone());
            let read_only_hint = d
                .annotations
                .as_ref()
                .and_then(|a| a.get("readOnlyHint"))
                .and_then(serde_json::Value::as_bool);
            let risk = resolve_risk(configured.and_then(|t| t.risk), read_only_hint, up.trusted);
            let reversible = match configured.and_then(|t| t.undo.as_ref()) {
                Some(UndoRecipe::Irreversible) => false,
                Some(_) => true,
                None => risk == RiskTier::Read,
            };
            let info = ToolInfo {
                exposed_name: up.exposed_name(&d.name),
                description: configured
                    .and_then(|t| t.description.clone())
                    .or(d.description),
                input_schema: configured
                    .and_then(|t| t.input_schema.clone())
                    .unwrap_or(d.input_schema),
                output_schema: configured
                    .and_then(|t| t.output_schema.clone())
                    .or(d.output_schema),
                risk,
                reversible,
                annotations: d.annotations,
                name: name.clone(),
            };
            self.insert(info);
        }
    }

    pub fn get(&self, name: &ToolName) -> Option<&ToolInfo> {
        self.tools.get(name).map(Arc::as_ref)
    }
    /// A tool as its upstream described it (tools added with [`Catalog::insert`] have none).
    pub fn discovered(&self, name: &ToolName) -> Option<&DiscoveredTool> {
        self.discovered.get(name)
    }
    pub fn by_exposed_name(&self, exposed: &str) -> Option<&Arc<ToolInfo>> {
        self.exposed
            .get(exposed)
            .and_then(|name| self.tools.get(name))
    }
    pub fn iter(&self) -> impl Iterator<Item = &ToolInfo> {
        self.tools.values().map(Arc::as_ref)
    }
    pub fn len(&self) -> usize {
        self.tools.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
    /// Insert a tool (replacing one of the same name); also for tests and benchmarks.
    ///
    /// Two tools exposed under one name (a config `warden check` refuses) resolve to the first
    /// by canonical name.
    pub fn insert(&mut self, info: ToolInfo) {
        if let Some(old) = self.tools.get(&info.name)
            && self.exposed.get(&old.exposed_name) == Some(&info.name)
        {
            self.exposed.remove(&old.exposed_name);
        }
        self.exposed
            .entry(info.exposed_name.clone())
            .and_modify(|first| {
                if info.name < *first {
                    *first = info.name.clone();
                }
            })
            .or_insert_with(|| info.name.clone());
        self.tools.insert(info.name.clone(), Arc::new(info));
    }
}

/// A tool's risk tier: the config's word if it has one; otherwise the MCP `readOnlyHint`, but only
/// from a trusted upstream; otherwise `high`.
pub fn resolve_risk(
    configured: Option<RiskTier>,
    read_only_hint: Option<bool>,
    trusted: bool,
) -> RiskTier {
    match (configured, read_only_hint, trusted) {
        (Some(r), _, _) => r,
        (None, Some(true), true) => RiskTier::Read,
        _ => RiskTier::High,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_set_the_tier_only_for_trusted_upstreams() {
        assert_eq!(resolve_risk(None, Some(true), true), RiskTier::Read);
        assert_eq!(resolve_risk(None, Some(true), false), RiskTier::High);
        assert_eq!(resolve_risk(None, Some(false), true), RiskTier::High);
        assert_eq!(resolve_risk(None, None, true), RiskTier::High);
    }

    #[test]
    fn the_config_overrides_annotations() {
        assert_eq!(
            resolve_risk(Some(RiskTier::Low), Some(true), true),
            RiskTier::Low
        );
    }
}
