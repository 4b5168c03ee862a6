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

//!
//! # From the gateway
//!
//! Build a [`Scanner`] once (with the policy bundle) and [`FieldRules`] per tool; then
//! `minimize` calls [`inspect_arguments`] with the destination vendor's clearance and
//! `inspect` calls [`inspect_call_tool_result`] with the agent's clearance (or its task's, if
//! lower), putting [`Inspection::findings`] on the audit event and deciding on
//! [`Inspection::injection_found`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use serde_json::json;
//! use warden_core::DataClasses;
//! use warden_dlp::{DlpConfig, FieldAction, FieldRules, Inspector, Scanner};
//!
//! let classes = DataClasses::default();
//! let scanner = Scanner::new(&DlpConfig::default())?;
//! let classify = BTreeMap::from([("result/ssn".to_string(), "regulated".to_string())]);
//! let rules = FieldRules::new(&classify, &classes, "internal")?;
//! let inspector = Inspector {
//!     scanner: &scanner,
//!     rules: &rules,
//!     clearance: classes.level("internal").ok_or("no such class")?,
//!     action: &FieldAction::Mask,
//!     allowed_hosts: &[],
//! };
//! let mut result = json!({
//!     "content": [{"type": "text", "text": "Card 4111 1111 1111 1111 on file."}],
//!     "structuredContent": {"name": "Alice", "ssn": "123-45-6789"},
//! });
//! let inspection = warden_dlp::inspect_call_tool_result(&mut result, &inspector)?;
//! assert_eq!(result["structuredContent"]["ssn"], "[REDACTED:regulated]");
//! assert_eq!(result["content"][0]["text"], "Card [REDACTED:regulated] on file.");
//! assert_eq!(inspection.findings().len(), 2); // field.regulated, dlp.payment_card
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod classify;
mod config;
mod error;
pub mod eval;
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
