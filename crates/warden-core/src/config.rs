//! `warden.toml`: parsing, defaults and validation with file:line diagnostics.
//!
//! Parsing happens in two layers. The `raw` structs mirror the file (unknown keys are errors,
//! names carry their source spans); [`Config::parse`] checks every reference and turns them into
//! the clean, validated [`Config`] the rest of Warden uses. Spans of names that later stages may
//! still reject (a tool that the upstream turns out not to have) are kept in [`SourceMap`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{DataClasses, Mode, RiskTier, ToolName};

mod vault;
pub use vault::{ClassRetention, Keep, RetentionConfig, VaultConfig, parse_keep};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// Relative paths in the config (policies, data dir, sqlite files) resolve against this.
    pub base_dir: PathBuf,
    pub server: ServerConfig,
    pub classes: DataClasses,
    /// The class of a field nobody classified.
    pub default_class: String,
    pub vendors: Vec<Vendor>,
    pub upstreams: Vec<Upstream>,
    pub tools: Vec<ToolConfig>,
    pub roles: Vec<Role>,
    pub agents: Vec<Agent>,
    pub users: Vec<User>,
    pub policy: PolicyConfig,
    pub approvals: ApprovalsConfig,
    /// `[audit]`: the tamper-evident log's checkpoints.
    pub audit: AuditConfig,
    /// `[dlp]`: detectors, and what happens to data above a party's clearance.
    pub dlp: DlpSettings,
    /// `[vault]`: the evidence vault's master key and who may read what of it.
    pub vault: VaultConfig,
    /// `[retention]`: how long evidence is kept, per data class and artifact.
    pub retention: RetentionConfig,
    pub spans: SourceMap,
}

/// The built-in detectors of `warden-dlp`, by name (its tests check the two lists agree), so
/// the config can name them in `[dlp] disabled`, `detector_classes` and a vendor's `receives`.
pub const BUILTIN_DETECTORS: [&str; 18] = [
    "email",
    "phone",
    "payment_card",
    "iban",
    "ssn",
    "ip_address",
    "date_of_birth",
    "private_key",
    "jwt",
    "aws_access_key",
    "github_token",
    "slack_token",
    "stripe_key",
    "google_api_key",
    "openai_key",
    "bearer_token",
    "password",
    "generic_secret",
];

/// `[dlp]`: data protection. Arguments are checked against the destination vendor's clearance
/// (`minimize`), results against the agent's (`inspect`).
#[derive(Debug, Clone)]
pub struct DlpSettings {
    /// `[[dlp.detectors]]`: detectors defined by a pattern.
    pub detectors: Vec<DetectorConfig>,
    /// Names of detectors (built-in or custom) not to run.
    pub disabled: Vec<String>,
    /// Detector name to data class, overriding its default class.
    pub detector_classes: BTreeMap<String, String>,
    /// What happens when arguments hold data above the destination vendor's clearance.
    pub on_vendor_excess: VendorExcess,
    /// What happens to a result with prompt-injection indicators.
    pub on_injection: InjectionAction,
    /// Hosts (and their subdomains) that links and images in results may point to; a link
    /// elsewhere is an injection indicator.
    pub allowed_link_hosts: Vec<String>,
    /// The largest upstream result passed on (canonical JSON bytes); default
    /// `server.max_body_bytes`.
    pub max_result_bytes: usize,
}

/// A detector from `[[dlp.detectors]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Its name in findings (`dlp.<name>`).
    pub name: String,
    /// A regular expression (Rust `regex` syntax).
    pub pattern: String,
    /// The data class of what it matches.
    pub class: String,
    /// When given, the pattern runs only near one of these words (cheap on large texts).
    pub keywords: Vec<String>,
}

/// `[dlp] on_vendor_excess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorExcess {
    /// Rewrite what is above the vendor's clearance (per the tool's `on_excess`), then call.
    #[default]
    Redact,
    /// Refuse the call (policy id `warden:vendor-clearance`).
    Deny,
}

/// `[dlp] on_injection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectionAction {
    /// Pass the result on, with a warning in `_meta.warden.warnings`.
    Warn,
    /// Replace the result's content by a notice naming the indicator kinds.
    #[default]
    Quarantine,
    /// Withhold the result; the call is denied.
    Deny,
}

/// A tool's `on_excess`: what happens to a field or value above the clearance of whoever
/// receives it (the agent for results, the vendor for arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcessAction {
    /// Remove it.
    Drop,
    /// Replace it by `[REDACTED:<class>]`.
    #[default]
    Mask,
    /// Replace it by a keyed pseudonym (`pii_<hex>`), stable per deployment.
    Pseudonym,
}

/// A tool's `output`: what happens to top-level fields of `structuredContent` that its output
/// schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputCheck {
    /// Remove them.
    #[default]
    DropUnexpected,
    /// Fail the call (the result is withheld).
    FailUnexpected,
    /// Pass them on.
    Allow,
}

/// `[audit]`: how the audit log's checkpoints are signed.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The log's name in its checkpoints (the C2SP origin line), also the name of a key
    /// generated on first start. Default `warden.local/log`.
    pub origin: String,
    /// The checkpoint signing key (C2SP private key text), relative to the config's folder.
    /// `None` means `<data_dir>/checkpoint.key`, created (mode 0600) on first start. The
    /// `WARDEN_CHECKPOINT_KEY` environment variable, when set, takes precedence.
    pub key_file: Option<PathBuf>,
    /// The shortest time between two checkpoints while events arrive. Default 1 s.
    pub checkpoint_interval: Duration,
}

impl AuditConfig {
    /// The origin used when the config names none.
    pub const DEFAULT_ORIGIN: &'static str = "warden.local/log";
}

