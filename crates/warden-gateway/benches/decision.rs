//! The in-process decision path for one call with ~1 KB of arguments: identify (hash the agent
//! key, hit the credential cache, resolve the agent) and authorize (Cedar, on the tool's policy
//! slice), at 10, 100 and 1000 policies. The cost must stay flat as policies are added: a
//! decision evaluates only the policies that can apply to its tool.
//!
//! Run with `cargo bench -p warden-gateway --bench decision`. Besides criterion's estimates it
//! prints p50/p99 of individually timed decisions for each size.
//!
//! It allocates through mimalloc, as the `warden` binary does: with the system allocator a
//! sixth of a decision's time went to glibc's malloc and free, which the gateway never uses.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_core::config::Agent;
use warden_core::{Catalog, Config, RiskTier, ToolInfo, ToolName};
use warden_gateway::Principal;
use warden_gateway::secrets::{self, SecretKind};
use warden_policy::{AuthzRequest, PolicyBundle, PolicySource};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 3] = [10, 100, 1000];
/// Policies not constrained to an action: in every tool's slice.
const GLOBAL_POLICIES: usize = 3;
const MEASURED_TOOL: &str = "up.transfer";

const CONFIG: &str = r#"
[[vendors]]
name = "internal"
cleared = "restricted"

[[upstreams]]
name = "up"
vendor = "internal"
command = ["up-server"]

[[roles]]
name = "r"

[[roles]]
name = "auditors"

[[agents]]
id = "bench-bot"
owner = "bench@example.com"
purpose = "Benchmark decisions"
roles = ["r"]
mode = "execute"
clearance = "internal"

[[agents]]
id = "other-bot"
owner = "bench@example.com"
purpose = "Another agent, so the principal is looked up among several"
roles = ["auditors"]
mode = "read-only"
clearance = "internal"
"#;

fn tool(name: &str, input_schema: Value) -> ToolInfo {
    let name: ToolName = name.parse().expect("a valid tool name");
    ToolInfo {
        exposed_name: name.to_string(),
        name,
        description: Some("a synthetic tool".into()),
        input_schema,
        output_schema: None,
        risk: RiskTier::High,
        reversible: false,
        annotations: None,
    }
}

/// The measured tool: a money transfer with a handful of typed, described fields (~1 KB).
fn measured_schema() -> Value {
    json!({
        "type": "object",
        "required": ["from_account", "to_account", "amount", "currency"],
        "properties": {
            "from_account": {"type": "string", "description": "IBAN of the account to debit; must belong to the customer on whose behalf the agent acts."},
            "to_account": {"type": "string", "description": "IBAN of the account to credit; external accounts need an approval above the daily limit."},
            "amount": {"type": "integer", "description": "Amount in minor units (cents) of the currency; must be positive."},
            "currency": {"type": "string", "description": "ISO 4217 currency code, e.g. EUR or USD."},
            "reference": {"type": "string", "description": "Free-text reference shown to both parties on their statements."},
            "memo": {"type": "string", "description": "Internal note for the operations team; never shown to the customer."},
            "priority": {"type": "integer", "description": "0 = standard, 1 = same day, 2 = instant; higher priorities cost more."},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels for reporting, e.g. refund, payroll, supplier."}
        }
    })
}

/// ~1 KB of arguments for the measured tool.
fn measured_input() -> Value {
    json!({
        "from_account": "DE89370400440532013000",
        "to_account": "FR1420041010050500013M02606",
        "amount": 125_000,
        "currency": "EUR",
        "reference": "Invoice 2024-00017 / order 88213 / supplier payment for March deliveries",
        "memo": "Approved in the weekly supplier run; see ticket OPS-4411. ".repeat(13),
        "priority": 1,
        "tags": ["supplier", "monthly", "eu", "invoice"]
    })
}

