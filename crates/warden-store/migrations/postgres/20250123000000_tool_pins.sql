-- Tool pinning, PostgreSQL dialect. `tool_pins` holds the definition of each tool Warden accepts
-- (as first seen, or as an operator last approved it); `tool_pin_changes` the definition an
-- upstream offers instead, until an operator approves it. Definitions are canonical JSON text
-- (kept as text so the exact bytes that were hashed read back); hashes are SHA-256 hex.
CREATE TABLE tool_pins (
    upstream    TEXT        NOT NULL,
    tool        TEXT        NOT NULL,
    hash        TEXT        NOT NULL,
    definition  TEXT        NOT NULL,
    pinned_at   TIMESTAMPTZ NOT NULL,
    approved_by TEXT,
    PRIMARY KEY (upstream, tool)
);

CREATE TABLE tool_pin_changes (
    upstream       TEXT        NOT NULL,
    tool           TEXT        NOT NULL,
    old_hash       TEXT        NOT NULL,
    new_hash       TEXT        NOT NULL,
    new_definition TEXT        NOT NULL,
    detected_at    TIMESTAMPTZ NOT NULL,
    event_id       TEXT        NOT NULL,
    PRIMARY KEY (upstream, tool)
);
