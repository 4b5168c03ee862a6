//! The policy bundle: parsed, re-identified, validated policies, sliced per tool, with the
//! static entities and the content hash every audit event names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer, Effect, EntityUid, Policy, PolicyId, PolicySet, ValidationMode,
    Validator,
};
use warden_core::diag::line_col;
use warden_core::{Catalog, Config, Diagnostic, Diagnostics, ToolInfo, ToolName};

use crate::entities::{Kind, StaticEntities, uid};
use crate::hash::bundle_hash;
use crate::schema::{GeneratedSchema, InputType, generate_schema, risk_group, upstream_group};
use crate::sources::PolicySource;

/// Whether a policy permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyEffect {
    Permit,
    Forbid,
}

/// One policy of the bundle, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// `@id("...")`, or `<file stem>:<n>` (n counts the file's policies from 1).
    pub id: String,
    pub file: PathBuf,
    /// 1-based position of the policy's first character (its first annotation, if any).
    pub line: usize,
    pub column: usize,
    pub effect: PolicyEffect,
    /// The policy's source text, annotations included.
    pub text: String,
    /// Every annotation, `@id` included: `@approval("finance")` is `approval -> finance`.
    pub annotations: BTreeMap<String, String>,
}

/// Everything Cedar needs to decide calls of one tool. Only the policies whose action scope can
/// match the tool are here: Cedar evaluates every policy of the set it is given, so a per-tool
/// slice keeps the cost of a decision flat however many policies the bundle holds.
#[derive(Debug, Clone)]
pub(crate) struct ToolSlice {
    pub action: EntityUid,
    pub resource: EntityUid,
    pub input: InputType,
    pub policies: PolicySet,
    /// The tools whose `context.session.counts` the slice's policies can read; the context
    /// carries only these, so building it does not grow with the catalog.
    pub session_counts: Vec<String>,
    /// Whether any of the slice's policies can read `context.session` at all: when none can,
    /// the gateway need not load the session (nor wait for its lock) to decide a call.
    pub reads_session: bool,
    /// The top-level `context.input` fields the slice's policies can read (`None`: all). Every
    /// argument is still checked against the input type; only these reach the context.
    pub input_fields: Option<BTreeSet<String>>,
}

/// Validated policies plus everything needed to decide with them; immutable once built, so one
/// bundle is shared by all requests and replaced whole when policies or config change.
pub struct PolicyBundle {
    pub(crate) schema: GeneratedSchema,
    pub(crate) entities: StaticEntities,
    pub(crate) slices: HashMap<ToolName, ToolSlice>,
    pub(crate) policies: BTreeMap<String, PolicyInfo>,
    pub(crate) authorizer: Authorizer,
    warnings: Vec<Diagnostic>,
    hash: String,
}

impl fmt::Debug for PolicyBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBundle")
            .field("hash", &self.hash)
            .field("policies", &self.policies.len())
            .field("tools", &self.slices.len())
            .finish_non_exhaustive()
    }
}

impl PolicyBundle {
    /// Parse, identify and validate `sources` against the schema generated from `config` and
    /// `catalog`. Every problem is reported, each at its file, line and column.
    pub fn build(
        config: &Config,
        catalog: &Catalog,
        sources: &[PolicySource],
    ) -> Result<PolicyBundle, Diagnostics> {
        let schema = generate_schema(config, catalog)?;
        let mut diags = Diagnostics::default();
        let parsed: Vec<ParsedPolicy> = sources
            .iter()
            .enumerate()
            .flat_map(|(i, s)| parse_source(i, s, &mut diags))
            .collect();
        check_unique_ids(&parsed, &mut diags);
        let set = policy_set(&parsed);
        let warnings = validate(&schema, &set, &parsed, sources, &mut diags);
        let entities = match StaticEntities::build(config, catalog, &schema) {
            Ok(e) => Some(e),
            Err(d) => {
                diags.extend(d);
                None
            }
        };
        let (Some(entities), true) = (entities, diags.is_empty()) else {
            // Cedar reports validation errors in no fixed order; people read them file by file.
            diags
                .0
                .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(diags);
        };
        let all_tools: Vec<String> = catalog.iter().map(|t| t.name.to_string()).collect();
        let slices = catalog
            .iter()
            .map(|tool| {
                let slice = slice_for(tool, &schema, &parsed, &all_tools);
                (tool.name.clone(), slice)
            })
            .collect();
        Ok(PolicyBundle {
            hash: bundle_hash(sources, config, catalog),
            policies: parsed
                .into_iter()
                .map(|p| (p.info.id.clone(), p.info))
                .collect(),
            schema,
            entities,
            slices,
            authorizer: Authorizer::new(),
            warnings,
        })
    }