/// How calls held for approval behave.
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    /// How long a request waits for approvers before it expires (and so is denied).
    pub ttl: Duration,
    /// How long the agent's call waits for a decision before answering "pending approval ID".
    pub wait: Duration,
    /// A JSON POST (with a Slack-compatible `text` field) for every new request.
    pub webhook: Option<String>,
    /// Whether the requesting user or the agent's owner may approve their own request.
    pub allow_self_approval: bool,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    /// `sqlite://FILE` (relative to the config's folder) or `postgres://...`.
    pub database: String,
    /// Keys, tokens and other local state; relative to the config's folder.
    pub data_dir: PathBuf,
    /// Requests with a larger body are refused before parsing.
    pub max_body_bytes: usize,
    /// How long an upstream call may take before it fails.
    pub call_timeout: Duration,
    /// Extra `Host` values the MCP edge accepts besides loopback (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Most events committed in one transaction.
    pub audit_batch_max: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    pub name: String,
    pub cleared: String,
    pub region: Option<String>,
    /// Detector kinds this vendor may receive whatever its clearance (an e-mail provider must
    /// see the recipient's address); found in arguments, they are recorded, not redacted.
    pub receives: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub vendor: String,
    pub transport: Transport,
    /// The twin used in sandbox mode.
    pub sandbox: Option<String>,
    /// Whether its MCP tool annotations may set risk tiers.
    pub trusted: bool,
    /// The name prefix agents see: `None` means the upstream's name; `Some("")` means none.
    pub prefix: Option<String>,
    pub timeout: Option<Duration>,
    /// Its results are untrusted content (an inbox, web pages): a call to any of its tools
    /// marks the session `untrusted` for later calls' policies.
    pub untrusted_output: bool,
    /// Whether its tools' definitions are pinned (a changed definition is hidden and denied
    /// until an operator approves it). On by default.
    pub pin: bool,
}

impl Upstream {
    /// The name an agent sees for one of this upstream's tools.
    pub fn exposed_name(&self, tool: &str) -> String {
        match self.prefix.as_deref() {
            Some("") => tool.to_owned(),
            Some(p) => format!("{p}.{tool}"),
            None => format!("{}.{tool}", self.name),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Transport {
    /// A child process speaking MCP over stdin/stdout.
    Stdio {
        command: Vec<String>,
        env: BTreeMap<String, SecretValue>,
        cwd: Option<PathBuf>,
    },
    /// MCP Streamable HTTP.
    Http {
        url: String,
        headers: BTreeMap<String, SecretValue>,
    },
}

/// A value that may be a secret: a literal, or read from an environment variable or a file when
/// Warden connects. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretValue {
    Literal(String),
    Env { env: String },
    File { file: PathBuf },
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal(_) => f.write_str("Literal(<redacted>)"),
            Self::Env { env } => write!(f, "Env({env})"),
            Self::File { file } => write!(f, "File({})", file.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {0}: {1}")]
    File(PathBuf, std::io::Error),
}

impl SecretValue {
    /// The value itself. Relative files resolve against `base_dir`.
    pub fn resolve(&self, base_dir: &Path) -> Result<String, SecretError> {
        match self {
            Self::Literal(v) => Ok(v.clone()),
            Self::Env { env } => {
                std::env::var(env).map_err(|_| SecretError::MissingEnv(env.clone()))
            }
            Self::File { file } => {
                let path = base_dir.join(file);
                std::fs::read_to_string(&path)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                    .map_err(|e| SecretError::File(path, e))
            }
        }
    }
}

/// Settings for one tool. Tools an upstream offers but the config does not name still exist:
/// they get their risk tier from annotations (trusted upstreams) or `high`.
#[derive(Debug, Clone)]
pub struct ToolConfig {
    pub name: ToolName,
    pub risk: Option<RiskTier>,
    pub description: Option<String>,
    /// Per-tool mode override for every agent.
    pub mode: Option<Mode>,
    pub undo: Option<UndoRecipe>,
    /// JSON Pointer-like paths (`input/...`, `result/...`, `*` over arrays) to data classes.
    pub classify: BTreeMap<String, String>,
    /// An input schema to use instead of the upstream's.
    pub input_schema: Option<serde_json::Value>,
    /// Calls per window; counted only for calls that passed authorization.
    pub limits: Vec<RateLimit>,
    /// A cumulative budget over a numeric argument (e.g. total refunded per day).
    pub budget: Option<Budget>,
    /// What happens to fields and values above the receiver's clearance.
    pub on_excess: ExcessAction,
    /// When set, only these parts of a result reach the agent (`result/PATH`, `*` over arrays
    /// and members).
    pub projection: Option<Vec<String>>,
    /// What happens to result fields the output schema does not declare.
    pub output: OutputCheck,
    /// An output schema to use instead of the upstream's.
    pub output_schema: Option<serde_json::Value>,
    /// Its results are untrusted content (overrides the upstream's `untrusted_output`).
    pub untrusted_output: Option<bool>,
}

/// Who a rate limit or budget is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitScope {
    /// Each agent separately.
    Agent,
    /// Each user (calls without a user count under the agent).
    User,
    /// Everyone together.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub calls: u64,
    pub per_secs: u64,
    #[serde(default = "default_scope")]
    pub by: LimitScope,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The numeric argument summed (top-level name).
    pub argument: String,
    pub max: f64,
    pub per_secs: u64,
    #[serde(default = "default_scope")]
    pub by: LimitScope,
}

fn default_scope() -> LimitScope {
    LimitScope::Agent
}

/// How to compensate a call.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoRecipe {
    Irreversible,
    /// Call `tool` with `args`, a template over the original arguments and result.
    Compensate {
        tool: ToolName,
        args: serde_json::Value,
    },
    /// Read the prior state with `capture` before the write, restore it with `tool`.
    Capture {
        capture: ToolName,
        tool: ToolName,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub owner: String,
    pub purpose: String,
    pub roles: Vec<String>,
    pub mode: Mode,
    pub clearance: String,
    /// Whether the agent may act on behalf of a user named in the call.
    pub delegation: bool,
    pub data_basis: Option<String>,
    pub risk: Option<RiskTier>,
    pub tool_modes: BTreeMap<ToolName, Mode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Folder of `*.cedar` files, relative to the config's folder.
    pub dir: PathBuf,
    /// A candidate bundle evaluated beside the active one.
    pub shadow: Option<PathBuf>,
}

/// Where names sit in the config file, for diagnostics raised after parsing.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    source: String,
    places: HashMap<String, usize>,
}

impl SourceMap {
    /// A diagnostic at the place recorded under `key` (e.g. `tools.crm.get_customer`), or at the
    /// top of the file when nothing was recorded.
    pub fn diagnostic(&self, file: &Path, key: &str, message: impl Into<String>) -> Diagnostic {
        let offset = self.places.get(key).copied().unwrap_or(0);
        Diagnostic::at_offset(file, &self.source, offset, message)
    }
    fn record(&mut self, key: String, offset: usize) {
        self.places.entry(key).or_insert(offset);
    }
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics::from(Diagnostic::new(
                path,
                0,
                0,
                format!("cannot read config: {e}"),
            ))
        })?;
        Self::parse(path, &source)
    }

    /// Validate config text; `path` names the file in diagnostics and sets the base folder.
    pub fn parse(path: &Path, source: &str) -> Result<Config, Diagnostics> {
        let raw: raw::File = toml::from_str(source).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let message = e.message().trim().to_owned();
            Diagnostics::from(Diagnostic::at_offset(path, source, offset, message))
        })?;
        Validator {
            path,
            source,
            diags: Diagnostics::default(),
            spans: SourceMap::default(),
        }
        .validate(raw)
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }
    pub fn vendor(&self, name: &str) -> Option<&Vendor> {
        self.vendors.iter().find(|v| v.name == name)
    }
    pub fn tool(&self, name: &ToolName) -> Option<&ToolConfig> {
        self.tools.iter().find(|t| &t.name == name)
    }
    /// A path from the config made absolute against the config's folder.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        self.base_dir.join(p)
    }
    /// The database URL with a relative SQLite path made absolute.
    pub fn database_url(&self) -> String {
        match self.server.database.strip_prefix("sqlite://") {
            Some(file) if !file.starts_with('/') && !file.starts_with(':') => {
                format!("sqlite://{}", self.base_dir.join(file).display())
            }
            _ => self.server.database.clone(),
        }
    }
}

struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
    diags: Diagnostics,
    spans: SourceMap,
}

impl Validator<'_> {
    fn error_at(&mut self, offset: usize, message: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::at_offset(
            self.path,
            self.source,
            offset,
            message,
        ));
        self.diags.0.last_mut().expect("just pushed")
    }

    fn validate(mut self, raw: raw::File) -> Result<Config, Diagnostics> {
        let classes = match raw.classes.order {
            Some(order) => self.class_order(order),
            None => DataClasses::default(),
        };
        let default_class = match raw.classes.default {
            Some(d) => {
                self.check_class(&classes, &d);
                d.into_inner()
            }
            None => classes
                .names()
                .get(1)
                .or(classes.names().first())
                .cloned()
                .unwrap_or_default(),
        };

        let custom_detectors: BTreeSet<String> = raw
            .dlp
            .detectors
            .iter()
            .map(|d| d.name.get_ref().clone())
            .collect();
        let vendors = self.vendors(raw.vendors, &classes, &custom_detectors);
        let roles = self.roles(raw.roles);
        let role_names: BTreeSet<String> = roles.iter().map(|r| r.name.clone()).collect();
        let upstreams = self.upstreams(raw.upstreams, &vendors);
        let upstream_names: BTreeSet<String> = upstreams.iter().map(|u| u.name.clone()).collect();
        let tools = self.tools(raw.tools, &upstream_names, &classes);
        let agents = self.agents(raw.agents, &role_names, &upstream_names, &classes);
        let users = self.users(raw.users, &role_names);
        let server = self.server(raw.server);
        let policy = PolicyConfig {
            dir: raw.policy.dir.unwrap_or_else(|| PathBuf::from("policies")),
            shadow: raw.policy.shadow,
        };
        let approvals = self.approvals(raw.approvals);
        let audit = self.audit(raw.audit);
        let dlp = self.dlp(raw.dlp, &classes, server.max_body_bytes);
        let vault = self.vault(raw.vault, &classes);
        let retention = self.retention(raw.retention, &classes);
        let base_dir = self
            .path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        self.spans.source = self.source.to_owned();
        let config = Config {
            path: self.path.to_path_buf(),
            base_dir,
            server,
            classes,
            default_class,
            vendors,
            upstreams,
            tools,
            roles,
            agents,
            users,
            policy,
            approvals,
            audit,
            dlp,
            vault,
            retention,
            spans: self.spans,
        };
        self.diags.into_result(config)
    }

    fn class_order(&mut self, order: Spanned<Vec<String>>) -> DataClasses {
        let start = order.span().start;
        let names = order.into_inner();
        let unique: BTreeSet<&String> = names.iter().collect();
        if names.is_empty() {
            self.error_at(start, "`classes.order` is empty").help =
                Some("list at least one data class, least sensitive first".into());
        } else if unique.len() != names.len() {
            self.error_at(start, "`classes.order` names a class twice");
        } else if names.len() > 64 {
            self.error_at(start, "`classes.order` has more than 64 classes");
        }
        DataClasses::new(names)
    }

    fn check_class(&mut self, classes: &DataClasses, name: &Spanned<String>) {
        if classes.level(name.get_ref()).is_none() {
            let known = classes.names().join(", ");
            self.error_at(
                name.span().start,
                format!("unknown data class `{}`", name.get_ref()),
            )
            .help = Some(format!("known classes: {known}"));
        }
    }

    fn check_unique(&mut self, seen: &mut BTreeSet<String>, what: &str, name: &Spanned<String>) {
        if !seen.insert(name.get_ref().clone()) {
            self.error_at(
                name.span().start,
                format!("{what} `{}` is declared twice", name.get_ref()),
            );
        }
    }

    fn check_ident(&mut self, what: &str, name: &Spanned<String>, allow_dot: bool) {
        let s = name.get_ref();
        let ok = !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-') || (allow_dot && c == '.')
            });
        if !ok {
            self.error_at(
                name.span().start,
                format!("{what} `{s}` is not a valid name"),
            )
            .help = Some("use letters, digits, `_` and `-`".into());
        }
    }

    fn vendors(
        &mut self,
        raw: Vec<raw::Vendor>,
        classes: &DataClasses,
        custom_detectors: &BTreeSet<String>,
    ) -> Vec<Vendor> {
        let mut seen = BTreeSet::new();
        raw.into_iter()
            .map(|v| {
                self.check_unique(&mut seen, "vendor", &v.name);
                self.check_class(classes, &v.cleared);
                for kind in &v.receives {
                    self.check_detector(kind, custom_detectors);
                }
                Vendor {
                    name: v.name.into_inner(),
                    cleared: v.cleared.into_inner(),
                    region: v.region,
                    receives: v.receives.into_iter().map(Spanned::into_inner).collect(),
                }
            })
            .collect()
    }

    /// A detector name used somewhere: built in, or declared in `[[dlp.detectors]]`.
    fn check_detector(&mut self, name: &Spanned<String>, custom: &BTreeSet<String>) {
        let s = name.get_ref();
        if !BUILTIN_DETECTORS.contains(&s.as_str()) && !custom.contains(s) {
            self.error_at(name.span().start, format!("unknown detector `{s}`"))
                .help = Some(format!(
                "built-in detectors: {}; or declare it in [[dlp.detectors]]",
                BUILTIN_DETECTORS.join(", ")
            ));
        }
    }

    fn dlp(&mut self, raw: raw::Dlp, classes: &DataClasses, max_body_bytes: usize) -> DlpSettings {
        let mut seen = BTreeSet::new();
        let mut detectors = Vec::with_capacity(raw.detectors.len());
        for d in raw.detectors {
            self.check_unique(&mut seen, "detector", &d.name);
            self.check_ident("detector", &d.name, false);
            if BUILTIN_DETECTORS.contains(&d.name.get_ref().as_str()) {
                self.error_at(
                    d.name.span().start,
                    format!("`{}` is a built-in detector", d.name.get_ref()),
                )
                .help = Some(
                    "give a custom detector its own name; change a built-in one's class with                      `[dlp] detector_classes`"
                        .into(),
                );
            }
            match regex_automata::meta::Regex::new(d.pattern.get_ref()) {
                Ok(re) if re.is_match("") => {
                    self.error_at(
                        d.pattern.span().start,
                        format!(
                            "detector `{}`: the pattern matches the empty string",
                            d.name.get_ref()
                        ),
                    )
                    .help = Some("a detector must match at least one character".into());
                }
                Ok(_) => {}
                Err(e) => {
                    self.error_at(
                        d.pattern.span().start,
                        format!("detector `{}`: bad pattern: {e}", d.name.get_ref()),
                    );
                }
            }
            self.check_class(classes, &d.class);
            if d.keywords.iter().any(|k| k.get_ref().trim().is_empty()) {
                self.error_at(
                    d.name.span().start,
                    format!("detector `{}` has an empty keyword", d.name.get_ref()),
                );
            }
            detectors.push(DetectorConfig {
                name: d.name.into_inner(),
                pattern: d.pattern.into_inner(),
                class: d.class.into_inner(),
                keywords: d.keywords.into_iter().map(Spanned::into_inner).collect(),
            });
        }
        let custom: BTreeSet<String> = detectors.iter().map(|d| d.name.clone()).collect();
        for name in &raw.disabled {
            self.check_detector(name, &custom);
        }
        let mut detector_classes = BTreeMap::new();
        for (name, class) in raw.detector_classes {
            self.check_detector(&Spanned::new(class.span(), name.clone()), &custom);
            self.check_class(classes, &class);
            detector_classes.insert(name, class.into_inner());
        }
        for host in &raw.allowed_link_hosts {
            let h = host.get_ref();
            let bad = h.is_empty()
                || h.chars()
                    .any(|c| c.is_whitespace() || matches!(c, '/' | ':' | '@' | '?' | '#'));
            if bad {
                self.error_at(
                    host.span().start,
                    format!("`allowed_link_hosts` entry `{h}` is not a host name"),
                )
                .help = Some(
                    "a host such as \"docs.example.com\" (its subdomains are allowed too)".into(),
                );
            }
        }
        if let Some(max) = &raw.max_result_bytes
            && *max.get_ref() == 0
        {
            self.error_at(max.span().start, "`max_result_bytes` must be above 0");
        }
        DlpSettings {
            detectors,
            disabled: raw.disabled.into_iter().map(Spanned::into_inner).collect(),
            detector_classes,
            on_vendor_excess: raw.on_vendor_excess.unwrap_or_default(),
            on_injection: raw.on_injection.unwrap_or_default(),
            allowed_link_hosts: raw
                .allowed_link_hosts
                .into_iter()
                .map(|h| h.into_inner().to_ascii_lowercase())
                .collect(),
            max_result_bytes: raw
                .max_result_bytes
                .map_or(max_body_bytes, Spanned::into_inner),
        }
    }

    fn roles(&mut self, raw: Vec<raw::Role>) -> Vec<Role> {
        let mut seen = BTreeSet::new();
        raw.into_iter()
            .map(|r| {
                self.check_unique(&mut seen, "role", &r.name);
                self.check_ident("role", &r.name, false);
                Role {
                    name: r.name.into_inner(),
                    description: r.description,
                }
            })
            .collect()
    }

    fn upstreams(&mut self, raw: Vec<raw::Upstream>, vendors: &[Vendor]) -> Vec<Upstream> {
        let mut seen = BTreeSet::new();
        let names: BTreeSet<String> = raw.iter().map(|u| u.name.get_ref().clone()).collect();
        let mut out = Vec::new();
        for u in raw {
            self.check_unique(&mut seen, "upstream", &u.name);
            self.check_ident("upstream", &u.name, false);
            if !vendors.iter().any(|v| &v.name == u.vendor.get_ref()) {
                self.error_at(
                    u.vendor.span().start,
                    format!("unknown vendor `{}`", u.vendor.get_ref()),
                )
                .help = Some("declare it in a [[vendors]] table".into());
            }
            if let Some(sandbox) = &u.sandbox
                && (!names.contains(sandbox.get_ref()) || sandbox.get_ref() == u.name.get_ref())
            {
                self.error_at(
                    sandbox.span().start,
                    format!("unknown sandbox upstream `{}`", sandbox.get_ref()),
                )
                .help = Some("the sandbox twin is another [[upstreams]] entry".into());
            }
            if let Some(p) = &u.prefix
                && p.get_ref().contains('.')
            {
                self.error_at(p.span().start, "`prefix` may not contain `.`");
            }
            let transport = match (u.command, u.url) {
                (Some(cmd), None) => {
                    if cmd.get_ref().is_empty() {
                        self.error_at(cmd.span().start, "`command` is empty");
                    }
                    Transport::Stdio {
                        command: cmd.into_inner(),
                        env: u.env,
                        cwd: u.cwd,
                    }
                }
                (None, Some(url)) => {
                    let s = url.get_ref();
                    if !(s.starts_with("http://") || s.starts_with("https://")) {
                        self.error_at(
                            url.span().start,
                            format!("`url` must be http:// or https://, got `{s}`"),
                        );
                    }
                    if !u.env.is_empty() {
                        self.error_at(
                            u.name.span().start,
                            "`env` applies only to stdio upstreams (`command`)",
                        );
                    }
                    Transport::Http {
                        url: url.into_inner(),
                        headers: u.headers,
                    }
                }
                (Some(cmd), Some(_)) => {
                    self.error_at(
                        cmd.span().start,
                        "an upstream has either `command` (stdio) or `url` (HTTP), not both",
                    );
                    Transport::Stdio {
                        command: cmd.into_inner(),
                        env: u.env,
                        cwd: u.cwd,
                    }
                }
                (None, None) => {
                    self.error_at(u.name.span().start, format!("upstream `{}` has neither `command` nor `url`", u.name.get_ref()))
                        .help = Some("`command = [\"prog\", \"arg\"]` for stdio, `url = \"http://...\"` for Streamable HTTP".into());
                    Transport::Http {
                        url: String::new(),
                        headers: BTreeMap::new(),
                    }
                }
            };
            self.spans.record(
                format!("upstreams.{}", u.name.get_ref()),
                u.name.span().start,
            );
            out.push(Upstream {
                name: u.name.into_inner(),
                vendor: u.vendor.into_inner(),
                transport,
                sandbox: u.sandbox.map(Spanned::into_inner),
                trusted: u.trusted,
                prefix: u.prefix.map(Spanned::into_inner),
                timeout: u.timeout_ms.map(Duration::from_millis),
                untrusted_output: u.untrusted_output,
                pin: u.pin.unwrap_or(true),
            });
        }
        out
    }

    fn tool_name(
        &mut self,
        name: &Spanned<String>,
        upstreams: &BTreeSet<String>,
    ) -> Option<ToolName> {
        match name.get_ref().parse::<ToolName>() {
            Ok(t) if upstreams.contains(t.upstream()) => Some(t),
            Ok(t) => {
                self.error_at(
                    name.span().start,
                    format!("tool `{t}` names unknown upstream `{}`", t.upstream()),
                )
                .help = Some(format!(
                    "known upstreams: {}",
                    upstreams.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
                None
            }
            Err(e) => {
                self.error_at(name.span().start, e.to_string());
                None
            }
        }
    }

    fn tools(
        &mut self,
        raw: Vec<raw::Tool>,
        upstreams: &BTreeSet<String>,
        classes: &DataClasses,
    ) -> Vec<ToolConfig> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for t in raw {
            self.check_unique(&mut seen, "tool", &t.name);
            let name = self.tool_name(&t.name, upstreams);
            let undo = t.undo.and_then(|u| self.undo(u, upstreams));
            for l in &t.limits {
                if l.calls == 0 || l.per_secs == 0 {
                    self.error_at(
                        t.name.span().start,
                        "a rate limit needs `calls` and `per_secs` above 0",
                    );
                }
            }
            if let Some(b) = &t.budget
                && (b.per_secs == 0 || !(b.max.is_finite() && b.max >= 0.0))
            {
                self.error_at(
                    t.name.span().start,
                    "a budget needs `per_secs` above 0 and a finite `max` of 0 or more",
                );
            }
            let mut classify = BTreeMap::new();
            for (path, class) in t.classify {
                if !(path.starts_with("input/") || path.starts_with("result/")) {
                    self.error_at(
                        class.span().start,
                        format!("classify path `{path}` must start with `input/` or `result/`"),
                    );
                }
                self.check_class(classes, &class);
                classify.insert(path, class.into_inner());
            }
            for path in t.projection.iter().flatten() {
                let p = path.get_ref();
                if !(p == "result" || p.starts_with("result/")) {
                    self.error_at(
                        path.span().start,
                        format!("projection path `{p}` must start with `result/`"),
                    )
                    .help =
                        Some("e.g. projection = [\"result/id\", \"result/items/*/name\"]".into());
                }
            }
            if let Some(schema) = &t.output_schema
                && !schema.get_ref().is_object()
            {
                self.error_at(
                    schema.span().start,
                    "`output_schema` must be a JSON Schema object (a table)",
                );
            }
            if let Some(name) = name {
                self.spans
                    .record(format!("tools.{name}"), t.name.span().start);
                out.push(ToolConfig {
                    name,
                    risk: t.risk,
                    description: t.description,
                    mode: t.mode,
                    undo,
                    classify,
                    input_schema: t.input_schema,
                    limits: t.limits,
                    budget: t.budget,
                    on_excess: t.on_excess.unwrap_or_default(),
                    projection: t
                        .projection
                        .map(|p| p.into_iter().map(Spanned::into_inner).collect()),
                    output: t.output.unwrap_or_default(),
                    output_schema: t.output_schema.map(Spanned::into_inner),
                    untrusted_output: t.untrusted_output,
                });
            }
        }
        out
    }

    fn undo(
        &mut self,
        raw: Spanned<raw::Undo>,
        upstreams: &BTreeSet<String>,
    ) -> Option<UndoRecipe> {
        let span = raw.span();
        let at = span.start;
        match raw.into_inner() {
            raw::Undo::Keyword(k) if k == "irreversible" => Some(UndoRecipe::Irreversible),
            raw::Undo::Keyword(k) => {
                self.error_at(at, format!("unknown undo recipe `{k}`")).help =
                    Some("use \"irreversible\", { tool = ..., args = {...} } or { capture = ..., tool = ... }".into());
                None
            }
            raw::Undo::Recipe {
                tool,
                capture,
                args,
            } => {
                let tool_name = self.tool_name(&Spanned::new(span.clone(), tool), upstreams)?;
                self.spans.record(format!("undo.{tool_name}"), at);
                match (capture, args) {
                    (Some(c), None) => {
                        let capture = self.tool_name(&Spanned::new(span, c), upstreams)?;
                        self.spans.record(format!("undo.{capture}"), at);
                        Some(UndoRecipe::Capture {
                            capture,
                            tool: tool_name,
                        })
                    }
                    (None, args) => {
                        let args = args.unwrap_or(serde_json::Value::Object(Default::default()));
                        if !args.is_object() {
                            self.error_at(at, "undo `args` must be a table");
                        }
                        if let Some(bad) = bad_placeholder(&args) {
                            self.error_at(at, format!("undo placeholder `{{{{{bad}}}}}` must name `input.PATH` or `result.PATH`")).help =
                                Some("e.g. args = { refund_id = \"{{result.refund_id}}\" }".into());
                        }
                        Some(UndoRecipe::Compensate {
                            tool: tool_name,
                            args,
                        })
                    }
                    (Some(_), Some(_)) => {
                        self.error_at(at, "an undo recipe has `capture` or `args`, not both");
                        None
                    }
                }
            }
        }
    }

    fn check_roles(&mut self, roles: &[Spanned<String>], known: &BTreeSet<String>) {
        for r in roles {
            if !known.contains(r.get_ref()) {
                self.error_at(r.span().start, format!("unknown role `{}`", r.get_ref()))
                    .help = Some("declare it in a [[roles]] table".into());
            }
        }
    }

    fn agents(
        &mut self,
        raw: Vec<raw::Agent>,
        roles: &BTreeSet<String>,
        upstreams: &BTreeSet<String>,
        classes: &DataClasses,
    ) -> Vec<Agent> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for a in raw {
            self.check_unique(&mut seen, "agent", &a.id);
            self.check_ident("agent id", &a.id, true);
            self.check_roles(&a.roles, roles);
            self.check_class(classes, &a.clearance);
            for (field, value) in [("owner", &a.owner), ("purpose", &a.purpose)] {
                if value.get_ref().trim().is_empty() {
                    self.error_at(
                        value.span().start,
                        format!("agent `{}` has an empty `{field}`", a.id.get_ref()),
                    );
                }
            }
            let mut tool_modes = BTreeMap::new();
            for (tool, mode) in a.tool_modes {
                let spanned = Spanned::new(a.id.span(), tool);
                if let Some(t) = self.tool_name(&spanned, upstreams) {
                    tool_modes.insert(t, mode);
                }
            }
            self.spans
                .record(format!("agents.{}", a.id.get_ref()), a.id.span().start);
            out.push(Agent {
                id: a.id.into_inner(),
                owner: a.owner.into_inner(),
                purpose: a.purpose.into_inner(),
                roles: a.roles.into_iter().map(Spanned::into_inner).collect(),
                mode: a.mode,
                clearance: a.clearance.into_inner(),
                delegation: a.delegation,
                data_basis: a.data_basis,
                risk: a.risk,
                tool_modes,
            });
        }
        out
    }

    fn users(&mut self, raw: Vec<raw::User>, roles: &BTreeSet<String>) -> Vec<User> {
        let mut seen = BTreeSet::new();
        raw.into_iter()
            .map(|u| {
                self.check_unique(&mut seen, "user", &u.id);
                self.check_roles(&u.roles, roles);
                User {
                    id: u.id.into_inner(),
                    roles: u.roles.into_iter().map(Spanned::into_inner).collect(),
                }
            })
            .collect()
    }

    fn approvals(&mut self, raw: raw::Approvals) -> ApprovalsConfig {
        if let Some(url) = &raw.webhook {
            let s = url.get_ref();
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                self.error_at(
                    url.span().start,
                    format!("`webhook` must be an http(s) URL, got `{s}`"),
                );
            }
        }
        ApprovalsConfig {
            ttl: Duration::from_secs(raw.ttl_secs.unwrap_or(3600)),
            wait: Duration::from_millis(raw.wait_ms.unwrap_or(0)),
            webhook: raw.webhook.map(Spanned::into_inner),
            allow_self_approval: raw.allow_self_approval,
        }
    }

    fn audit(&mut self, raw: raw::Audit) -> AuditConfig {
        if let Some(origin) = &raw.origin {
            let s = origin.get_ref();
            if s.is_empty()
                || s.chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '+')
            {
                self.error_at(
                    origin.span().start,
                    format!("`origin` {s:?} is not a log name"),
                )
                .help = Some(
                    "a non-empty name without spaces, control characters or '+', \
                     e.g. \"warden.example.com/audit\""
                        .into(),
                );
            }
        }
        AuditConfig {
            origin: raw
                .origin
                .map(Spanned::into_inner)
                .unwrap_or_else(|| AuditConfig::DEFAULT_ORIGIN.to_owned()),
            key_file: raw.key_file,
            checkpoint_interval: Duration::from_millis(
                raw.checkpoint_interval_ms.unwrap_or(1000).max(10),
            ),
        }
    }

    fn server(&mut self, raw: raw::Server) -> ServerConfig {
        if let Some(db) = &raw.database {
            let s = db.get_ref();
            if !(s.starts_with("sqlite:")
                || s.starts_with("postgres://")
                || s.starts_with("postgresql://"))
            {
                self.error_at(db.span().start, format!("unsupported database `{s}`"))
                    .help = Some("use sqlite://FILE or postgres://USER@HOST/DB".into());
            }
        }
        if let Some(listen) = &raw.listen
            && listen.get_ref().parse::<std::net::SocketAddr>().is_err()
        {
            self.error_at(
                listen.span().start,
                format!("`listen` is not an address: `{}`", listen.get_ref()),
            )
            .help = Some("for example \"127.0.0.1:8700\"".into());
        }
        ServerConfig {
            listen: raw
                .listen
                .map(Spanned::into_inner)
                .unwrap_or_else(|| "127.0.0.1:8700".into()),
            database: raw
                .database
                .map(Spanned::into_inner)
                .unwrap_or_else(|| "sqlite://warden.db".into()),
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from(".warden")),
            max_body_bytes: raw.max_body_bytes.unwrap_or(1 << 20),
            call_timeout: Duration::from_millis(raw.call_timeout_ms.unwrap_or(30_000)),
            allowed_hosts: raw.allowed_hosts,
            audit_batch_max: raw.audit_batch_max.unwrap_or(512).max(1),
        }
    }
}

