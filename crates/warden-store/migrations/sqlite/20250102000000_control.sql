-- Action control, SQLite dialect: kill switches, approval requests and their votes, undo links
-- and usage counters. Operational state shared by every process on the database; the audit log
-- stays in `events`. Times are RFC 3339 text in UTC with microseconds, as in the init migration.

-- One kill switch per scope: `global`, `agent:<id>` or `upstream:<name>`. Lifting a pause
-- updates the row (paused = 0), so the row always says who last touched the switch.
CREATE TABLE switches (
    scope  TEXT    PRIMARY KEY,
    paused INTEGER NOT NULL CHECK (paused IN (0, 1)),
    reason TEXT,
    set_by TEXT    NOT NULL,
    set_at TEXT    NOT NULL
);

-- Change counters that replicas poll to know when to reload what they cache. `switches` is
-- bumped in the same transaction as every switch change.
CREATE TABLE control_versions (
    name    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL CHECK (version >= 0)
);
INSERT INTO control_versions (name, version) VALUES ('switches', 0);

-- Calls held for human approval. `event_id` is the held call's audit event (no foreign key: the
-- request is stored before that event commits). `args` is the call's JSON arguments, kept so the
-- call can run once approved; `policies` is a JSON array of policy ids.
CREATE TABLE approvals (
    id              TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('approval', 'proposal')),
    event_id        TEXT    NOT NULL,
    agent           TEXT    NOT NULL,
    "user"          TEXT,
    task            TEXT,
    session         TEXT,
    tool            TEXT    NOT NULL,
    args_hash       TEXT    NOT NULL,
    args            TEXT    NOT NULL,
    required_role   TEXT,
    required_count  INTEGER NOT NULL CHECK (required_count >= 1),
    policies        TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN
                        ('pending', 'approved', 'denied', 'expired', 'cancelled', 'executed')),
    requested_at    TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    decided_at      TEXT,
    result_event_id TEXT
);
CREATE INDEX approvals_status ON approvals (status, requested_at);
CREATE INDEX approvals_agent ON approvals (agent, status);

-- One vote per approver and request.
CREATE TABLE approval_votes (
    approval_id TEXT    NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    approver    TEXT    NOT NULL,
    approve     INTEGER NOT NULL CHECK (approve IN (0, 1)),
    reason      TEXT,
    voted_at    TEXT    NOT NULL,
    PRIMARY KEY (approval_id, approver)
);

-- An event is undone at most once: the first claim inserts the row, later ones find it.
CREATE TABLE undo_links (
    original_event TEXT PRIMARY KEY,
    undo_event     TEXT NOT NULL,
    claimed_at     TEXT NOT NULL
);

-- Rate-limit and budget counters, one row per key and window.
CREATE TABLE usage_counters (
    usage_key    TEXT    NOT NULL,
    window_start TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    amount       REAL    NOT NULL,
    PRIMARY KEY (usage_key, window_start)
);
CREATE INDEX usage_counters_window ON usage_counters (window_start);