    /// Hex SHA-256 of the policy files and the decision-relevant config and catalog.
    pub fn hash(&self) -> &str {
        &self.hash
    }
    pub fn schema(&self) -> &GeneratedSchema {
        &self.schema
    }
    /// Validator warnings (e.g. a policy that can never apply); not errors, but worth showing.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
    /// Every policy, by id.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> {
        self.policies.values()
    }
    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.policies.get(id)
    }
    /// The source text of a policy (what `explain` shows for the deciding policies).
    pub fn policy_text(&self, id: &str) -> Option<String> {
        self.policies.get(id).map(|p| p.text.clone())
    }
    /// A policy's annotations, e.g. `approval -> finance` for `@approval("finance")`.
    pub fn annotations(&self, id: &str) -> Option<&BTreeMap<String, String>> {
        self.policies.get(id).map(|p| &p.annotations)
    }
    /// One annotation of a policy.
    pub fn annotation(&self, id: &str, key: &str) -> Option<&str> {
        self.annotations(id)?.get(key).map(String::as_str)
    }
    /// Whether a policy evaluated for calls of `tool` can read `context.session`; true for a
    /// tool the bundle does not know, so a caller never skips a session it might need.
    pub fn reads_session(&self, tool: &ToolName) -> bool {
        self.slices.get(tool).is_none_or(|s| s.reads_session)
    }
    /// Ids of the policies evaluated for calls of `tool` (its slice), in no particular order.
    pub fn policies_for_tool(&self, tool: &ToolName) -> Vec<String> {
        self.slices
            .get(tool)
            .map(|s| s.policies.policies().map(|p| p.id().to_string()).collect())
            .unwrap_or_default()
    }
}

struct ParsedPolicy {
    policy: Policy,
    info: PolicyInfo,
    source: usize,
}

/// Parse one file, giving each policy its Warden id. Parse errors go to `diags`.
fn parse_source(index: usize, source: &PolicySource, diags: &mut Diagnostics) -> Vec<ParsedPolicy> {
    let set = match PolicySet::from_str(&source.text) {
        Ok(set) => set,
        Err(errors) => {
            for e in errors.iter() {
                diags.push(cedar_diagnostic(
                    &source.path,
                    &source.text,
                    e,
                    e.to_string(),
                ));
            }
            return Vec::new();
        }
    };
    for template in set.templates() {
        let offset = locate(&source.text, &template.to_cedar(), 0);
        diags.push(
            Diagnostic::at_offset(
                &source.path,
                &source.text,
                offset,
                "policy templates are not supported",
            )
            .with_help("write a static policy: replace `?principal` / `?resource` with entities"),
        );
    }
    // Cedar names a file's policies policy0, policy1, ... in source order; walk them in that
    // order so each is found in the text after the previous one.
    let mut policies: Vec<&Policy> = set.policies().collect();
    policies.sort_by_key(|p| cedar_index(p.id()));
    let mut cursor = 0;
    let mut out = Vec::with_capacity(policies.len());
    for (n, policy) in policies.into_iter().enumerate() {
        let text = policy.to_cedar().unwrap_or_else(|| policy.to_string());
        let offset = locate(&source.text, &text, cursor);
        cursor = offset + text.len();
        let id = policy
            .annotation("id")
            .map_or_else(|| format!("{}:{}", source.stem(), n + 1), str::to_owned);
        let (line, column) = line_col(&source.text, offset);
        if id.is_empty() {
            diags.push(Diagnostic::new(
                &source.path,
                line,
                column,
                "`@id` is empty",
            ));
        }
        let info = PolicyInfo {
            effect: match policy.effect() {
                Effect::Permit => PolicyEffect::Permit,
                Effect::Forbid => PolicyEffect::Forbid,
            },
            annotations: policy
                .annotations()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            file: source.path.clone(),
            line,
            column,
            text,
            id: id.clone(),
        };
        out.push(ParsedPolicy {
            policy: policy.new_id(PolicyId::new(&id)),
            info,
            source: index,
        });
    }
    out
}

