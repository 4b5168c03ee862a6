//! `[vault]` and `[retention]`: where the evidence vault's master key lives, how much of it each
//! operator role may read in `explain`, and how long each artifact of each data class is kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Validator;
use crate::model::DataClasses;
use crate::store::{Artifact, OperatorRole};

/// `[vault]`: the evidence vault.
#[derive(Debug, Clone, Default)]
pub struct VaultConfig {
    /// The master key file (base64 of 32 bytes), relative to the config's folder. `None` means
    /// `<data_dir>/vault.key`, created (mode 0600) on first start. The `WARDEN_VAULT_KEY`
    /// environment variable, when set, takes precedence. The key is never stored in the
    /// database.
    pub key_file: Option<PathBuf>,
    /// The most sensitive data class each operator role may read in plain text in `explain`
    /// (more sensitive values are redacted). A role not listed sees only digests. Defaults:
    /// admin and auditor see every class.
    pub clearance: BTreeMap<OperatorRole, String>,
}

/// How long evidence is kept. `None` keeps it until shredded by hand.
pub type Keep = Option<Duration>;

/// `[retention]`: per data class and per artifact, with fallbacks.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// `[retention] default`: for anything not named below. Default 90 days.
    pub default: Keep,
    /// `[retention] arguments`, `result`, ...: per artifact, for any class.
    pub artifacts: BTreeMap<Artifact, Keep>,
    /// `[retention.classes.CLASS]`: per class, per artifact (`default` for the class's others).
    pub classes: BTreeMap<String, ClassRetention>,
    /// How often the server shreds expired evidence. Default 1 hour.
    pub interval: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct ClassRetention {
    pub default: Option<Keep>,
    pub artifacts: BTreeMap<Artifact, Keep>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            default: Some(Duration::from_secs(90 * 86_400)),
            artifacts: BTreeMap::new(),
            classes: BTreeMap::new(),
            interval: Duration::from_secs(3600),
        }
    }
}

impl RetentionConfig {
    /// How long `artifact` evidence of `class` is kept: the class's setting for the artifact,
    /// else the class's `default`, else the artifact's setting, else `default`.
    pub fn keep(&self, class: &str, artifact: Artifact) -> Keep {
        let by_class = self.classes.get(class);
        by_class
            .and_then(|c| c.artifacts.get(&artifact).copied())
            .or_else(|| by_class.and_then(|c| c.default))
            .or_else(|| self.artifacts.get(&artifact).copied())
            .unwrap_or(self.default)
    }
}

/// Parse a retention period: `forever`, or a whole number with a unit (`s`, `m`, `h`, `d`),
/// e.g. `90d`, `12h`, `0s` (shred at the next run).
pub fn parse_keep(text: &str) -> Result<Keep, String> {
    let t = text.trim();
    if t == "forever" {
        return Ok(None);
    }
    let Some(unit) = t.chars().last() else {
        return Err("an empty retention period".into());
    };
    let number = &t[..t.len() - unit.len_utf8()];
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a retention period"))?;
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        'd' => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("`{text}` is not a retention period"))?;
    Ok(Some(Duration::from_secs(secs)))
}

