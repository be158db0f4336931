-- History (issue 15): the event log and the agents' health intervals. Both are written in the
-- transactions that already write what they record (see src/store/history.rs): an event with
-- the outbox entries of its alert, a delivery with its outbox entry's mark, an interval with
-- the state change of the poll that began or ended it. Times are Unix milliseconds.

-- One row per alert the tracker decided, also one routed to no destination. `agent_id` is NULL
-- for the monitor's own events; `agent_version` is the agent's `added_version` when it was
-- written, which tells a re-added agent's events from those of its earlier watch.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    agent_id      TEXT,
    agent_version INTEGER,
    kind          TEXT NOT NULL,
    from_status   TEXT,
    to_status     TEXT,
    summary       TEXT NOT NULL
);
-- An agent's (or, with NULL, the monitor's) events newest first, a page at a time.
CREATE INDEX events_by_agent ON events (agent_id, id);
-- Pruning by age.
CREATE INDEX events_by_time ON events (at);

-- The event an outbox entry delivers (NULL for entries queued before this migration).
ALTER TABLE outbox ADD COLUMN event_id INTEGER;

-- What one destination did with one event: the record of one outbox entry, moved with it, and
-- kept after the outbox forgets the entry. `webhook` is the URL masked (SecretUrl::masked):
-- the secret part never reaches the log.
CREATE TABLE event_deliveries (
    outbox_id INTEGER PRIMARY KEY NOT NULL,
    event_id  INTEGER NOT NULL,
    platform  TEXT NOT NULL CHECK (platform IN ('slack', 'discord')),
    webhook   TEXT NOT NULL,
    outcome   TEXT NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'delivered', 'failed')),
    at        INTEGER,
    error     TEXT
);
CREATE INDEX event_deliveries_by_event ON event_deliveries (event_id);

-- Runs of observed health (domain::HealthInterval): `ended_at` NULL while the run goes on.
-- Deleted with their agent.
CREATE TABLE health_intervals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id   TEXT NOT NULL,
    healthy    INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER
);
CREATE INDEX health_intervals_by_agent ON health_intervals (agent_id, started_at);
-- A health edge closes the agent's open interval: found without reading its closed ones.
CREATE INDEX health_intervals_open ON health_intervals (agent_id) WHERE ended_at IS NULL;
