//! `tools/call` answered by the edge itself, without rmcp's per-request service.
//!
//! A stateless MCP request through rmcp is parsed a second time into its typed message, checked,
//! given a one-shot transport and a task of its own, and its answer is sent back over a channel
//! and serialized. For the one message an agent sends most, a single `tools/call` whose answer is
//! one JSON response, that machinery does nothing the gateway needs, and on a small machine it
//! is a tenth of the CPU a call costs. So the guard, which has already authenticated the agent
//! and parsed the body, answers such a call directly — but only when the request is one rmcp
//! would accept as it is. Anything else (another method, a batch, a malformed progress token, request
//! metadata or SEP-2243 standard headers that are not exactly what rmcp requires, an `Origin`,
//! a host or media type rmcp might refuse, a parameter this path does not read) goes to rmcp
//! unchanged, which answers or refuses it as before. The checks below are therefore a subset of
//! rmcp's (3.11, stateless, JSON responses, no tool schemas for `Mcp-Param-*` headers): when
//! they pass, rmcp would have passed the request to the same handler with the same parameters.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolResult, ProtocolVersion, RequestMetaObject, ServerResult};
use serde_json::{Map, Value, json};
use warden_gateway::ProgressUpdate;

/// Hosts rmcp is told to allow besides `[server] allowed_hosts`.
pub(super) const DEFAULT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The protocol revisions whose `tools/call` carries no per-request metadata and no standard
/// headers (rmcp reads a request without `MCP-Protocol-Version` as 2025-03-26).
const PLAIN_REVISIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// How a request names its protocol revision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Revision {
    /// One of [`PLAIN_REVISIONS`], or none: `_meta` must hold no protocol metadata.
    Plain,
    /// 2026-07-28: `_meta` must name it with the client's capabilities, and the `Mcp-Method` and
    /// `Mcp-Name` headers must repeat the method and the tool.
    Inline,
}

/// A `tools/call` this path may answer.
#[derive(Debug, PartialEq)]
pub(super) struct DirectCall {
    /// The request's id, echoed in the response (a string or an integer).
    pub id: Value,
    pub name: String,
    pub arguments: Option<Map<String, Value>>,
    /// `_meta.user` and `_meta.session`, where they are strings.
    pub user: Option<String>,
    pub session: Option<String>,
    /// `_meta.progressToken`: a call held for approval reports its wait as
    /// `notifications/progress` on an event stream.
    pub progress_token: Option<Value>,
    /// The revision the answer is shaped for.
    pub revision: Revision,
}

/// The call in `message`, if it is a `tools/call` that rmcp would hand to its handler exactly as
/// sent with these headers; `None` sends the request through rmcp.
pub(super) fn direct_call(
    parts: &Parts,
    message: &mut Value,
    allowed_hosts: &[String],
) -> Option<DirectCall> {
    let revision = revision(&parts.headers)?;
    if !media_types_ok(&parts.headers)
        || parts.headers.contains_key(header::ORIGIN)
        || !host_allowed(parts, allowed_hosts)
    {
        return None;
    }
    let request = message.as_object_mut()?;
    if request.get("method").and_then(Value::as_str) != Some("tools/call")
        || request
            .keys()
            .any(|k| !matches!(k.as_str(), "jsonrpc" | "id" | "method" | "params"))
    {
        return None;
    }
    let id = request.get("id").filter(|id| is_plain_id(id))?.clone();
    let params = request.get_mut("params")?.as_object_mut()?;
    if params
        .keys()
        .any(|k| !matches!(k.as_str(), "name" | "arguments" | "_meta"))
    {
        return None;
    }
    let empty = Map::new();
    let meta = match params.get("_meta") {
        None => &empty,
        Some(Value::Object(meta)) => meta,
        Some(_) => return None,
    };
    if !meta_fits(meta, revision) {
        return None;
    }
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
    let (user, session) = (text("user"), text("session"));
    let progress_token = match meta.get("progressToken") {
        None => None,
        Some(token) if is_plain_id(token) => Some(token.clone()),
        Some(_) => return None,
    };
    let name = params.get("name")?.as_str()?.to_owned();
    if revision == Revision::Inline && !standard_headers_match(&parts.headers, &name) {
        return None;
    }
    let arguments = match params.remove("arguments") {
        None => None,
        Some(Value::Object(arguments)) => Some(arguments),
        Some(other) => {
            params.insert("arguments".into(), other);
            return None;
        }
    };
    Some(DirectCall {
        id,
        name,
        arguments,
        user,
        session,
        progress_token,
        revision,
    })
}