/// The file's shape, as written.
mod raw {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        #[serde(default)]
        pub server: Server,
        #[serde(default)]
        pub classes: Classes,
        #[serde(default)]
        pub vendors: Vec<Vendor>,
        #[serde(default)]
        pub upstreams: Vec<Upstream>,
        #[serde(default)]
        pub tools: Vec<Tool>,
        #[serde(default)]
        pub roles: Vec<Role>,
        #[serde(default)]
        pub agents: Vec<Agent>,
        #[serde(default)]
        pub users: Vec<User>,
        #[serde(default)]
        pub policy: Policy,
        #[serde(default)]
        pub approvals: Approvals,
        #[serde(default)]
        pub audit: Audit,
        #[serde(default)]
        pub dlp: Dlp,
        #[serde(default)]
        pub vault: super::vault::raw::Vault,
        #[serde(default)]
        pub retention: super::vault::raw::Retention,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Dlp {
        #[serde(default)]
        pub detectors: Vec<Detector>,
        #[serde(default)]
        pub disabled: Vec<Spanned<String>>,
        #[serde(default)]
        pub detector_classes: BTreeMap<String, Spanned<String>>,
        pub on_vendor_excess: Option<VendorExcess>,
        pub on_injection: Option<InjectionAction>,
        #[serde(default)]
        pub allowed_link_hosts: Vec<Spanned<String>>,
        pub max_result_bytes: Option<Spanned<usize>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Detector {
        pub name: Spanned<String>,
        pub pattern: Spanned<String>,
        pub class: Spanned<String>,
        #[serde(default)]
        pub keywords: Vec<Spanned<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Audit {
        pub origin: Option<Spanned<String>>,
        pub key_file: Option<PathBuf>,
        pub checkpoint_interval_ms: Option<u64>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Approvals {
        pub ttl_secs: Option<u64>,
        pub wait_ms: Option<u64>,
        pub webhook: Option<Spanned<String>>,
        #[serde(default)]
        pub allow_self_approval: bool,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Server {
        pub listen: Option<Spanned<String>>,
        pub database: Option<Spanned<String>>,
        pub data_dir: Option<PathBuf>,
        pub max_body_bytes: Option<usize>,
        pub call_timeout_ms: Option<u64>,
        #[serde(default)]
        pub allowed_hosts: Vec<String>,
        pub audit_batch_max: Option<usize>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Classes {
        pub order: Option<Spanned<Vec<String>>>,
        pub default: Option<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Vendor {
        pub name: Spanned<String>,
        pub cleared: Spanned<String>,
        pub region: Option<String>,
        #[serde(default)]
        pub receives: Vec<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Upstream {
        pub name: Spanned<String>,
        pub vendor: Spanned<String>,
        pub command: Option<Spanned<Vec<String>>>,
        pub url: Option<Spanned<String>>,
        #[serde(default)]
        pub env: BTreeMap<String, SecretValue>,
        #[serde(default)]
        pub headers: BTreeMap<String, SecretValue>,
        pub cwd: Option<PathBuf>,
        pub sandbox: Option<Spanned<String>>,
        #[serde(default)]
        pub trusted: bool,
        pub prefix: Option<Spanned<String>>,
        pub timeout_ms: Option<u64>,
        #[serde(default)]
        pub untrusted_output: bool,
        pub pin: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Tool {
        pub name: Spanned<String>,
        pub risk: Option<RiskTier>,
        pub description: Option<String>,
        pub mode: Option<Mode>,
        pub undo: Option<Spanned<Undo>>,
        #[serde(default)]
        pub classify: BTreeMap<String, Spanned<String>>,
        pub input_schema: Option<serde_json::Value>,
        #[serde(default)]
        pub limits: Vec<RateLimit>,
        pub budget: Option<Budget>,
        pub on_excess: Option<ExcessAction>,
        pub projection: Option<Vec<Spanned<String>>>,
        pub output: Option<OutputCheck>,
        pub output_schema: Option<Spanned<serde_json::Value>>,
        pub untrusted_output: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Undo {
        Keyword(String),
        // Untagged enums buffer their content, which loses spans: the whole recipe's span is used.
        Recipe {
            tool: String,
            capture: Option<String>,
            args: Option<serde_json::Value>,
        },
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Role {
        pub name: Spanned<String>,
        pub description: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Agent {
        pub id: Spanned<String>,
        pub owner: Spanned<String>,
        pub purpose: Spanned<String>,
        #[serde(default)]
        pub roles: Vec<Spanned<String>>,
        pub mode: Mode,
        pub clearance: Spanned<String>,
        #[serde(default)]
        pub delegation: bool,
        pub data_basis: Option<String>,
        pub risk: Option<RiskTier>,
        #[serde(default)]
        pub tool_modes: BTreeMap<String, Mode>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct User {
        pub id: Spanned<String>,
        #[serde(default)]
        pub roles: Vec<Spanned<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Policy {
        pub dir: Option<PathBuf>,
        pub shadow: Option<PathBuf>,
    }
}

/// The first placeholder in an undo template whose root is not `input.` or `result.` (or that is
/// not closed), if any.
fn bad_placeholder(template: &serde_json::Value) -> Option<String> {
    match template {
        serde_json::Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else {
                    return Some(after.to_owned());
                };
                let path = after[..end].trim();
                let ok = ["input.", "result."]
                    .iter()
                    .any(|root| path.strip_prefix(root).is_some_and(|p| !p.is_empty()));
                if !ok {
                    return Some(path.to_owned());
                }
                rest = &after[end + 2..];
            }
            None
        }
        serde_json::Value::Array(items) => items.iter().find_map(bad_placeholder),
        serde_json::Value::Object(map) => map.values().find_map(bad_placeholder),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:8700"

[[vendors]]
name = "internal"
cleared = "restricted"

[[upstreams]]
name = "crm"
vendor = "internal"
command = ["warden", "sample-upstream", "crm"]
sandbox = "crm-staging"

[[upstreams]]
name = "crm-staging"
vendor = "internal"
command = ["warden", "sample-upstream", "crm"]

[[tools]]
name = "crm.update_customer"
risk = "high"
undo = { capture = "crm.get_customer", tool = "crm.update_customer" }
classify = { "result/ssn" = "regulated" }

[[roles]]
name = "support"

[[agents]]
id = "support-bot"
owner = "lead@example.com"
purpose = "Answer tickets"
roles = ["support"]
mode = "execute"
clearance = "internal"
"#;

    fn parse(src: &str) -> Result<Config, Diagnostics> {
        Config::parse(Path::new("warden.toml"), src)
    }

    fn first_error(src: &str) -> Diagnostic {
        parse(src).unwrap_err().0.remove(0)
    }

    #[test]
    fn a_valid_config_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.server.database, "sqlite://warden.db");
        assert_eq!(c.default_class, "internal");
        assert_eq!(c.agents[0].mode, Mode::Execute);
        assert!(matches!(c.tools[0].undo, Some(UndoRecipe::Capture { .. })));
        assert_eq!(
            c.upstream("crm").unwrap().sandbox.as_deref(),
            Some("crm-staging")
        );
    }

    #[test]
    fn an_undo_template_must_name_input_or_result() {
        let src = GOOD.replace(
            "undo = { capture = \"crm.get_customer\", tool = \"crm.update_customer\" }",
            "undo = { tool = \"crm.update_customer\", args = { customer_id = \"{{output.id}}\" } }",
        );
        let e = first_error(&src);
        assert!(e.message.contains("output.id"), "{}", e.message);
        let fine = GOOD.replace(
            "undo = { capture = \"crm.get_customer\", tool = \"crm.update_customer\" }",
            "undo = { tool = \"crm.update_customer\", args = { customer_id = \"{{input.customer_id}}\", notes = \"undo of {{result.id}}\" } }",
        );
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn an_unknown_key_is_reported_at_its_line() {
        let src = GOOD.replace(
            "mode = \"execute\"",
            "mode = \"execute\"\nfavourite_colour = \"blue\"",
        );
        let d = first_error(&src);
        assert!(d.message.contains("favourite_colour"), "{d}");
        let line = src
            .lines()
            .position(|l| l.starts_with("favourite_colour"))
            .unwrap()
            + 1;
        assert_eq!(d.line, line, "{d}");
    }

    #[test]
    fn a_syntax_error_names_the_line() {
        let d = first_error("[server\nlisten = 1");
        assert_eq!(d.line, 1, "{d}");
    }

    #[test]
    fn a_role_that_does_not_exist_is_an_error_at_its_use() {
        let src = GOOD.replace(
            "roles = [\"support\"]",
            "roles = [\"support\", \"finance\"]",
        );
        let d = first_error(&src);
        assert!(d.message.contains("unknown role `finance`"), "{d}");
        assert_eq!(
            d.line,
            src.lines().position(|l| l.contains("\"finance\"")).unwrap() + 1
        );
    }

    #[test]
    fn a_tool_of_an_unknown_upstream_is_an_error() {
        let d = first_error(&GOOD.replace(
            "name = \"crm.update_customer\"",
            "name = \"billing.charge\"",
        ));
        assert!(d.message.contains("unknown upstream `billing`"), "{d}");
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let src = GOOD
            .replace("clearance = \"internal\"", "clearance = \"secret\"")
            .replace("vendor = \"internal\"\ncommand = [\"warden\", \"sample-upstream\", \"crm\"]\nsandbox", "vendor = \"acme\"\ncommand = [\"warden\", \"sample-upstream\", \"crm\"]\nsandbox");
        let errs = parse(&src).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs}");
    }

    #[test]
    fn an_upstream_needs_exactly_one_transport() {
        let d = first_error(&GOOD.replace(
            "command = [\"warden\", \"sample-upstream\", \"crm\"]\nsandbox",
            "sandbox",
        ));
        assert!(d.message.contains("neither `command` nor `url`"), "{d}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = SecretValue::Literal("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn dlp_settings_have_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.dlp.on_vendor_excess, VendorExcess::Redact);
        assert_eq!(c.dlp.on_injection, InjectionAction::Quarantine);
        assert_eq!(c.dlp.max_result_bytes, c.server.max_body_bytes);
        let tool = &c.tools[0];
        assert_eq!(tool.on_excess, ExcessAction::Mask);
        assert_eq!(tool.output, OutputCheck::DropUnexpected);
        assert!(tool.projection.is_none() && tool.output_schema.is_none());
    }

    const DLP: &str = r#"
[dlp]
on_vendor_excess = "deny"
on_injection = "warn"
allowed_link_hosts = ["Docs.Example.com"]
max_result_bytes = 4096
disabled = ["ip_address"]
detector_classes = { email = "internal" }

[[dlp.detectors]]
name = "employee_id"
pattern = 'EMP-\d{6}'
class = "confidential"
keywords = ["emp-"]
"#;

    #[test]
    fn a_dlp_section_parses() {
        let src = format!("{GOOD}{DLP}").replace(
            "classify = { \"result/ssn\" = \"regulated\" }",
            "classify = { \"result/ssn\" = \"regulated\" }\non_excess = \"pseudonym\"\nprojection = [\"result/id\"]\noutput = \"fail_unexpected\"\noutput_schema = { type = \"object\", properties = { id = { type = \"string\" } } }",
        );
        let c = parse(&src).unwrap();
        assert_eq!(c.dlp.on_vendor_excess, VendorExcess::Deny);
        assert_eq!(c.dlp.on_injection, InjectionAction::Warn);
        assert_eq!(c.dlp.allowed_link_hosts, ["docs.example.com"]);
        assert_eq!(c.dlp.max_result_bytes, 4096);
        assert_eq!(c.dlp.detectors[0].keywords, ["emp-"]);
        let tool = &c.tools[0];
        assert_eq!(tool.on_excess, ExcessAction::Pseudonym);
        assert_eq!(
            tool.projection.as_deref(),
            Some(&["result/id".to_owned()][..])
        );
        assert_eq!(tool.output, OutputCheck::FailUnexpected);
        assert!(tool.output_schema.as_ref().is_some_and(|s| s.is_object()));
    }

    /// The line (1-based) of the first line of `src` containing `needle`.
    fn line_of(src: &str, needle: &str) -> usize {
        src.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn dlp_mistakes_are_reported_at_their_line() {
        for (from, to, needle, says) in [
            (
                "pattern = 'EMP-\\d{6}'",
                "pattern = 'EMP-(\\d'",
                "EMP-(",
                "bad pattern",
            ),
            (
                "pattern = 'EMP-\\d{6}'",
                "pattern = '\\d*'",
                "pattern =",
                "empty string",
            ),
            (
                "disabled = [\"ip_address\"]",
                "disabled = [\"ip_adress\"]",
                "ip_adress",
                "unknown detector",
            ),
            (
                "class = \"confidential\"",
                "class = \"secret\"",
                "\"secret\"",
                "unknown data class",
            ),
            (
                "name = \"employee_id\"",
                "name = \"ssn\"",
                "name = \"ssn\"",
                "built-in",
            ),
            (
                "allowed_link_hosts = [\"Docs.Example.com\"]",
                "allowed_link_hosts = [\"https://x\"]",
                "https://x",
                "not a host",
            ),
            (
                "on_injection = \"warn\"",
                "on_injection = \"shout\"",
                "shout",
                "unknown variant",
            ),
        ] {
            let src = format!("{GOOD}{DLP}").replace(from, to);
            assert_ne!(src, format!("{GOOD}{DLP}"), "{from}");
            let d = first_error(&src);
            assert!(d.message.contains(says), "{to}: {d}");
            assert_eq!(d.line, line_of(&src, needle), "{to}: {d}");
        }
    }

    #[test]
    fn tool_and_vendor_dlp_keys_are_checked() {
        let src = GOOD.replace(
            "cleared = \"restricted\"",
            "cleared = \"restricted\"\nreceives = [\"emial\"]",
        );
        let d = first_error(&src);
        assert!(d.message.contains("unknown detector `emial`"), "{d}");
        assert_eq!(d.line, line_of(&src, "emial"));
        let src = GOOD.replace(
            "classify = { \"result/ssn\" = \"regulated\" }",
            "projection = [\"id\"]",
        );
        let d = first_error(&src);
        assert!(d.message.contains("must start with `result/`"), "{d}");
        assert_eq!(d.line, line_of(&src, "projection"));
        let src = GOOD.replace(
            "classify = { \"result/ssn\" = \"regulated\" }",
            "output_schema = \"object\"",
        );
        assert!(first_error(&src).message.contains("output_schema"));
        let src = GOOD.replace(
            "classify = { \"result/ssn\" = \"regulated\" }",
            "on_excess = \"shred\"",
        );
        assert!(first_error(&src).message.contains("unknown variant"));
    }

    #[test]
    fn a_relative_sqlite_path_resolves_next_to_the_config() {
        let c = Config::parse(Path::new("/etc/warden/warden.toml"), GOOD).unwrap();
        assert_eq!(c.database_url(), "sqlite:///etc/warden/warden.db");
    }
}
