-- The tamper-evident audit log, SQLite dialect. Every event row carries its canonical bytes and
-- leaf hash (the `canonical` and `leaf_hash` columns of `events`, filled at append); this adds
-- the signed checkpoints and the stored subtree hashes that make proofs cheap.

-- One signed checkpoint per tree size. `note` is the C2SP signed note (the authority); `root`
-- is a copy of the root it signs; `nodes` is the compact range at `size` (32-byte hashes
-- concatenated, largest subtree first) so a checkpointer resumes without re-reading the log.
CREATE TABLE checkpoints (
    size       INTEGER PRIMARY KEY CHECK (size >= 0),
    root       BLOB    NOT NULL,
    note       TEXT    NOT NULL,
    nodes      BLOB    NOT NULL,
    created_at TEXT    NOT NULL
);

-- Roots of perfect subtrees at every 4th level (16, 256, 4096, ... leaves), written with the
-- checkpoint that first covers them. Proofs read these instead of whole ranges of leaves.
-- Not trusted: a proof built from them is checked against a signed root.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL CHECK (level > 0),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
