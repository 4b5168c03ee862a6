//! Test support for `warden-upstream`: serves one of the `warden-samples` MCP servers over
//! stdio, so the crate's tests can spawn a real stdio upstream without the `warden` binary.
//!
//! Usage: `warden-sample-stdio KIND` (crm, payments, email, echo, faulty).
//!
//! Built only with the `sample-server` feature, which this crate's own tests enable.

use std::process::ExitCode;

use warden_samples::SampleKind;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let kind = match arg.parse::<SampleKind>() {
        Ok(kind) => kind,
        Err(e) => {
            eprintln!("warden-sample-stdio: {e}");
            return ExitCode::from(2);
        }
    };
    match warden_samples::serve_stdio(kind).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden-sample-stdio: {e:#}");
            ExitCode::FAILURE
        }
    }
}
