//! Cost of one decision for a ~1 KB argument object at 10, 100 and 1000 policies.
//!
//! Policies are spread over 200 synthetic tools (20 upstreams x 10 tools) plus a few global
//! ones, as a real bundle would be: slicing keeps each tool's set small, so the time should stay
//! flat as the bundle grows.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_core::{Catalog, Config, Mode, RiskTier, ToolInfo, ToolName};
use warden_policy::{AuthzRequest, PolicyBundle, PolicySource};

const UPSTREAMS: usize = 20;
const TOOLS_PER_UPSTREAM: usize = 10;
const GLOBAL_POLICIES: usize = 5;

fn config() -> Config {
    let mut toml = String::from(
        "[[vendors]]\nname = \"internal\"\ncleared = \"restricted\"\n\n[[roles]]\nname = \"ops\"\n\n",
    );
    for u in 0..UPSTREAMS {
        let _ = write!(
            toml,
            "[[upstreams]]\nname = \"svc{u}\"\nvendor = \"internal\"\ncommand = [\"svc\"]\n\n"
        );
    }
    toml.push_str(
        "[[agents]]\nid = \"bench-bot\"\nowner = \"o@example.com\"\npurpose = \"bench\"\nroles = [\"ops\"]\nmode = \"execute\"\nclearance = \"internal\"\n",
    );
    Config::parse(Path::new("bench.toml"), &toml).unwrap_or_else(|d| panic!("{d}"))
}

fn input_schema() -> Value {
    json!({"type": "object", "required": ["amount", "currency", "customer_id"], "properties": {
        "amount": {"type": "integer"},
        "currency": {"type": "string"},
        "customer_id": {"type": "string"},
        "subject": {"type": "string"},
        "body": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": "object", "properties": {
            "source": {"type": "string"}, "region": {"type": "string"}, "priority": {"type": "integer"}
        }}
    }})
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    for u in 0..UPSTREAMS {
        for t in 0..TOOLS_PER_UPSTREAM {
            let name = ToolName::new(&format!("svc{u}"), &format!("op{t}"))
                .unwrap_or_else(|e| panic!("{e}"));
            catalog.insert(ToolInfo {
                exposed_name: name.to_string(),
                name,
                description: None,
                input_schema: input_schema(),
                output_schema: None,
                risk: RiskTier::ALL[t % 4],
                reversible: true,
                annotations: None,
            });
        }
    }
    catalog
}

/// `count` policies: a few global ones, the rest spread round-robin over the tools.
fn policies(count: usize) -> String {
    let mut text = String::from(
        "forbid(principal, action, resource) when { context.mode == \"read-only\" && resource.risk_level > 0 };\n\
         forbid(principal, action in Warden::Action::\"risk:critical\", resource) when { context.input.amount > 100000 };\n\
         permit(principal in Warden::Role::\"ops\", action in Warden::Action::\"upstream:svc0\", resource);\n\
         forbid(principal, action, resource) when { context has task && !context.task.tools.contains(resource.name) };\n\
         forbid(principal is Warden::Agent, action, resource) when { principal.clearance < 0 };\n",
    );
    for i in 0..count.saturating_sub(GLOBAL_POLICIES) {
        let tool = i % (UPSTREAMS * TOOLS_PER_UPSTREAM);
        let (u, t) = (tool / TOOLS_PER_UPSTREAM, tool % TOOLS_PER_UPSTREAM);
        let effect = if i % 3 == 0 { "forbid" } else { "permit" };
        let _ = writeln!(
            text,
            "{effect}(principal, action == Warden::Action::\"svc{u}.op{t}\", resource) when {{ context.input.amount > {} && context.input.currency == \"EUR\" }};",
            1000 + i
        );
    }
    text
}

/// About 1 KB of arguments.
fn input() -> Value {
    json!({
        "amount": 250,
        "currency": "EUR",
        "customer_id": "cus_0123456789",
        "subject": "Refund for order 12345",
        "body": "x".repeat(800),
        "tags": ["refund", "priority", "eu"],
        "meta": {"source": "ticket", "region": "eu-west-1", "priority": 2},
        "untyped_extra": {"ignored": true}
    })
}

fn bench_authorize(c: &mut Criterion) {
    let (config, catalog) = (config(), catalog());
    let input = input();
    assert!(serde_json::to_string(&input).map_or(0, |s| s.len()) >= 1000);
    let tool: ToolName = "svc0.op1".parse().unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("authorize");
    let mut largest = None;
    for count in [10, 100, 1000] {
        let sources = [PolicySource::new("bench.cedar", policies(count))];
        let bundle =
            PolicyBundle::build(&config, &catalog, &sources).unwrap_or_else(|d| panic!("{d}"));
        let req = AuthzRequest {
            agent: "bench-bot",
            user: None,
            task: None,
            tool: &tool,
            input: &input,
            mode: Mode::Execute,
            session: None,
            now: Utc::now(),
            classes: &[],
            findings: &[],
        };
        assert!(
            bundle.authorize(&req).allowed,
            "{}",
            bundle.authorize(&req).reason
        );
        group.bench_with_input(BenchmarkId::from_parameter(count), &req, |b, req| {
            b.iter(|| black_box(bundle.authorize(black_box(req))))
        });
        largest = Some(bundle);
    }
    group.finish();
    if let Some(bundle) = &largest {
        // The parts of a decision that do not depend on the policy count.
        let typed = bundle.schema().input_type(&tool).cloned();
        if let Some(typed) = typed {
            c.bench_function("stage/arguments_to_cedar", |b| {
                b.iter(|| black_box(typed.to_cedar(black_box(&input))))
            });
            c.bench_function("stage/arguments_to_context", |b| {
                b.iter(|| {
                    let value = typed.to_cedar(black_box(&input)).ok()?;
                    cedar_policy::Context::from_pairs([("input".to_owned(), value)]).ok()
                })
            });
        }
    }
    if let Some(bundle) = largest {
        c.bench_function("may_list/1000", |b| {
            b.iter(|| {
                black_box(bundle.may_list("bench-bot", None, None, black_box(&tool), Mode::Execute))
            })
        });
    }
}

criterion_group!(benches, bench_authorize);
criterion_main!(benches);
