-- Warden store, PostgreSQL dialect. Times are timestamptz (microsecond precision).

-- The audit log. `seq` is the event's position: contiguous from 0, never reused, and the
-- Merkle leaf index. Writers assign it inside their transaction while holding
-- `LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE`, so replicas never interleave or leave gaps.
-- `body` is the whole event as JSON text (exact bytes; digests only, never raw payloads); the
-- other columns are copies for filtering. `canonical` and `leaf_hash` are filled by the Merkle
-- log (leaf = SHA-256(0x00 || canonical)).
CREATE TABLE events (
    seq            BIGINT      PRIMARY KEY CHECK (seq >= 0),
    id             TEXT        NOT NULL UNIQUE,
    correlation_id TEXT        NOT NULL,
    parent_id      TEXT,
    kind           TEXT        NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ NOT NULL,
    agent          TEXT,
    "user"         TEXT,
    task           TEXT,
    action         TEXT,
    verdict        TEXT        NOT NULL,
    outcome        TEXT        NOT NULL,
    body           TEXT        NOT NULL,
    canonical      BYTEA,
    leaf_hash      BYTEA
);
CREATE INDEX events_agent ON events (agent, seq);
CREATE INDEX events_correlation ON events (correlation_id, seq);
CREATE INDEX events_started_at ON events (started_at);

CREATE TABLE agent_keys (
    key_id     TEXT        PRIMARY KEY,
    agent      TEXT        NOT NULL,
    hash       TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX agent_keys_agent ON agent_keys (agent);

CREATE TABLE operator_tokens (
    token_id   TEXT        PRIMARY KEY,
    name       TEXT        NOT NULL,
    role       TEXT        NOT NULL CHECK (role IN ('viewer', 'auditor', 'approver', 'admin')),
    hash       TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE tasks (
    task_id    TEXT        PRIMARY KEY,
    agent      TEXT        NOT NULL,
    hash       TEXT        NOT NULL UNIQUE,
    tools      TEXT[]      NOT NULL,
    max_class  TEXT,
    purpose    TEXT,
    "user"     TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX tasks_agent ON tasks (agent);
