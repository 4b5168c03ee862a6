-- New events no longer keep a JSON copy of themselves: the canonical bytes (which the Merkle log
-- commits to) hold every field, and reads decode them. Writing the copy doubled each row, and the
-- bytes written per event are what bounds the audit log's append rate. `body` stays for rows
-- written before this migration (some of which predate `canonical`); it is NULL from now on.
-- SQLite cannot drop a NOT NULL constraint in place, so the table is rebuilt with its indexes:
-- on a large log, a one-time copy (about a minute per million events on a 2-core machine).
CREATE TABLE events_rebuilt (
    seq            INTEGER PRIMARY KEY CHECK (seq >= 0),
    id             TEXT    NOT NULL UNIQUE,
    correlation_id TEXT    NOT NULL,
    parent_id      TEXT,
    kind           TEXT    NOT NULL,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT    NOT NULL,
    agent          TEXT,
    "user"         TEXT,
    task           TEXT,
    action         TEXT,
    verdict        TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    body           TEXT,
    canonical      BLOB,
    leaf_hash      BLOB
);
INSERT INTO events_rebuilt
    (seq, id, correlation_id, parent_id, kind, started_at, finished_at, agent, "user", task,
     action, verdict, outcome, body, canonical, leaf_hash)
SELECT seq, id, correlation_id, parent_id, kind, started_at, finished_at, agent, "user", task,
       action, verdict, outcome, body, canonical, leaf_hash
FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_agent ON events (agent, seq);
CREATE INDEX events_correlation ON events (correlation_id, seq);
CREATE INDEX events_started_at ON events (started_at);
CREATE INDEX events_parent ON events (parent_id, seq) WHERE parent_id IS NOT NULL;
