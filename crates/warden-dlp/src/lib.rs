//! Warden's data protection: classification, detectors, projection and redaction, and
//! injection indicators.
//!
//! This crate is **pure**: no IO, no clock, no globals that change. It gives the gateway's
//! `minimize` stage (arguments → destination vendor's clearance) and `inspect` stage (result →
//! agent's clearance) everything they need to decide what a party may see:
//!
//! - [`Scanner`] finds sensitive values in free text (e-mail, phone, card, IBAN, SSN, IP,
//!   date of birth, private keys, JWTs, provider API keys, bearer tokens, passwords,
//!   high-entropy secrets, custom patterns), each mapped to a data class.
//! - [`FieldRules`] classifies JSON fields from a tool's `classify` map; [`project`] drops,
//!   masks or pseudonymises fields above a clearance, [`keep_only`] keeps a listed projection.
//! - [`redact_text`] rewrites detected spans above a clearance.
//! - [`inspect_call_tool_result`] / [`inspect_arguments`] do all of it to an MCP
//!   `CallToolResult` or a call's arguments and return findings (kinds and counts, never
//!   values).
//! - [`scan_injection`] flags text addressed to the model: "ignore previous instructions",
//!   role markers, tool-call shaped JSON, hidden Unicode, links to unknown hosts.
//!
//! # One pass
//!
//! Detection does not run one regex after another over the text. One Aho-Corasick automaton
//! finds every anchor (digits, `@`, `-----BEGIN`, `AKIA`, `ghp_`, `eyJ`, keywords, ...); each
//! detector family is one multi-pattern regex that runs only in the merged windows around its
//! anchors (or anchored at a prefix); then validators (Luhn, mod-97, SSN ranges, JWT header,
//! entropy) decide. Work is linear in the text. Injection indicators use the same design.

mod classify;
mod config;
mod error;
mod injection;
mod kind;
mod mcp;
mod project;
mod redact;
mod scanner;
mod validate;

pub use classify::{FieldRules, Root, classify_value};
pub use config::{CustomDetector, DlpConfig};
pub use error::DlpError;
pub use injection::{InjectionFinding, InjectionKind, InjectionScanner, scan_injection};
pub use kind::DetectorKind;
pub use mcp::{Inspection, Inspector, inspect_arguments, inspect_call_tool_result};
pub use project::{FieldAction, PseudonymKey, keep_only, project};
pub use redact::{Action, Tally, redact_text};
pub use scanner::{Scanner, Span};
