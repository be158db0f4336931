-- The leader lease (see src/store/lease.rs): one row, taken or renewed by one conditional
-- UPDATE. `term` grows at every change of holder and fences the leader's writes; `expires_at`
-- is Unix milliseconds. The row exists from the start, expired, so claiming is always an UPDATE.
CREATE TABLE leader_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    term       INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO leader_lease (id, holder, term, expires_at) VALUES (1, '', 0, 0);