pub(super) mod raw {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Vault {
        pub key_file: Option<PathBuf>,
        #[serde(default)]
        pub clearance: BTreeMap<String, Spanned<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Retention {
        pub default: Option<Spanned<String>>,
        pub interval: Option<Spanned<String>>,
        pub arguments: Option<Spanned<String>>,
        pub result: Option<Spanned<String>>,
        pub approval: Option<Spanned<String>>,
        pub prior_state: Option<Spanned<String>>,
        #[serde(default)]
        pub classes: BTreeMap<String, Spanned<ClassTable>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct ClassTable {
        pub default: Option<Spanned<String>>,
        pub arguments: Option<Spanned<String>>,
        pub result: Option<Spanned<String>>,
        pub approval: Option<Spanned<String>>,
        pub prior_state: Option<Spanned<String>>,
    }

    /// The per-artifact periods of a table.
    pub struct Artifacts {
        pub arguments: Option<Spanned<String>>,
        pub result: Option<Spanned<String>>,
        pub approval: Option<Spanned<String>>,
        pub prior_state: Option<Spanned<String>>,
    }
}

impl Validator<'_> {
    fn keep(&mut self, key: &str, text: &Spanned<String>) -> Option<Keep> {
        match parse_keep(text.get_ref()) {
            Ok(k) => Some(k),
            Err(e) => {
                self.error_at(text.span().start, format!("`{key}`: {e}"))
                    .help = Some(
                    "a whole number with a unit (s, m, h, d), e.g. \"90d\", or \"forever\"".into(),
                );
                None
            }
        }
    }

    fn artifacts(&mut self, prefix: &str, raw: raw::Artifacts) -> BTreeMap<Artifact, Keep> {
        let mut out = BTreeMap::new();
        for (artifact, text) in [
            (Artifact::Arguments, raw.arguments),
            (Artifact::Result, raw.result),
            (Artifact::Approval, raw.approval),
            (Artifact::PriorState, raw.prior_state),
        ] {
            if let Some(text) = text
                && let Some(k) = self.keep(&format!("{prefix}{}", artifact.as_str()), &text)
            {
                out.insert(artifact, k);
            }
        }
        out
    }

    pub(super) fn vault(&mut self, raw: raw::Vault, classes: &DataClasses) -> VaultConfig {
        let mut clearance = BTreeMap::new();
        for (role, class) in raw.clearance {
            match role.parse::<OperatorRole>() {
                Ok(r) => {
                    self.check_class(classes, &class);
                    clearance.insert(r, class.into_inner());
                }
                Err(e) => {
                    self.error_at(class.span().start, format!("`vault.clearance`: {e}"));
                }
            }
        }
        let highest = classes.name(classes.highest()).to_owned();
        for role in [OperatorRole::Admin, OperatorRole::Auditor] {
            clearance.entry(role).or_insert_with(|| highest.clone());
        }
        VaultConfig {
            key_file: raw.key_file,
            clearance,
        }
    }