/// The number in Cedar's default id `policyN`.
fn cedar_index(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Byte offset of `text` in `source` at or after `from` (or `from` if it is not there).
fn locate(source: &str, text: &str, from: usize) -> usize {
    source
        .get(from..)
        .and_then(|rest| rest.find(text))
        .map_or(from, |i| from + i)
}

/// Two policies with one id: an error at both, each pointing at the other.
fn check_unique_ids(parsed: &[ParsedPolicy], diags: &mut Diagnostics) {
    let mut first: HashMap<&str, &PolicyInfo> = HashMap::new();
    for p in parsed {
        let Some(earlier) = first.get(p.info.id.as_str()) else {
            first.insert(&p.info.id, &p.info);
            continue;
        };
        let place = |i: &PolicyInfo| format!("{}:{}", i.file.display(), i.line);
        let id = &p.info.id;
        diags.push(Diagnostic::new(
            &earlier.file,
            earlier.line,
            earlier.column,
            format!("policy id `{id}` is used again at {}", place(&p.info)),
        ));
        diags.push(
            Diagnostic::new(
                &p.info.file,
                p.info.line,
                p.info.column,
                format!("policy id `{id}` is already used at {}", place(earlier)),
            )
            .with_help("give each policy a unique @id(\"...\")"),
        );
    }
}

/// All parsed policies in one set (the first of any duplicate id only: duplicates are already
/// reported).
fn policy_set(parsed: &[ParsedPolicy]) -> PolicySet {
    let mut set = PolicySet::new();
    for p in parsed {
        // Fails only for a duplicate id, which check_unique_ids has reported.
        let _ = set.add(p.policy.clone());
    }
    set
}

/// Strict validation against the generated schema; errors go to `diags`, warnings are returned.
fn validate(
    schema: &GeneratedSchema,
    set: &PolicySet,
    parsed: &[ParsedPolicy],
    sources: &[PolicySource],
    diags: &mut Diagnostics,
) -> Vec<Diagnostic> {
    let by_id: HashMap<&str, &ParsedPolicy> =
        parsed.iter().map(|p| (p.info.id.as_str(), p)).collect();
    let locate_error = |id: &PolicyId, err: &dyn miette::Diagnostic, message: String| {
        let found = by_id
            .get(AsRef::<str>::as_ref(id))
            .and_then(|p| sources.get(p.source).map(|s| (p, s)));
        match found {
            Some((p, s)) => {
                let d = cedar_diagnostic(&s.path, &s.text, err, message);
                // Without a label, point at the policy itself.
                if d.line == 0 {
                    Diagnostic {
                        line: p.info.line,
                        column: p.info.column,
                        ..d
                    }
                } else {
                    d
                }
            }
            None => cedar_diagnostic(Path::new("(policies)"), "", err, message),
        }
    };
    let result = Validator::new(schema.schema().clone()).validate(set, ValidationMode::Strict);
    for e in result.validation_errors() {
        diags.push(locate_error(e.policy_id(), e, e.to_string()));
    }
    result
        .validation_warnings()
        .map(|w| locate_error(w.policy_id(), w, w.to_string()))
        .collect()
}

/// A Cedar error as a Warden diagnostic, at the first place Cedar labels, with Cedar's help.
fn cedar_diagnostic(
    file: &Path,
    source: &str,
    err: &dyn miette::Diagnostic,
    message: String,
) -> Diagnostic {
    let offset = err
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let (line, column) = offset.map_or((0, 0), |o| line_col(source, o));
    let d = Diagnostic::new(file, line, column, message);
    match err.help() {
        Some(help) => d.with_help(help.to_string()),
        None => d,
    }
}

/// The policies whose action scope can match `tool`.
fn slice_for(
    tool: &ToolInfo,
    schema: &GeneratedSchema,
    parsed: &[ParsedPolicy],
    all_tools: &[String],
) -> ToolSlice {
    let action = uid(Kind::Action, tool.name.as_str());
    // `action in X` holds for the tool itself and for the groups it is a member of.
    let matches = [
        action.clone(),
        uid(Kind::Action, &upstream_group(tool.name.upstream())),
        uid(Kind::Action, &risk_group(tool.risk)),
    ];
    let mut policies = PolicySet::new();
    let mut reads = ContextReads::default();
    for p in parsed {
        if scope_may_match(&p.policy.action_constraint(), &matches) {
            reads.add(&p.policy);
            let _ = policies.add(p.policy.clone());
        }
    }
    ToolSlice {
        session_counts: reads.tools(all_tools),
        reads_session: reads.reads_session(),
        input_fields: reads.input_fields(),
        resource: uid(Kind::Tool, tool.name.as_str()),
        input: schema
            .input_type(&tool.name)
            .cloned()
            .unwrap_or(InputType::Record(Vec::new())),
        action,
        policies,
    }
}

fn scope_may_match(constraint: &ActionConstraint, matches: &[EntityUid]) -> bool {
    match constraint {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => matches.first() == Some(a),
        ActionConstraint::In(list) => list.iter().any(|a| matches.contains(a)),
    }
}

/// Which parts of the context a set of policies reads: the attributes of
/// `context.session.counts` and the top-level fields of `context.input`. A policy that uses a
/// record as a whole (or `context.session`, or `context`, as a whole) reads all of it.
#[derive(Default)]
struct ContextReads {
    /// An attribute named `session` is read somewhere (conservatively, wherever it is).
    session: bool,
    all_counts: bool,
    counts: BTreeSet<String>,
    all_input: bool,
    input: BTreeSet<String>,
}

impl ContextReads {
    fn add(&mut self, policy: &Policy) {
        match policy.to_json() {
            Ok(est) => self.visit(&est, false),
            // Cannot see inside: keep the whole context, as before slicing.
            Err(_) => {
                self.all_counts = true;
                self.all_input = true;
            }
        }
    }

    /// Walks Cedar's JSON form of a policy, where `"."` and `"has"` nodes are `{left, attr}`.
    /// `accessed` is true when `node` is the `left` of such a node, i.e. only a part of it is
    /// read.
    fn visit(&mut self, node: &serde_json::Value, accessed: bool) {
        match node {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    if key == "Var" && value.as_str() == Some("context") && !accessed {
                        self.all_counts = true;
                        self.all_input = true;
                    }
                    let access = (key == "." || key == "has")
                        .then(|| Some((value.get("left")?, value.get("attr")?.as_str()?)))
                        .flatten();
                    let Some((left, attr)) = access else {
                        self.visit(value, false);
                        continue;
                    };
                    if attr == "session" {
                        self.session = true;
                    }
                    if !accessed {
                        match attr {
                            "counts" | "session" => self.all_counts = true,
                            "input" => self.all_input = true,
                            _ => {}
                        }
                    }
                    if is_access_to(left, "counts") {
                        self.counts.insert(attr.to_owned());
                    }
                    if is_access_to(left, "input") {
                        self.input.insert(attr.to_owned());
                    }
                    self.visit(left, true);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.visit(item, false);
                }
            }
            _ => {}
        }
    }

    fn tools(&self, all_tools: &[String]) -> Vec<String> {
        all_tools
            .iter()
            .filter(|t| self.all_counts || self.counts.contains(t.as_str()))
            .cloned()
            .collect()
    }

    fn reads_session(&self) -> bool {
        self.session || self.all_counts || !self.counts.is_empty()
    }

    /// The `context.input` fields to carry; `None` for all of them.
    fn input_fields(&self) -> Option<BTreeSet<String>> {
        (!self.all_input).then(|| self.input.clone())
    }
}

