-- Sessions and shadow-policy differences, PostgreSQL dialect (see the SQLite migration).
CREATE TABLE sessions (
    agent      TEXT        NOT NULL,
    session    TEXT        NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent, session)
);

CREATE TABLE session_tools (
    agent   TEXT   NOT NULL,
    session TEXT   NOT NULL,
    tool    TEXT   NOT NULL,
    calls   BIGINT NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (agent, session, tool)
);

CREATE TABLE session_marks (
    agent   TEXT NOT NULL,
    session TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('class', 'finding')),
    name    TEXT NOT NULL,
    PRIMARY KEY (agent, session, kind, name)
);

CREATE TABLE shadow_diffs (
    id              BIGSERIAL   PRIMARY KEY,
    event_id        TEXT        NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    agent           TEXT        NOT NULL,
    "user"          TEXT,
    tool            TEXT        NOT NULL,
    active          TEXT        NOT NULL,
    active_policies TEXT        NOT NULL,
    shadow          TEXT        NOT NULL,
    shadow_policies TEXT        NOT NULL,
    shadow_error    TEXT,
    active_bundle   TEXT        NOT NULL,
    shadow_bundle   TEXT        NOT NULL
);
CREATE INDEX shadow_diffs_at ON shadow_diffs (at);
