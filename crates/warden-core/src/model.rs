//! The domain vocabulary: tool names, risk tiers, data classes and modes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much harm a tool call can do. Ordered: `read < low < high < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    Read,
    Low,
    High,
    Critical,
}

impl RiskTier {
    pub const ALL: [RiskTier; 4] = [Self::Read, Self::Low, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Low => "low",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an agent (or one of its tools) is allowed to do with a call that policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Only `read`-tier tools run.
    ReadOnly,
    /// Non-read calls are recorded as proposals, not executed.
    Suggest,
    /// Calls go to the upstream's sandbox twin.
    Sandbox,
    /// Calls run for real.
    Execute,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::Suggest => "suggest",
            Self::Sandbox => "sandbox",
            Self::Execute => "execute",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tool's full name, `upstream.tool`. The upstream part never contains a dot; the tool part may.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ToolName {
    full: String,
    dot: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tool name `{0}` is not of the form `upstream.tool`")]
pub struct BadToolName(pub String);

impl ToolName {
    pub fn new(upstream: &str, tool: &str) -> Result<Self, BadToolName> {
        format!("{upstream}.{tool}").parse()
    }
    pub fn upstream(&self) -> &str {
        &self.full[..self.dot]
    }
    pub fn tool(&self) -> &str {
        &self.full[self.dot + 1..]
    }
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl FromStr for ToolName {
    type Err = BadToolName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.find('.') {
            Some(dot) if dot > 0 && dot + 1 < s.len() => Ok(Self {
                full: s.to_owned(),
                dot,
            }),
            _ => Err(BadToolName(s.to_owned())),
        }
    }
}

impl TryFrom<String> for ToolName {
    type Error = BadToolName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ToolName> for String {
    fn from(t: ToolName) -> String {
        t.full
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// The configured, ordered list of data classes (`public < internal < ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataClasses {
    order: Vec<String>,
}

/// A data class as its rank in [`DataClasses`]; higher is more sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClassLevel(pub u8);

impl DataClasses {
    pub const DEFAULT: [&'static str; 5] = [
        "public",
        "internal",
        "confidential",
        "regulated",
        "restricted",
    ];

    pub fn new(order: Vec<String>) -> Self {
        Self { order }
    }
    pub fn level(&self, name: &str) -> Option<ClassLevel> {
        self.order
            .iter()
            .position(|c| c == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(ClassLevel)
    }
    pub fn name(&self, level: ClassLevel) -> &str {
        self.order
            .get(usize::from(level.0))
            .map(String::as_str)
            .unwrap_or("unknown")
    }
    pub fn names(&self) -> &[String] {
        &self.order
    }
    pub fn highest(&self) -> ClassLevel {
        ClassLevel(u8::try_from(self.order.len().saturating_sub(1)).unwrap_or(u8::MAX))
    }
}

impl Default for DataClasses {
    fn default() -> Self {
        Self::new(Self::DEFAULT.iter().map(|s| s.to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_name_splits_at_the_first_dot() {
        let t: ToolName = "crm.get.customer".parse().unwrap();
        assert_eq!(t.upstream(), "crm");
        assert_eq!(t.tool(), "get.customer");
    }

    #[test]
    fn a_tool_name_needs_both_halves() {
        for bad in ["", ".", "crm.", ".x", "nodot"] {
            assert!(bad.parse::<ToolName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn risk_tiers_are_ordered() {
        assert!(RiskTier::Read < RiskTier::Low && RiskTier::High < RiskTier::Critical);
    }

    #[test]
    fn data_classes_rank_by_position() {
        let c = DataClasses::default();
        assert!(c.level("internal").unwrap() < c.level("regulated").unwrap());
        assert_eq!(c.level("secret"), None);
        assert_eq!(c.name(c.highest()), "restricted");
    }
}
