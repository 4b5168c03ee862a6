//! Scenario tests for the sample servers, driven by an rmcp client over an
//! in-memory duplex pipe (`handler`) or over HTTP (`serve_http`).
//!
//! `faulty.crash` is deliberately never called: it exits the process, which
//! here would be the test binary.

mod support;

mod catalog;
mod crm;
mod echo;
mod email;
mod faulty;
mod http;
mod payments;