/// The JSON-RPC response carrying `result`, shaped for `revision` as rmcp's handler shapes it:
/// before 2026-07-28 without `resultType: "complete"` and without non-object structured
/// output; from it with the caching hints it requires (a tool result has none).
pub(super) fn response_message(id: Value, revision: Revision, result: CallToolResult) -> Value {
    let mut result = ServerResult::CallToolResult(result);
    match revision {
        Revision::Plain => {
            result.strip_result_type_for_legacy_peer();
            result.strip_non_object_output_for_legacy_peer();
        }
        Revision::Inline => result.fill_missing_cache_hints(),
    }
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// A `notifications/progress` for `token`, as rmcp would send it.
pub(super) fn progress_message(token: &Value, update: &ProgressUpdate) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {
            "progressToken": token,
            "progress": update.elapsed.as_secs_f64(),
            "total": update.wait.as_secs_f64(),
            "message": update.message,
        }
    })
}

/// [`response_message`] in a JSON body, as rmcp would send it.
pub(super) fn response(id: Value, revision: Revision, result: CallToolResult) -> Response {
    match serde_json::to_vec(&response_message(id, revision, result)) {
        Ok(bytes) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        // A result that was JSON a moment ago always serializes; fail closed all the same.
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the tool result: {e}"),
        )
            .into_response(),
    }
}

/// rmcp's ids are strings or integers; anything else is left to it to refuse.
fn is_plain_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// The revision `MCP-Protocol-Version` names, if it is one this path serves.
fn revision(headers: &HeaderMap) -> Option<Revision> {
    if !headers.contains_key("mcp-protocol-version") {
        return Some(Revision::Plain);
    }
    match only_value(headers, "mcp-protocol-version")? {
        v if PLAIN_REVISIONS.contains(&v) => Some(Revision::Plain),
        v if v == ProtocolVersion::V_2026_07_28.as_str() => Some(Revision::Inline),
        _ => None,
    }
}

/// The header's value when it is sent exactly once, as text.
fn only_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    }
}

/// The protocol metadata the revision calls for: none before 2026-07-28; from it, the same
/// revision and the client's capabilities, read by rmcp's own accessors.
fn meta_fits(meta: &Map<String, Value>, revision: Revision) -> bool {
    match revision {
        Revision::Plain => !meta
            .keys()
            .any(|k| k.starts_with("io.modelcontextprotocol/")),
        Revision::Inline => {
            let meta = RequestMetaObject::from(meta.clone());
            let latest = ProtocolVersion::V_2026_07_28;
            meta.protocol_version().as_ref() == Some(&latest)
                && meta.missing_required_keys(&latest).is_empty()
        }
    }
}

/// One `Mcp-Method: tools/call` and one `Mcp-Name` naming the tool as it is (an encoded name
/// is left to rmcp to decode).
fn standard_headers_match(headers: &HeaderMap, tool: &str) -> bool {
    only_value(headers, "mcp-method") == Some("tools/call")
        && only_value(headers, "mcp-name") == Some(tool)
}

/// The media types rmcp requires: a JSON body, and an agent that accepts JSON and event streams.
fn media_types_ok(headers: &HeaderMap) -> bool {
    content_type_is_json(headers) && accepts_json_and_sse(headers)
}

