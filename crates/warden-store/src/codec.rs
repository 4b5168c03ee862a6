//! Converting events and times between Rust values and their stored form.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serialize;
use warden_core::event::AuditEvent;
use warden_core::store::StoreError;

use warden_audit::canonical::canonical_bytes;
use warden_audit::merkle::leaf_hash;
use warden_core::store::LogHash;

use crate::StoredEvent;
use crate::error::{corrupt, seq_from_db};

/// The columns of one `events` row, prepared by the appender (off the writer task).
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub id: String,
    pub correlation_id: String,
    pub parent_id: Option<String>,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub agent: Option<String>,
    pub user: Option<String>,
    pub task: Option<String>,
    pub action: Option<String>,
    pub verdict: String,
    pub outcome: String,
    /// The canonical event bytes (`warden-event-v1`): the Merkle leaf's data, and what reads
    /// decode the event from.
    pub canonical: Vec<u8>,
    /// `SHA-256(0x00 || canonical)`.
    pub leaf_hash: LogHash,
}

impl EventRow {
    pub fn from_event(event: &AuditEvent) -> Result<Self, StoreError> {
        let canonical = canonical_bytes(event);
        let leaf_hash = leaf_hash(&canonical);
        Ok(Self {
            id: event.id.clone(),
            correlation_id: event.correlation_id.clone(),
            parent_id: event.parent_id.clone(),
            kind: enum_text(&event.kind)?,
            started_at: micros(event.started_at),
            finished_at: micros(event.finished_at),
            agent: event.agent.clone(),
            user: event.user.clone(),
            task: event.task.clone(),
            action: event.action.clone(),
            verdict: event.verdict.as_str().to_owned(),
            outcome: event.outcome.as_str().to_owned(),
            canonical,
            leaf_hash,
        })
    }
}

/// A stored 32-byte hash, or `Corrupt` naming `what`.
pub(crate) fn hash_from_db(
    bytes: &[u8],
    what: impl std::fmt::Display,
) -> Result<LogHash, StoreError> {
    <LogHash>::try_from(bytes).map_err(|_| {
        corrupt(
            what,
            format_args!("{} bytes, not a 32-byte hash", bytes.len()),
        )
    })
}

/// Compact-range nodes as one blob: the 32-byte hashes concatenated, largest subtree first.
pub(crate) fn nodes_to_blob(nodes: &[LogHash]) -> Vec<u8> {
    nodes.concat()
}

/// Read a blob written by [`nodes_to_blob`].
pub(crate) fn nodes_from_blob(blob: &[u8], size: i64) -> Result<Vec<LogHash>, StoreError> {
    if !blob.len().is_multiple_of(32) {
        return Err(corrupt(
            format_args!("the compact range of checkpoint {size}"),
            format_args!("{} bytes, not a multiple of 32", blob.len()),
        ));
    }
    blob.chunks_exact(32)
        .map(|c| hash_from_db(c, format_args!("a node of checkpoint {size}")))
        .collect()
}

/// The canonical bytes and leaf hash of an event stored before the log kept them, from its
/// JSON body.
pub(crate) fn leaf_from_body(seq: i64, body: &str) -> Result<(Vec<u8>, LogHash), StoreError> {
    let event = event_from_body(seq, body)?;
    let canonical = canonical_bytes(&event);
    let hash = leaf_hash(&canonical);
    Ok((canonical, hash))
}

/// The serde name of a unit enum variant (`tool_call`, ...).
fn enum_text<T: Serialize>(value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(StoreError::Database(format!(
            "expected a unit variant, got {other}"
        ))),
        Err(e) => Err(StoreError::Database(format!("encoding enum: {e}"))),
    }
}

/// Decode a stored event body.
pub(crate) fn event_from_body(seq: i64, body: &str) -> Result<AuditEvent, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt(format_args!("event at seq {seq}"), e))
}

/// What reads select to rebuild an event, `seq, canonical, body`: its canonical bytes, and
/// the JSON copy that rows written before events stopped keeping one still hold (the only
/// source for rows older than `canonical`).
pub(crate) type EventSource = (i64, Option<Vec<u8>>, Option<String>);

