//! Warden's policy engine: Cedar schema generation, policy loading and validation, and fast
//! authorization decisions with reasons.
//!
//! - [`generate_schema`] turns the config and the tool catalog into a Cedar schema (namespace
//!   `Warden`): one action per tool, typed `context.input` from the tool's JSON input schema.
//! - [`load_policy_dir`] reads `*.cedar` files; [`PolicyBundle::build`] parses them, names each
//!   policy (`@id`, or `<file>:<n>`), validates them strictly against the schema (errors carry
//!   file:line:column), builds the static entities once, and slices the policies per tool so a
//!   decision evaluates only the policies that can apply to that tool.
//! - [`PolicyBundle::authorize`] decides a call (agent, and again the user it acts for), failing
//!   closed on anything unexpected; [`PolicyBundle::may_list`] answers whether a tool should be
//!   listed, by partial evaluation with the arguments unknown.
//! - [`run_policy_tests`] runs `warden policy test` case files.
//!
//! This crate does no network or database IO; it reads policy and test files when asked.

mod bundle;
mod decide;
mod entities;
mod hash;
mod input;
mod schema;
mod sources;
mod testing;

pub use bundle::{PolicyBundle, PolicyEffect, PolicyInfo};
pub use decide::{AuthzRequest, Decision, TaskScope};
pub use input::{ArgumentError, ArgumentProblem};
pub use schema::{
    Field, GeneratedSchema, InputType, NAMESPACE, generate_schema, risk_group, risk_level,
    upstream_group,
};
pub use sources::{PolicySource, load_policy_dir};
pub use testing::{CaseOutcome, Expectation, TestReport, run_policy_tests};

// Unit tests share the scenario fixture of the integration tests, which names this crate.
#[cfg(test)]
extern crate self as warden_policy;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod fixture;
