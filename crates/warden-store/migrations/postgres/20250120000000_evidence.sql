-- The evidence vault, PostgreSQL dialect: raw arguments, results and approvals, each sealed with its
-- own data key wrapped by a master key that never enters the database. Shredding clears
-- `wrapped_key` and `ciphertext` and sets `shredded_at`; the row stays as the record of what was
-- erased and when. Times are timestamptz.
CREATE TABLE evidence (
    event_id    TEXT NOT NULL,
    artifact    TEXT NOT NULL CHECK (artifact IN ('arguments', 'result', 'approval', 'prior_state')),
    class       TEXT NOT NULL,
    agent       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ,
    key_id      TEXT NOT NULL,
    wrapped_key BYTEA,
    ciphertext  BYTEA,
    shredded_at TIMESTAMPTZ,
    PRIMARY KEY (event_id, artifact),
    CHECK ((shredded_at IS NULL) = (wrapped_key IS NOT NULL AND ciphertext IS NOT NULL))
);
CREATE INDEX evidence_expiry ON evidence (expires_at) WHERE shredded_at IS NULL;

-- Legal holds: evidence in scope (`agent:NAME` or `event:ID`) is never shredded while one exists.
CREATE TABLE legal_holds (
    id         TEXT PRIMARY KEY,
    scope      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    operator   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX legal_holds_scope ON legal_holds (scope);

-- The policies of every bundle the server ran with, by bundle hash (a JSON array of
-- {id, file, line, text}), so `explain` shows the text in force when an event was decided.
CREATE TABLE policy_bundles (
    hash      TEXT PRIMARY KEY,
    policies  TEXT NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL
);

-- Linked events (undos, retries, approved executions) by parent.
CREATE INDEX events_parent ON events (parent_id, seq) WHERE parent_id IS NOT NULL;
