//! minimize: what leaves Warden for the upstream.
//!
//! The keyed digest of the arguments is taken first, over what the agent asked. Then the
//! arguments are held against the clearance of the vendor that will receive them — the vendor
//! of the tool's upstream, or of its sandbox twin when the call will run in sandbox mode:
//! fields (by the tool's `input/...` rules) and detected values above that clearance are
//! rewritten by the tool's `on_excess` (`[dlp] on_vendor_excess = "redact"`, the default), or
//! the call is refused with policy id `warden:vendor-clearance` (`"deny"`). The rewritten
//! arguments replace the call's, so a proposal or an approval request records exactly what
//! will be sent. The arguments were classified before authorization (`Call::data`); when
//! nothing in them is above the vendor's clearance this stage rewrites nothing.

use async_trait::async_trait;
use serde_json::Value;
use warden_core::config::VendorExcess;
use warden_core::{ClassLevel, Mode};

use super::Stage;
use crate::call::{Call, Flow, Refusal, StageError};
use crate::gateway::Shared;

/// The id recorded when a vendor's clearance, not a Cedar policy, refused a call.
pub const VENDOR_CLEARANCE_POLICY: &str = "warden:vendor-clearance";

pub struct Minimize;

#[async_trait]
impl Stage for Minimize {
    fn name(&self) -> &'static str {
        "minimize"
    }

    async fn run(&self, shared: &Shared, call: &mut Call) -> Result<Flow, StageError> {
        let input = Value::Object(std::mem::take(&mut call.input));
        call.event.args_digest = Some(shared.digester.digest(&input));
        let Value::Object(map) = input else {
            return Err(StageError::Internal(
                "the arguments stopped being an object",
            ));
        };
        call.input = map;

        let tool = call.tool_info()?.clone();
        let agent = call.agent_config()?.clone();
        let upstream = destination(shared, &agent, &tool.name);
        let (vendor, clearance) = vendor_clearance(shared, &upstream)?;
        let level = match &call.data {
            Some(data) => data.level,
            None => shared.protection.classify(&tool.name, &call.input)?.level,
        };
        if level.is_none_or(|l| l <= clearance) {
            return Ok(Flow::Continue);
        }

        let mut arguments = Value::Object(std::mem::take(&mut call.input));
        let inspection =
            shared
                .protection
                .inspect_arguments(&tool.name, &vendor, clearance, &mut arguments)?;
        let excess = shared
            .protection
            .excess_classes(Some(&vendor), &inspection)?;
        let deny =
            shared.config.dlp.on_vendor_excess == VendorExcess::Deny && inspection.changed() > 0;
        let mut findings = inspection.findings();
        if deny {
            for f in &mut findings {
                if f.action != "flagged" {
                    f.action = "denied".into();
                }
            }
        }
        // These findings say more than authorize's (what was rewritten): they replace them.
        call.event.findings.retain(|f| f.location != "input");
        call.event.findings.extend(findings);
        if deny {
            let kinds: Vec<&str> = inspection
                .data
                .iter()
                .filter(|(_, action, _)| *action != warden_dlp::Action::Flagged)
                .map(|(kind, _, _)| kind)
                .collect();
            let cleared = shared.protection.class_name(clearance)?;
            call.event.policies.push(VENDOR_CLEARANCE_POLICY.into());
            return Ok(Flow::Answer(Refusal::denied(
                format!(
                    "the arguments hold {} data ({}) and vendor `{vendor}` of upstream \
                     `{upstream}` is cleared only for `{cleared}` data",
                    excess.last().map_or("sensitive", String::as_str),
                    kinds.join(", "),
                ),
                vec![VENDOR_CLEARANCE_POLICY.into()],
            )));
        }
        let Value::Object(map) = arguments else {
            // Rewriting an object keeps it one; should it not, nothing is sent.
            return Err(StageError::Internal(
                "minimized arguments are not an object",
            ));
        };
        call.input = map;
        Ok(Flow::Continue)
    }
}

/// The upstream the call will go to: the tool's, or its sandbox twin in sandbox mode (the gate
/// decides the same way, and refuses sandbox calls to an upstream without a twin).
fn destination(
    shared: &Shared,
    agent: &warden_core::config::Agent,
    tool: &warden_core::ToolName,
) -> String {
    let upstream = tool.upstream();
    match shared.effective_mode(agent, tool) {
        Mode::Sandbox => shared
            .config
            .upstream(upstream)
            .and_then(|u| u.sandbox.clone())
            .unwrap_or_else(|| upstream.to_owned()),
        _ => upstream.to_owned(),
    }
}

/// The vendor of an upstream and the rank of its clearance. An upstream or vendor the config
/// does not know is cleared for the least sensitive class only (fail closed).
fn vendor_clearance(shared: &Shared, upstream: &str) -> Result<(String, ClassLevel), StageError> {
    let vendor = shared
        .config
        .upstream(upstream)
        .map(|u| u.vendor.clone())
        .unwrap_or_default();
    let clearance = match shared.config.vendor(&vendor) {
        Some(v) => shared.protection.level(&v.cleared)?,
        None => ClassLevel(0),
    };
    Ok((vendor, clearance))
}
