//! `warden policy shadow-report`: where the shadow bundle would have decided differently.

use serde_json::Value;

use crate::ServerArgs;
use crate::admin::Api;

pub async fn run(
    server: &ServerArgs,
    since: Option<String>,
    examples: usize,
    json: bool,
) -> anyhow::Result<()> {
    let mut path = format!("/v1/policy/shadow-report?examples={examples}");
    if let Some(since) = &since {
        path.push_str("&since=");
        path.push_str(&urlencode(since));
    }
    let body = Api::from_args(server)?.get(&path).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    print!("{}", render(&body));
    Ok(())
}

/// Percent-encode what a query value may not hold as is (`+` and `:` in times).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn render(body: &Value) -> String {
    let mut out = String::new();
    let short = |v: &Value| {
        let s = v.as_str().unwrap_or("-");
        s[..12.min(s.len())].to_owned()
    };
    match body.get("shadow_bundle").filter(|v| !v.is_null()) {
        Some(shadow) => out.push_str(&format!(
            "shadow bundle {} beside active bundle {}\n",
            short(shadow),
            short(&body["active_bundle"])
        )),
        None => out
            .push_str("no shadow bundle is loaded ([policy] shadow); showing what was recorded\n"),
    }
    let report = &body["report"];
    let total = report["differences"].as_u64().unwrap_or(0);
    out.push_str(&format!("{total} difference(s)\n"));
    if let Some(tools) = report["by_tool"].as_object() {
        out.push_str(&format!(
            "\n{:<32} {:<40} {:>7}\n",
            "TOOL", "ACTIVE -> SHADOW", "CALLS"
        ));
        for (tool, directions) in tools {
            for (direction, n) in directions.as_object().into_iter().flatten() {
                out.push_str(&format!(
                    "{tool:<32} {direction:<40} {:>7}\n",
                    n.as_u64().unwrap_or(0)
                ));
            }
        }
    }
    let examples = report["examples"].as_array().cloned().unwrap_or_default();
    if !examples.is_empty() {
        out.push_str("\nexamples:\n");
        for e in &examples {
            let policies = |k: &str| {
                e[k].as_array()
                    .map(|p| {
                        p.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            out.push_str(&format!(
                "  event {}  {}  agent {}  {} [{}] -> {} [{}]{}\n",
                e["event_id"].as_str().unwrap_or("?"),
                e["tool"].as_str().unwrap_or("?"),
                e["agent"].as_str().unwrap_or("?"),
                e["active"].as_str().unwrap_or("?"),
                policies("active_policies"),
                e["shadow"].as_str().unwrap_or("?"),
                policies("shadow_policies"),
                e["shadow_error"]
                    .as_str()
                    .map(|m| format!("  error: {m}"))
                    .unwrap_or_default(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_report_names_counts_directions_and_example_events() {
        let body = json!({
            "shadow_bundle": "bbbbbbbbbbbbbbbb", "active_bundle": "aaaaaaaaaaaaaaaa",
            "report": {"differences": 2, "by_tool": {"payments.refund": {"allow -> deny": 2}},
                "examples": [{"event_id": "e1", "tool": "payments.refund", "agent": "refund-bot",
                    "active": "allow", "active_policies": ["finance-refunds"], "shadow": "deny",
                    "shadow_policies": ["no-refunds"], "shadow_error": null}]}
        });
        let text = render(&body);
        assert!(text.contains("2 difference(s)"), "{text}");
        assert!(text.contains("allow -> deny"), "{text}");
        assert!(text.contains("event e1"), "{text}");
        assert!(text.contains("[no-refunds]"), "{text}");
        assert_eq!(
            urlencode("2026-01-01T00:00:00+00:00"),
            "2026-01-01T00%3A00%3A00%2B00%3A00"
        );
    }
}