/// The event an [`EventSource`] row holds: decoded (strictly) from its canonical bytes, else
/// from its JSON copy.
pub(crate) fn event_from_source(
    (seq, canonical, body): &EventSource,
) -> Result<AuditEvent, StoreError> {
    match (canonical, body) {
        (Some(canonical), _) => warden_audit::canonical::decode(canonical)
            .map_err(|e| corrupt(format_args!("event at seq {seq}"), e)),
        (None, Some(body)) => event_from_body(*seq, body),
        (None, None) => Err(corrupt(
            format_args!("event at seq {seq}"),
            "neither canonical bytes nor a JSON copy",
        )),
    }
}

/// Decode an [`EventSource`] row.
pub(crate) fn stored_event(row: &EventSource) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: seq_from_db(row.0)?,
        event: event_from_source(row)?,
    })
}

/// Decode many [`EventSource`] rows.
pub(crate) fn stored_events(rows: Vec<EventSource>) -> Result<Vec<StoredEvent>, StoreError> {
    rows.iter().map(stored_event).collect()
}

/// Times are kept to the microsecond on both backends.
pub(crate) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// A time as SQLite stores it: fixed-width RFC 3339 in UTC, so text order is time order.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    micros(at).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parse a time stored by [`time_text`].
pub(crate) fn parse_time(text: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format_args!("{what} `{text}`"), e))
}

/// Parse an optional stored time.
pub(crate) fn parse_opt_time(
    text: Option<&str>,
    what: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|t| parse_time(t, what)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use warden_core::event::EventKind;

    #[test]
    fn times_are_fixed_width_micros() {
        let at = Utc.timestamp_opt(1_700_000_000, 123_456_789).single();
        let text = at.map(time_text);
        assert_eq!(text.as_deref(), Some("2023-11-14T22:13:20.123456Z"));
        let back = text.as_deref().map(|t| parse_time(t, "t").ok());
        assert_eq!(back.flatten(), at.map(micros));
    }

    #[test]
    fn row_columns_copy_the_event() -> Result<(), StoreError> {
        let mut event = AuditEvent::begin(EventKind::ToolCall, "mcp", None);
        event.agent = Some("bot".into());
        let row = EventRow::from_event(&event)?;
        assert_eq!(row.kind, "tool_call");
        assert_eq!(row.verdict, "none");
        assert_eq!(row.outcome, "failed");
        assert_eq!(row.agent.as_deref(), Some("bot"));
        assert_eq!(
            warden_audit::canonical::decode(&row.canonical).ok(),
            Some({
                let mut e = event.clone();
                warden_audit::canonical::normalize(&mut e);
                e
            })
        );
        assert_eq!(row.leaf_hash, leaf_hash(&row.canonical));
        Ok(())
    }

    #[test]
    fn reads_decode_the_canonical_bytes_else_the_json_copy_of_older_rows() -> Result<(), StoreError>
    {
        let event = AuditEvent::begin(EventKind::ToolCall, "mcp", None);
        let mut normalized = event.clone();
        warden_audit::canonical::normalize(&mut normalized);
        let canonical = EventRow::from_event(&event)?.canonical;
        let json =
            serde_json::to_string(&event).map_err(|e| StoreError::Database(e.to_string()))?;
        let from_canonical = event_from_source(&(3, Some(canonical), None))?;
        assert_eq!(from_canonical, normalized);
        assert_eq!(event_from_source(&(3, None, Some(json)))?, event);
        assert!(matches!(
            event_from_source(&(3, None, None)),
            Err(StoreError::Corrupt(m)) if m.contains("seq 3")
        ));
        assert!(matches!(
            event_from_source(&(4, Some(b"warden-event-v1\n{}".to_vec()), None)),
            Err(StoreError::Corrupt(m)) if m.contains("seq 4")
        ));
        Ok(())
    }

    #[test]
    fn a_bad_body_is_corrupt() {
        assert!(matches!(
            event_from_body(7, "{"),
            Err(StoreError::Corrupt(m)) if m.contains("seq 7")
        ));
    }
}
