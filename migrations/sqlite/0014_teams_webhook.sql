-- An agent's own Microsoft Teams (Workflows) webhook (issue 28): like its Slack and Discord
-- ones, it replaces the defaults when set. Its URL's `sig` query is the secret.
ALTER TABLE agents ADD COLUMN teams_webhook_url TEXT;

-- Setting it is a settings change like the others: the monitor reads the agents again.
DROP TRIGGER agent_settings_changed;
CREATE TRIGGER agent_settings_changed
    AFTER UPDATE OF name, listed_name, source, slack_webhook_url, discord_webhook_url,
        teams_webhook_url, muted, muted_until ON agents
BEGIN
    UPDATE settings_version SET version = version + 1;
END;

-- The outbox and the event log named the platforms they take ('slack', 'discord') in a CHECK:
-- every new destination would need these tables rebuilt again. The platforms are the
-- application's (domain::Platform); the store reads a platform back only by a name it knows
-- (store::rows::platform), so the column keeps only a shape check. SQLite cannot change a
-- CHECK in place: each table is rebuilt, its rows and (for the outbox) its id sequence kept,
-- so no entry id is ever used twice (event_deliveries.outbox_id names them).
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    platform        TEXT NOT NULL CHECK (platform <> ''),
    url             TEXT NOT NULL,
    agent_id        TEXT,
    kind            TEXT NOT NULL,
    -- alert::Alert as JSON: rendered when sent, so the message is always the current format.
    alert           TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    batch           INTEGER NOT NULL DEFAULT 0,
    event_id        INTEGER
);
INSERT INTO outbox_new (id, platform, url, agent_id, kind, alert, status, attempts,
        next_attempt_at, last_error, created_at, finished_at, batch, event_id)
    SELECT id, platform, url, agent_id, kind, alert, status, attempts, next_attempt_at,
        last_error, created_at, finished_at, batch, event_id
    FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_new', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_pending_by_destination ON outbox (status, platform, url, id);

CREATE TABLE event_deliveries_new (
    outbox_id INTEGER PRIMARY KEY NOT NULL,
    event_id  INTEGER NOT NULL,
    platform  TEXT NOT NULL CHECK (platform <> ''),
    webhook   TEXT NOT NULL,
    outcome   TEXT NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'delivered', 'failed')),
    at        INTEGER,
    error     TEXT
);
INSERT INTO event_deliveries_new SELECT outbox_id, event_id, platform, webhook, outcome, at, error
    FROM event_deliveries;
DROP TABLE event_deliveries;
ALTER TABLE event_deliveries_new RENAME TO event_deliveries;
CREATE INDEX event_deliveries_by_event ON event_deliveries (event_id);
