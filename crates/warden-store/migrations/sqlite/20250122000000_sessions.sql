-- Sessions and shadow-policy differences, SQLite dialect.
--
-- A session is keyed by agent and session key (`mcp:<id>`, `task:<id>` or `id:<id>`). What it
-- did is kept as rows that only grow, each written by one upsert, so replicas recording calls
-- of one session at once never lose an update: call counts per tool, and marks (data classes
-- and inspection findings seen).
CREATE TABLE sessions (
    agent      TEXT NOT NULL,
    session    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (agent, session)
);

CREATE TABLE session_tools (
    agent   TEXT    NOT NULL,
    session TEXT    NOT NULL,
    tool    TEXT    NOT NULL,
    calls   INTEGER NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (agent, session, tool)
);

-- kind: 'class' (a data class seen in arguments or results) or 'finding' (an inspection finding
-- in a result: `injection.<indicator>`, `untrusted_output`).
CREATE TABLE session_marks (
    agent   TEXT NOT NULL,
    session TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('class', 'finding')),
    name    TEXT NOT NULL,
    PRIMARY KEY (agent, session, kind, name)
);

-- Calls the shadow (candidate) bundle would have decided differently from the active one.
-- `event_id` is the call's audit event; policies are JSON arrays of policy ids.
CREATE TABLE shadow_diffs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL,
    at              TEXT NOT NULL,
    agent           TEXT NOT NULL,
    "user"          TEXT,
    tool            TEXT NOT NULL,
    active          TEXT NOT NULL,
    active_policies TEXT NOT NULL,
    shadow          TEXT NOT NULL,
    shadow_policies TEXT NOT NULL,
    shadow_error    TEXT,
    active_bundle   TEXT NOT NULL,
    shadow_bundle   TEXT NOT NULL
);
CREATE INDEX shadow_diffs_at ON shadow_diffs (at);