fn content_type_is_json(headers: &HeaderMap) -> bool {
    only_value(headers, header::CONTENT_TYPE.as_str()).is_some_and(|v| {
        let essence = v.split_once(';').map_or(v, |(essence, _)| essence);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// Both `application/json` and `text/event-stream` listed, with no parameters (a weight of
/// zero would refuse one; any parameter sends the request to rmcp's full parser).
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for entry in value.split(',') {
            let entry = entry.trim();
            if entry.contains(['"', ';']) {
                return false;
            }
            json |= entry.eq_ignore_ascii_case("application/json");
            sse |= entry.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// The `Host` header names an allowed host, by rmcp's rule: the same host (lowercase, without
/// brackets), and the same port where the allowed entry names one.
fn host_allowed(parts: &Parts, allowed_hosts: &[String]) -> bool {
    let Some(host) = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
    else {
        return false;
    };
    let name = normalize_host(host.host());
    DEFAULT_HOSTS
        .iter()
        .copied()
        .chain(allowed_hosts.iter().map(String::as_str))
        .filter_map(|allowed| {
            let allowed = allowed.trim();
            if allowed.is_empty() {
                return None;
            }
            Some(match allowed.parse::<axum::http::uri::Authority>() {
                Ok(a) => (normalize_host(a.host()), a.port_u16()),
                Err(_) => (normalize_host(allowed), None),
            })
        })
        .any(|(allowed, port)| allowed == name && port.is_none_or(|p| host.port_u16() == Some(p)))
}

fn normalize_host(host: &str) -> String {
    host.trim_matches('[')
        .trim_matches(']')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::post("/mcp");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|e| {
                panic!("test request: {e}");
            })
    }

    const PLAIN: [(&str, &str); 4] = [
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
    ];

    fn call() -> Value {
        json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {
                "name": "crm.get_customer",
                "arguments": { "id": "c1" },
                "_meta": { "user": "alice@example.com" }
            }
        })
    }

    #[test]
    fn a_plain_tools_call_is_answered_directly_with_its_parameters() {
        let mut message = call();
        let direct = direct_call(&parts(&PLAIN), &mut message, &[]);
        assert_eq!(
            direct,
            Some(DirectCall {
                id: json!(7),
                name: "crm.get_customer".into(),
                arguments: json!({ "id": "c1" }).as_object().cloned(),
                user: Some("alice@example.com".into()),
                session: None,
                progress_token: None,
                revision: Revision::Plain,
            })
        );
    }

    #[test]
    fn anything_rmcp_would_check_or_stream_goes_through_rmcp() {
        let refused = |message: Value, headers: &[(&str, &str)]| {
            let mut message = message;
            direct_call(&parts(headers), &mut message, &[]).is_none()
        };
        let with = |f: &dyn Fn(&mut Value)| {
            let mut m = call();
            f(&mut m);
            m
        };
        let headers_without = |name: &str| -> Vec<(&str, &str)> {
            PLAIN.iter().copied().filter(|(n, _)| *n != name).collect()
        };
        let headers_with = |extra: (&'static str, &'static str)| -> Vec<(&str, &str)> {
            PLAIN
                .iter()
                .copied()
                .filter(|(n, _)| *n != extra.0)
                .chain([extra])
                .collect()
        };
        // Other messages and shapes.
        assert!(refused(
            with(&|m| m["method"] = json!("tools/list")),
            &PLAIN
        ));
        assert!(refused(json!([call()]), &PLAIN), "a batch");
        assert!(refused(with(&|m| m["id"] = json!(1.5)), &PLAIN));
        assert!(refused(with(&|m| m["id"] = Value::Null), &PLAIN));
        assert!(refused(with(&|m| m["params"]["task"] = json!({})), &PLAIN));
        assert!(refused(
            with(&|m| m["params"]["arguments"] = json!([1])),
            &PLAIN
        ));
        assert!(refused(with(&|m| m["params"]["name"] = json!(3)), &PLAIN));
        assert!(refused(
            with(&|m| m["params"]["_meta"]["progressToken"] = json!({ "p": 1 })),
            &PLAIN
        ));
        assert!(refused(
            with(
                &|m| m["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] =
                    json!("2026-07-28")
            ),
            &PLAIN
        ));
        // Headers rmcp checks.
        assert!(refused(call(), &headers_without("host")));
        assert!(refused(call(), &headers_with(("host", "evil.example"))));
        assert!(refused(call(), &headers_without("content-type")));
        assert!(refused(
            call(),
            &headers_with(("content-type", "text/plain"))
        ));
        assert!(refused(
            call(),
            &headers_with(("accept", "application/json"))
        ));
        assert!(refused(
            call(),
            &headers_with(("accept", "application/json, text/event-stream;q=0"))
        ));
        assert!(refused(
            call(),
            &headers_with(("mcp-protocol-version", "2026-07-28"))
        ));
        assert!(refused(
            call(),
            &headers_with(("mcp-protocol-version", "1999-01-01"))
        ));
        assert!(refused(
            call(),
            &headers_with(("origin", "http://localhost"))
        ));
    }

    /// A 2026-07-28 request: the revision in `_meta` with the client's capabilities, and the
    /// standard headers.
    fn inline_call() -> (Value, Vec<(&'static str, &'static str)>) {
        let mut message = call();
        message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2026-07-28");
        message["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = json!({});
        let headers = PLAIN
            .iter()
            .copied()
            .filter(|(n, _)| *n != "mcp-protocol-version")
            .chain([
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "crm.get_customer"),
            ])
            .collect();
        (message, headers)
    }

    type Headers = Vec<(&'static str, &'static str)>;

    #[test]
    fn a_2026_07_28_call_is_answered_directly_only_with_the_metadata_and_headers_rmcp_requires() {
        let (mut message, headers) = inline_call();
        let direct = direct_call(&parts(&headers), &mut message, &[]);
        assert_eq!(
            direct.map(|d| (d.name, d.user)),
            Some(("crm.get_customer".into(), Some("alice@example.com".into())))
        );
        let refused = |change: &dyn Fn(&mut Value, &mut Headers)| {
            let (mut message, mut headers) = inline_call();
            change(&mut message, &mut headers);
            direct_call(&parts(&headers), &mut message, &[]).is_none()
        };
        let key = |k: &str| format!("io.modelcontextprotocol/{k}");
        assert!(refused(&|m, _| {
            if let Some(meta) = m["params"]["_meta"].as_object_mut() {
                meta.remove(&key("clientCapabilities"));
            }
        }));
        assert!(refused(&|m, _| {
            m["params"]["_meta"][key("protocolVersion")] = json!("2025-11-25");
        }));
        assert!(refused(&|m, _| {
            m["params"]["_meta"][key("clientCapabilities")] = json!("all");
        }));
        assert!(refused(&|_, h| h.retain(|(n, _)| *n != "mcp-name")));
        assert!(refused(&|_, h| h.retain(|(n, _)| *n != "mcp-method")));
        assert!(refused(&|_, h| h.push(("mcp-name", "crm.get_customer"))));
        assert!(refused(&|_, h| {
            h.retain(|(n, _)| *n != "mcp-name");
            h.push(("mcp-name", "crm.update_customer"));
        }));
        assert!(refused(&|_, h| {
            h.retain(|(n, _)| *n != "mcp-method");
            h.push(("mcp-method", "tools/list"));
        }));
    }

    #[test]
    fn a_progress_token_is_kept_for_a_call_that_waits() {
        let mut message = call();
        message["params"]["_meta"]["progressToken"] = json!(42);
        let direct = direct_call(&parts(&PLAIN), &mut message, &[]);
        assert_eq!(direct.and_then(|d| d.progress_token), Some(json!(42)));
    }

    #[test]
    fn hosts_are_allowed_by_rmcps_rule() {
        let allowed = vec!["warden.internal".to_owned(), "api.example:8443".to_owned()];
        let host_ok = |host: &str| {
            let headers: Vec<_> = PLAIN
                .iter()
                .copied()
                .filter(|(n, _)| *n != "host")
                .chain([("host", host)])
                .collect();
            host_allowed(&parts(&headers), &allowed)
        };
        assert!(host_ok("localhost"));
        assert!(host_ok("LOCALHOST:9000"));
        assert!(host_ok("[::1]:8080"));
        assert!(host_ok("warden.internal:443"));
        assert!(host_ok("api.example:8443"));
        assert!(!host_ok("api.example:8444"), "the port must match");
        assert!(!host_ok("api.example"));
        assert!(!host_ok("warden.internal.evil"));
    }

    #[test]
    fn a_missing_protocol_version_is_plain_and_no_arguments_are_none() {
        let mut message = json!({
            "jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": { "name": "t" }
        });
        let headers: Vec<_> = PLAIN
            .iter()
            .copied()
            .filter(|(n, _)| *n != "mcp-protocol-version")
            .collect();
        let direct = direct_call(&parts(&headers), &mut message, &[]);
        assert_eq!(
            direct.map(|d| (d.id, d.arguments)),
            Some((json!("a"), None))
        );
    }
}
