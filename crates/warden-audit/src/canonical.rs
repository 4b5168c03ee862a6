//! Canonical event bytes: the exact bytes a Merkle leaf commits to.
//!
//! Format `warden-event-v1` (specified in `docs/audit-format.md`):
//!
//! ```text
//! warden-event-v1\n{"action":...,"agent":...,...,"verdict":"allow"}
//! ```
//!
//! The 16-byte prefix [`PREFIX_V1`] names the version; the rest is one JSON object holding
//! every field of [`AuditEvent`], written the RFC 8785 (JCS) way for our value set: object
//! keys sorted by UTF-16 code units, no whitespace, strings escaped minimally, integers in
//! plain decimal (exact for the full `u64` range; no floats occur). Absent optional fields
//! are written as `null` and empty lists as `[]`, so every key is always present. Timestamps
//! are RFC 3339 UTC with exactly six fractional digits (`2025-01-02T03:04:05.123456Z`);
//! anything finer than a microsecond is dropped, as the store drops it.
//!
//! [`decode`] is strict: it accepts exactly the bytes [`canonical_bytes`] produces, so one
//! event has one encoding and one encoding has one event.

use chrono::{DateTime, Datelike, SubsecRound, Timelike, Utc};
use serde::Deserialize;
use serde_json::Value;
use warden_core::event::{AuditEvent, EventKind, Finding, Outcome, Verdict};
use warden_core::model::Mode;

/// The version prefix of format 1. Every canonical record starts with it.
pub const PREFIX_V1: &[u8] = b"warden-event-v1\n";

/// Why bytes are not a canonical event (or a value cannot be made canonical).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error(
        "record does not start with the format prefix \"warden-event-v1\\n\" (starts with {found:?})"
    )]
    UnknownVersion { found: String },
    #[error("record's JSON is malformed: {0}")]
    Json(String),
    #[error("field `{field}` holds {value:?}, which is not one of its allowed values")]
    BadValue { field: &'static str, value: String },
    #[error("field `{field}` holds {value:?}, which is not an RFC 3339 UTC timestamp")]
    BadTime { field: &'static str, value: String },
    #[error(
        "record decodes but is not in canonical form (re-encoding differs from byte {offset} on): \
         it was altered or written by another encoder"
    )]
    NotCanonical { offset: usize },
    #[error("value cannot be canonicalised: {0}")]
    Unsupported(String),
}

/// The canonical bytes of `event`: [`PREFIX_V1`] then the sorted-key JSON object.
///
/// Timestamps are truncated to microseconds (see [`normalize`]).
pub fn canonical_bytes(event: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(PREFIX_V1);
    write_event(&mut out, event);
    out
}

/// `event` as it reads back from its canonical bytes: timestamps truncated to microseconds.
pub fn normalize(event: &mut AuditEvent) {
    event.started_at = event.started_at.trunc_subsecs(6);
    event.finished_at = event.finished_at.trunc_subsecs(6);
}

/// Read canonical bytes back into an event. Rejects anything [`canonical_bytes`] would not
/// have produced: another version, unknown or missing keys, another key order, whitespace,
/// other escapes or timestamp forms.
pub fn decode(bytes: &[u8]) -> Result<AuditEvent, CanonicalError> {
    let event = decode_fields(bytes)?;
    let again = canonical_bytes(&event);
    match first_difference(&again, bytes) {
        None => Ok(event),
        Some(offset) => Err(CanonicalError::NotCanonical { offset }),
    }
}

/// Read the event a record's fields tell, without checking that the bytes are in canonical
/// form: for a caller that compares the event's [`canonical_bytes`] with the record anyway (and
/// calls [`decode`] to name a difference), so the re-encoding is not done twice.
pub fn decode_fields(bytes: &[u8]) -> Result<AuditEvent, CanonicalError> {
    let json = bytes
        .strip_prefix(PREFIX_V1)
        .ok_or_else(|| CanonicalError::UnknownVersion {
            found: String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into_owned(),
        })?;
    let wire: Wire =
        serde_json::from_slice(json).map_err(|e| CanonicalError::Json(e.to_string()))?;
    wire.into_event()
}