/// True when `expr` is `<something>.<attr>`.
fn is_access_to(expr: &serde_json::Value, attr: &str) -> bool {
    expr.get(".")
        .and_then(|access| access.get("attr"))
        .and_then(serde_json::Value::as_str)
        == Some(attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(policies: &[&str]) -> ContextReads {
        let mut read = ContextReads::default();
        for text in policies {
            read.add(&Policy::from_str(text).expect("a valid policy"));
        }
        read
    }

    fn counts_read(policies: &[&str]) -> Vec<String> {
        let all: Vec<String> = ["crm.read", "payments.refund", "email.send"]
            .map(String::from)
            .to_vec();
        reads(policies).tools(&all)
    }

    fn session_read(policies: &[&str]) -> bool {
        reads(policies).reads_session()
    }

    #[test]
    fn a_slice_reads_the_session_when_any_policy_touches_it() {
        let plain = r#"permit (principal, action, resource) when { context.mode == "execute" };"#;
        assert!(!session_read(&[plain]));
        for reader in [
            r#"forbid (principal, action, resource) when { context.session.untrusted };"#,
            r#"forbid (principal, action, resource) when { context has session };"#,
            r#"forbid (principal, action, resource) when { context.session.counts["a.b"] > 1 };"#,
            r#"permit (principal, action, resource) when { context == context };"#,
        ] {
            assert!(session_read(&[plain, reader]), "{reader}");
        }
    }

    #[test]
    fn a_slice_carries_only_the_counts_its_policies_read() {
        let refunds = r#"forbid (principal, action, resource)
            when { context.session.counts["payments.refund"] >= 3 };"#;
        let guarded = r#"permit (principal, action, resource)
            when { context.session.counts has "email.send" && context.session.calls < 9 };"#;
        assert_eq!(counts_read(&[refunds]), ["payments.refund"]);
        assert_eq!(
            counts_read(&[refunds, guarded]),
            ["payments.refund", "email.send"]
        );
    }

    #[test]
    fn a_slice_whose_policies_never_read_counts_carries_none() {
        let plain = r#"permit (principal, action, resource)
            when { context.mode == "execute" && context.session.untrusted == false };"#;
        assert!(counts_read(&[plain]).is_empty());
    }

    #[test]
    fn using_the_counts_record_whole_carries_every_count() {
        for whole in [
            r#"permit (principal, action, resource) when { context.session.counts == {} };"#,
            r#"permit (principal, action, resource) when { context.session == context.session };"#,
            r#"permit (principal, action, resource) when { context == context };"#,
        ] {
            assert_eq!(counts_read(&[whole]).len(), 3, "{whole}");
        }
    }

    fn input_read(policies: &[&str]) -> Option<BTreeSet<String>> {
        let mut read = ContextReads::default();
        for text in policies {
            read.add(&Policy::from_str(text).expect("a valid policy"));
        }
        read.input_fields()
    }

    #[test]
    fn a_slice_carries_only_the_arguments_its_policies_read() {
        let amount = r#"forbid (principal, action, resource)
            when { context.input.amount > 100 && context.input has currency };"#;
        let nested = r#"permit (principal, action, resource)
            when { context.input.meta.region == "eu" };"#;
        let fields = input_read(&[amount, nested]).expect("named fields");
        assert_eq!(
            fields.into_iter().collect::<Vec<_>>(),
            ["amount", "currency", "meta"]
        );
        let none = r#"permit (principal, action, resource) when { context.mode == "execute" };"#;
        assert_eq!(input_read(&[none]), Some(BTreeSet::new()));
    }

    #[test]
    fn using_the_arguments_whole_carries_every_argument() {
        for whole in [
            r#"permit (principal, action, resource) when { context.input == {} };"#,
            r#"permit (principal, action, resource) when { context has input };"#,
            r#"permit (principal, action, resource) when { context == context };"#,
        ] {
            assert_eq!(input_read(&[whole]), None, "{whole}");
        }
    }
}
