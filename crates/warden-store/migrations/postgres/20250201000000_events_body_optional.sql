-- New events no longer keep a JSON copy of themselves: the canonical bytes (which the Merkle log
-- commits to) hold every field, and reads decode them. Writing the copy doubled each row, and the
-- bytes written per event are what bounds the audit log's append rate. `body` stays for rows
-- written before this migration (some of which predate `canonical`); it is NULL from now on.
ALTER TABLE events ALTER COLUMN body DROP NOT NULL;