/// The names of the top-level fields whose values differ between two canonical records
/// (for error messages). Bytes that do not parse are reported as `<record>`.
pub fn differing_fields(a: &[u8], b: &[u8]) -> Vec<String> {
    let parse = |bytes: &[u8]| -> Option<serde_json::Map<String, Value>> {
        serde_json::from_slice(bytes.strip_prefix(PREFIX_V1)?).ok()
    };
    let (Some(a), Some(b)) = (parse(a), parse(b)) else {
        return vec!["<record>".to_owned()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// RFC 8785-style canonical JSON of an arbitrary value: keys sorted by UTF-16 code units,
/// no whitespace, minimal escapes, integers in decimal. Floats are refused.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write_value(&mut out, value)?;
    Ok(out)
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(a.iter().zip(b).take_while(|(x, y)| x == y).count())
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Writes the event object. The destructuring is exhaustive on purpose: a new field in
/// `AuditEvent` must be added to the format (and the format's version reconsidered).
fn write_event(out: &mut Vec<u8>, event: &AuditEvent) {
    let AuditEvent {
        id,
        correlation_id,
        parent_id,
        kind,
        started_at,
        finished_at,
        channel,
        agent,
        user,
        task,
        session,
        operator,
        action,
        mode,
        bundle_hash,
        verdict,
        policies,
        reason,
        outcome,
        upstream_latency_us,
        args_digest,
        result_digest,
        approvers,
        findings,
    } = event;
    // Keys in ascending order; `keys_are_sorted` in the tests checks it.
    let mut o = Object::open(out);
    write_opt_str(o.key("action"), action.as_deref());
    write_opt_str(o.key("agent"), agent.as_deref());
    write_str_list(o.key("approvers"), approvers);
    write_opt_str(o.key("args_digest"), args_digest.as_deref());
    write_str(o.key("bundle_hash"), bundle_hash);
    write_str(o.key("channel"), channel);
    write_str(o.key("correlation_id"), correlation_id);
    write_findings(o.key("findings"), findings);
    write_time(o.key("finished_at"), finished_at);
    write_str(o.key("id"), id);
    write_str(o.key("kind"), kind_str(*kind));
    write_opt_str(o.key("mode"), mode.map(mode_str));
    write_opt_str(o.key("operator"), operator.as_deref());
    write_str(o.key("outcome"), outcome_str(*outcome));
    write_opt_str(o.key("parent_id"), parent_id.as_deref());
    write_str_list(o.key("policies"), policies);
    write_opt_str(o.key("reason"), reason.as_deref());
    write_opt_str(o.key("result_digest"), result_digest.as_deref());
    write_opt_str(o.key("session"), session.as_deref());
    write_time(o.key("started_at"), started_at);
    write_opt_str(o.key("task"), task.as_deref());
    write_opt_u64(o.key("upstream_latency_us"), *upstream_latency_us);
    write_opt_str(o.key("user"), user.as_deref());
    write_str(o.key("verdict"), verdict_str(*verdict));
    o.close();
}

fn write_findings(out: &mut Vec<u8>, findings: &[Finding]) {
    out.push(b'[');
    for (i, finding) in findings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let Finding {
            kind,
            location,
            count,
            action,
        } = finding;
        let mut o = Object::open(out);
        write_str(o.key("action"), action);
        write_u64(o.key("count"), u64::from(*count));
        write_str(o.key("kind"), kind);
        write_str(o.key("location"), location);
        o.close();
    }
    out.push(b']');
}

/// Writes `{`, then `,"key":` separators, then `}`.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn write_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_opt_u64(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(n) => write_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_str_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, item);
    }
    out.push(b']');
}

/// A JSON string as RFC 8785 §3.2.2.2 writes it: `"` and `\` escaped, control characters
/// as `\b \t \n \f \r` or `\u00xx` (lower-case hex), everything else as UTF-8.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(offset) = bytes[start..].iter().position(|&b| needs_escape(b)) {
        let i = start + offset;
        out.extend_from_slice(&bytes[start..i]);
        write_escape(out, bytes[i]);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x0c => out.extend_from_slice(b"\\f"),
        0x0d => out.extend_from_slice(b"\\r"),
        _ => {
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(decimal(n, &mut buf));
}

/// The decimal digits of `n`, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        // `n % 10` is below 10, so the cast is exact.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `"YYYY-MM-DDTHH:MM:SS.ffffffZ"`. A leap second (chrono's nanoseconds ≥ 10⁹) is written as
/// second 60. Years outside 0000–9999 are written but do not decode.
fn write_time(out: &mut Vec<u8>, time: &DateTime<Utc>) {
    let t = time.naive_utc();
    let mut second = t.second();
    let mut nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        second += 1;
        nanos -= 1_000_000_000;
    }
    out.push(b'"');
    let year = t.year();
    if year < 0 {
        out.push(b'-');
    }
    push_padded(out, year.unsigned_abs(), 4);
    out.push(b'-');
    push_padded(out, t.month(), 2);
    out.push(b'-');
    push_padded(out, t.day(), 2);
    out.push(b'T');
    push_padded(out, t.hour(), 2);
    out.push(b':');
    push_padded(out, t.minute(), 2);
    out.push(b':');
    push_padded(out, second, 2);
    out.push(b'.');
    push_padded(out, nanos / 1000, 6);
    out.extend_from_slice(b"Z\"");
}

fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut buf = [0u8; 20];
    let digits = decimal(u64::from(value), &mut buf);
    out.extend(std::iter::repeat_n(
        b'0',
        width.saturating_sub(digits.len()),
    ));
    out.extend_from_slice(digits);
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Sorted here, never trusting the map's own order (`preserve_order` may be on).
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            let mut o = Object::open(out);
            for (key, item) in entries {
                write_value(o.key(key), item)?;
            }
            o.close();
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        write_u64(out, u);
    } else if let Some(i) = n.as_i64() {
        out.push(b'-');
        write_u64(out, i.unsigned_abs());
    } else {
        return Err(CanonicalError::Unsupported(format!(
            "the number {n} is not an integer"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Names of enum values (pinned here, not taken from serde, so a rename elsewhere cannot
// silently change the format)

/// Defines `$to_str` (an exhaustive match, so a new variant fails to compile until it is
/// named here) and `$all` (every variant, for decoding) from one table.
macro_rules! pinned_names {
    ($to_str:ident, $all:ident, $ty:ty { $($variant:path => $name:literal),+ $(,)? }) => {
        fn $to_str(value: $ty) -> &'static str {
            match value {
                $($variant => $name),+
            }
        }
        const $all: &[$ty] = &[$($variant),+];
    };
}

pinned_names!(kind_str, KINDS, EventKind {
    EventKind::ToolCall => "tool_call",
    EventKind::AuthFailure => "auth_failure",
    EventKind::Admin => "admin",
});

pinned_names!(mode_str, MODES, Mode {
    Mode::ReadOnly => "read-only",
    Mode::Suggest => "suggest",
    Mode::Sandbox => "sandbox",
    Mode::Execute => "execute",
});

pinned_names!(verdict_str, VERDICTS, Verdict {
    Verdict::Allow => "allow",
    Verdict::Deny => "deny",
    Verdict::None => "none",
});

pinned_names!(outcome_str, OUTCOMES, Outcome {
    Outcome::Ok => "ok",
    Outcome::ToolError => "tool_error",
    Outcome::Denied => "denied",
    Outcome::Rejected => "rejected",
    Outcome::Failed => "failed",
    Outcome::Proposed => "proposed",
    Outcome::Pending => "pending",
});

fn parse_enum<T: Copy>(
    field: &'static str,
    value: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, CanonicalError> {
    all.iter()
        .copied()
        .find(|v| name(*v) == value)
        .ok_or_else(|| CanonicalError::BadValue {
            field,
            value: value.to_owned(),
        })
}

// ---------------------------------------------------------------------------------------
// Decoding

/// The wire shape of format 1. Unknown keys are refused; missing keys and other deviations
/// are caught by the re-encoding comparison in [`decode`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    action: Option<String>,
    agent: Option<String>,
    approvers: Vec<String>,
    args_digest: Option<String>,
    bundle_hash: String,
    channel: String,
    correlation_id: String,
    findings: Vec<WireFinding>,
    finished_at: String,
    id: String,
    kind: String,
    mode: Option<String>,
    operator: Option<String>,
    outcome: String,
    parent_id: Option<String>,
    policies: Vec<String>,
    reason: Option<String>,
    result_digest: Option<String>,
    session: Option<String>,
    started_at: String,
    task: Option<String>,
    upstream_latency_us: Option<u64>,
    user: Option<String>,
    verdict: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFinding {
    action: String,
    count: u32,
    kind: String,
    location: String,
}

impl Wire {
    fn into_event(self) -> Result<AuditEvent, CanonicalError> {
        let mode = match self.mode.as_deref() {
            Some(m) => Some(parse_enum("mode", m, MODES, mode_str)?),
            None => None,
        };
        Ok(AuditEvent {
            id: self.id,
            correlation_id: self.correlation_id,
            parent_id: self.parent_id,
            kind: parse_enum("kind", &self.kind, KINDS, kind_str)?,
            started_at: parse_time("started_at", &self.started_at)?,
            finished_at: parse_time("finished_at", &self.finished_at)?,
            channel: self.channel,
            agent: self.agent,
            user: self.user,
            task: self.task,
            session: self.session,
            operator: self.operator,
            action: self.action,
            mode,
            bundle_hash: self.bundle_hash,
            verdict: parse_enum("verdict", &self.verdict, VERDICTS, verdict_str)?,
            policies: self.policies,
            reason: self.reason,
            outcome: parse_enum("outcome", &self.outcome, OUTCOMES, outcome_str)?,
            upstream_latency_us: self.upstream_latency_us,
            args_digest: self.args_digest,
            result_digest: self.result_digest,
            approvers: self.approvers,
            findings: self
                .findings
                .into_iter()
                .map(WireFinding::into_finding)
                .collect(),
        })
    }
}

impl WireFinding {
    fn into_finding(self) -> Finding {
        Finding {
            kind: self.kind,
            location: self.location,
            count: self.count,
            action: self.action,
        }
    }
}

fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, CanonicalError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| CanonicalError::BadTime {
            field,
            value: value.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pinned name decodes to its variant, and names are distinct.
    #[test]
    fn pinned_names_round_trip() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            field: &'static str,
            all: &[T],
            name: fn(T) -> &'static str,
        ) {
            for v in all {
                assert_eq!(parse_enum(field, name(*v), all, name), Ok(*v));
            }
            let mut names: Vec<_> = all.iter().map(|v| name(*v)).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), all.len(), "{field}: duplicate names");
        }
        check("kind", KINDS, kind_str);
        check("mode", MODES, mode_str);
        check("verdict", VERDICTS, verdict_str);
        check("outcome", OUTCOMES, outcome_str);
        // The pinned names agree with core's own spellings today.
        for o in OUTCOMES {
            assert_eq!(outcome_str(*o), o.as_str());
        }
        for m in MODES {
            assert_eq!(mode_str(*m), m.as_str());
        }
    }
}