/// A catalog of ~n/2 synthetic tools (each with an `amount`) plus the measured tool, and n
/// policies: a few global ones, two on the measured tool, the rest spread over the others.
fn scenario(n: usize) -> (Catalog, String) {
    let tools = (n / 2).max(1);
    let mut catalog = Catalog::new();
    for k in 0..tools {
        catalog.insert(tool(
            &format!("up.tool{k}"),
            json!({"type": "object", "required": ["amount"], "properties": {
                "amount": {"type": "integer"}, "note": {"type": "string"}}}),
        ));
    }
    catalog.insert(tool(MEASURED_TOOL, measured_schema()));

    let mut text = String::from(
        r#"@id("global-auditors-read")
permit (principal in Warden::Role::"auditors", action, resource) when { context.mode == "read-only" };
@id("global-no-sandbox-nights")
forbid (principal, action, resource) when { context.mode == "sandbox" && context.time.hour < 6 };
@id("global-task-scope")
forbid (principal, action, resource) when { context has task && !(context.task.tools.contains("none")) && context.mode == "suggest" };
@id("transfer-limit")
permit (principal in Warden::Role::"r", action == Warden::Action::"up.transfer", resource)
when { context.input.amount < 1000000 && context.input.currency == "EUR" };
@id("transfer-no-instant-large")
forbid (principal, action == Warden::Action::"up.transfer", resource)
when { context.input has priority && context.input.priority == 2 && context.input.amount > 500000 };
"#,
    );
    for i in 0..n.saturating_sub(GLOBAL_POLICIES + 2) {
        let k = i % tools;
        let _ = writeln!(
            text,
            r#"@id("p{i}") permit (principal in Warden::Role::"r", action == Warden::Action::"up.tool{k}", resource) when {{ context.input.amount < {} }};"#,
            1000 + i
        );
    }
    (catalog, text)
}

/// Everything one decision needs, built once per size.
struct Fixture {
    bundle: PolicyBundle,
    /// Stands in for the gateway's credential cache: key hash to principal.
    credentials: HashMap<String, Principal>,
    agents: HashMap<String, Arc<Agent>>,
    key: String,
    tool: ToolName,
    input: Value,
}

fn fixture(n: usize) -> Fixture {
    let config = Config::parse(Path::new("bench.toml"), CONFIG).expect("the bench config is valid");
    let (catalog, policies) = scenario(n);
    let bundle = PolicyBundle::build(
        &config,
        &catalog,
        &[PolicySource::new("bench.cedar", policies)],
    )
    .unwrap_or_else(|d| panic!("the bench policies are valid:\n{d}"));
    assert_eq!(bundle.policies().count(), n, "policy count");
    let key = secrets::generate(SecretKind::AgentKey);
    let mut credentials = HashMap::new();
    // Other agents' keys in the cache, so the lookup is not in a one-entry map.
    for _ in 0..64 {
        let other = secrets::generate(SecretKind::AgentKey);
        credentials.insert(other.hash, principal("other-bot", other.id));
    }
    credentials.insert(key.hash, principal("bench-bot", key.id));
    let agents = config
        .agents
        .iter()
        .map(|a| (a.id.clone(), Arc::new(a.clone())))
        .collect();
    Fixture {
        bundle,
        credentials,
        agents,
        key: key.secret,
        tool: MEASURED_TOOL.parse().expect("a valid tool name"),
        input: measured_input(),
    }
}

fn principal(agent: &str, key_id: String) -> Principal {
    Principal {
        agent: agent.into(),
        key_id: Some(key_id),
        task: None,
    }
}

impl Fixture {
    /// identify + authorize; true when the call is allowed.
    fn decide(&self) -> bool {
        // identify: hash the presented key, hit the cache, resolve the agent's config.
        let hash = secrets::hash(black_box(&self.key));
        let Some(principal) = self.credentials.get(&hash) else {
            return false;
        };
        let Some(agent) = self.agents.get(&principal.agent) else {
            return false;
        };
        // authorize: Cedar on the tool's slice, with the arguments as `context.input`.
        let decision = self.bundle.authorize(&AuthzRequest {
            agent: &agent.id,
            user: None,
            task: None,
            tool: &self.tool,
            input: black_box(&self.input),
            mode: agent.mode,
            session: None,
            now: Utc::now(),
            classes: &[],
            findings: &[],
        });
        decision.allowed
    }
}

/// p50 and p99 of individually timed decisions (criterion reports means).
fn percentiles(f: &Fixture, iterations: usize) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            black_box(f.decide());
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    (at(0.50), at(0.99))
}

fn bench_decision(c: &mut Criterion) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let mut group = c.benchmark_group("identify_authorize_1kb");
    for n in SIZES {
        let f = fixture(n);
        let input_bytes = serde_json::to_vec(&f.input).map_or(0, |v| v.len());
        assert!(f.decide(), "the measured call is allowed");
        if benchmarking {
            let (p50, p99) = percentiles(&f, 20_000);
            println!(
                "{n:>5} policies ({} in the measured tool's slice), {input_bytes}-byte input: p50 {:.1} µs, p99 {:.1} µs",
                f.bundle.policies_for_tool(&f.tool).len(),
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            );
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &f, |b, f| {
            b.iter(|| f.decide())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decision);
criterion_main!(benches);
