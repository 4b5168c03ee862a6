//! Warden's domain: the config model and its validation, the vocabulary (tools, risk tiers,
//! data classes, modes), the audit event, and the persistence traits.
//!
//! This crate does no IO beyond reading a config file: no network, no database. Every other
//! Warden crate depends on it; it depends on none of them.

pub mod catalog;
pub mod config;
pub mod diag;
pub mod event;
pub mod model;
pub mod pins;
pub mod session;
pub mod store;

pub use catalog::{Catalog, ToolInfo};
pub use config::Config;
pub use diag::{Diagnostic, Diagnostics};
pub use event::{AuditEvent, EventKind, Finding, Outcome, Verdict};
pub use model::{ClassLevel, DataClasses, Mode, RiskTier, ToolName};
