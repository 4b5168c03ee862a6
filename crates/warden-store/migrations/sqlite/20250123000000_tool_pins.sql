-- Tool pinning, SQLite dialect. `tool_pins` holds the definition of each tool Warden accepts (as
-- first seen, or as an operator last approved it); `tool_pin_changes` the definition an upstream
-- offers instead, until an operator approves it. Definitions are canonical JSON text; hashes are
-- SHA-256 hex. Times are RFC 3339 text in UTC with microseconds, as in the init migration.
CREATE TABLE tool_pins (
    upstream    TEXT NOT NULL,
    tool        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    definition  TEXT NOT NULL,
    pinned_at   TEXT NOT NULL,
    approved_by TEXT,
    PRIMARY KEY (upstream, tool)
);

CREATE TABLE tool_pin_changes (
    upstream       TEXT NOT NULL,
    tool           TEXT NOT NULL,
    old_hash       TEXT NOT NULL,
    new_hash       TEXT NOT NULL,
    new_definition TEXT NOT NULL,
    detected_at    TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    PRIMARY KEY (upstream, tool)
);
