-- Action control, PostgreSQL dialect: kill switches, approval requests and their votes, undo
-- links and usage counters. Operational state shared by every replica; the audit log stays in
-- `events`. Times are timestamptz (microsecond precision).

-- One kill switch per scope: `global`, `agent:<id>` or `upstream:<name>`. Lifting a pause
-- updates the row (paused = false), so the row always says who last touched the switch.
CREATE TABLE switches (
    scope  TEXT        PRIMARY KEY,
    paused BOOLEAN     NOT NULL,
    reason TEXT,
    set_by TEXT        NOT NULL,
    set_at TIMESTAMPTZ NOT NULL
);

-- Change counters that replicas poll to know when to reload what they cache. `switches` is
-- bumped in the same transaction as every switch change (the row lock orders the bumps).
CREATE TABLE control_versions (
    name    TEXT   PRIMARY KEY,
    version BIGINT NOT NULL CHECK (version >= 0)
);
INSERT INTO control_versions (name, version) VALUES ('switches', 0);

-- Calls held for human approval. `event_id` is the held call's audit event (no foreign key: the
-- request is stored before that event commits). `args` is the call's JSON arguments as exact
-- text, kept so the call can run once approved. Votes lock the row (SELECT ... FOR UPDATE).
CREATE TABLE approvals (
    id              TEXT        PRIMARY KEY,
    kind            TEXT        NOT NULL CHECK (kind IN ('approval', 'proposal')),
    event_id        TEXT        NOT NULL,
    agent           TEXT        NOT NULL,
    "user"          TEXT,
    task            TEXT,
    session         TEXT,
    tool            TEXT        NOT NULL,
    args_hash       TEXT        NOT NULL,
    args            TEXT        NOT NULL,
    required_role   TEXT,
    required_count  BIGINT      NOT NULL CHECK (required_count >= 1),
    policies        TEXT[]      NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN
                        ('pending', 'approved', 'denied', 'expired', 'cancelled', 'executed')),
    requested_at    TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    decided_at      TIMESTAMPTZ,
    result_event_id TEXT
);
CREATE INDEX approvals_status ON approvals (status, requested_at);
CREATE INDEX approvals_agent ON approvals (agent, status);

-- One vote per approver and request.
CREATE TABLE approval_votes (
    approval_id TEXT        NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    approver    TEXT        NOT NULL,
    approve     BOOLEAN     NOT NULL,
    reason      TEXT,
    voted_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (approval_id, approver)
);

-- An event is undone at most once: the first claim inserts the row, later ones find it.
CREATE TABLE undo_links (
    original_event TEXT        PRIMARY KEY,
    undo_event     TEXT        NOT NULL,
    claimed_at     TIMESTAMPTZ NOT NULL
);

-- Rate-limit and budget counters, one row per key and window.
CREATE TABLE usage_counters (
    usage_key    TEXT             NOT NULL,
    window_start TIMESTAMPTZ      NOT NULL,
    count        BIGINT           NOT NULL,
    amount       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (usage_key, window_start)
);
CREATE INDEX usage_counters_window ON usage_counters (window_start);