    pub(super) fn retention(
        &mut self,
        raw: raw::Retention,
        classes: &DataClasses,
    ) -> RetentionConfig {
        let defaults = RetentionConfig::default();
        let default = match &raw.default {
            Some(t) => self
                .keep("retention.default", t)
                .unwrap_or(defaults.default),
            None => defaults.default,
        };
        let interval = match &raw.interval {
            Some(t) => match self.keep("retention.interval", t) {
                Some(Some(d)) if !d.is_zero() => d,
                Some(_) => {
                    self.error_at(
                        t.span().start,
                        "`retention.interval` must be a positive period, e.g. \"1h\"",
                    );
                    defaults.interval
                }
                None => defaults.interval,
            },
            None => defaults.interval,
        };
        let artifacts = self.artifacts(
            "retention.",
            raw::Artifacts {
                arguments: raw.arguments,
                result: raw.result,
                approval: raw.approval,
                prior_state: raw.prior_state,
            },
        );
        let mut by_class = BTreeMap::new();
        for (class, table) in raw.classes {
            if classes.level(&class).is_none() {
                self.error_at(
                    table.span().start,
                    format!("`retention.classes.{class}`: unknown data class `{class}`"),
                )
                .help = Some(format!("known classes: {}", classes.names().join(", ")));
                continue;
            }
            let table = table.into_inner();
            let prefix = format!("retention.classes.{class}.");
            let default = match &table.default {
                Some(t) => self.keep(&format!("{prefix}default"), t),
                None => None,
            };
            let artifacts = self.artifacts(
                &prefix,
                raw::Artifacts {
                    arguments: table.arguments,
                    result: table.result,
                    approval: table.approval,
                    prior_state: table.prior_state,
                },
            );
            by_class.insert(class, ClassRetention { default, artifacts });
        }
        RetentionConfig {
            default,
            artifacts,
            classes: by_class,
            interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_periods_parse() {
        assert_eq!(
            parse_keep("90d"),
            Ok(Some(Duration::from_secs(90 * 86_400)))
        );
        assert_eq!(parse_keep("12h"), Ok(Some(Duration::from_secs(12 * 3600))));
        assert_eq!(parse_keep("0s"), Ok(Some(Duration::ZERO)));
        assert_eq!(parse_keep("forever"), Ok(None));
        assert!(parse_keep("90").is_err());
        assert!(parse_keep("d").is_err());
        assert!(parse_keep("3w").is_err());
        assert!(parse_keep("").is_err());
        assert!(parse_keep("-1d").is_err());
    }

    #[test]
    fn the_most_specific_retention_wins() {
        let mut r = RetentionConfig::default();
        r.artifacts
            .insert(Artifact::Approval, Some(Duration::from_secs(5)));
        r.classes.insert(
            "regulated".into(),
            ClassRetention {
                default: Some(Some(Duration::from_secs(7))),
                artifacts: BTreeMap::from([(Artifact::Result, Some(Duration::ZERO))]),
            },
        );
        assert_eq!(r.keep("regulated", Artifact::Result), Some(Duration::ZERO));
        assert_eq!(
            r.keep("regulated", Artifact::Approval),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            r.keep("internal", Artifact::Approval),
            Some(Duration::from_secs(5))
        );
        assert_eq!(r.keep("internal", Artifact::Arguments), r.default);
    }

    fn parse(src: &str) -> Result<crate::Config, crate::Diagnostics> {
        crate::Config::parse(std::path::Path::new("warden.toml"), src)
    }

    #[test]
    fn retention_and_vault_sections_parse() {
        let config = parse(
            "[retention]\ndefault = \"30d\"\ninterval = \"10m\"\n\n\
             [retention.classes.regulated]\nresult = \"7d\"\n\n\
             [vault]\nclearance = { auditor = \"internal\" }\n",
        )
        .expect("valid");
        assert_eq!(config.retention.interval, Duration::from_secs(600));
        assert_eq!(
            config.retention.keep("regulated", Artifact::Result),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            config.retention.keep("regulated", Artifact::Arguments),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            config
                .vault
                .clearance
                .get(&OperatorRole::Auditor)
                .map(String::as_str),
            Some("internal")
        );
        assert!(config.vault.clearance.contains_key(&OperatorRole::Admin));
        assert!(!config.vault.clearance.contains_key(&OperatorRole::Viewer));
    }

    #[test]
    fn retention_mistakes_are_reported_at_their_line() {
        let src = "[retention]\ndefault = \"90 days\"\n\n\
                   [retention.classes.secret]\nresult = \"1d\"\n\n\
                   [retention.classes.regulated]\nresult = \"7w\"\n\n\
                   [vault]\nclearance = { janitor = \"internal\" }\n";
        let Err(diags) = parse(src) else {
            panic!("bad retention must not parse");
        };
        let text = diags.to_string();
        for (needle, line) in [
            ("`retention.default`", 2..=2),
            // A table's span starts at its header or its first key, by the toml parser.
            ("unknown data class `secret`", 4..=5),
            ("`retention.classes.regulated.result`", 8..=8),
            ("unknown operator role `janitor`", 11..=11),
        ] {
            let d = diags
                .0
                .iter()
                .find(|d| d.message.contains(needle))
                .unwrap_or_else(|| panic!("no `{needle}` in {text}"));
            assert!(line.contains(&d.line), "{needle}: {text}");
        }
        let unknown = parse("[retention]\nresults = \"1d\"\n");
        assert!(unknown.is_err(), "an unknown artifact key is an error");
    }
}
