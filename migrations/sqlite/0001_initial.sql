-- Watched agents, the tracker's memory of each, and the outbox of alerts not yet delivered.
-- Times are Unix milliseconds (INTEGER): they compare and sort as numbers.

CREATE TABLE agents (
    agent_id            TEXT PRIMARY KEY NOT NULL,
    name                TEXT,
    slack_webhook_url   TEXT,
    discord_webhook_url TEXT,
    muted               INTEGER NOT NULL DEFAULT 0,
    muted_until         INTEGER,
    created_at          INTEGER NOT NULL,
    -- tracker::AgentState as JSON; written only by poll cycles.
    state               TEXT NOT NULL DEFAULT '{}'
);

-- tracker::MonitorState as JSON, one row.
CREATE TABLE monitor_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    platform        TEXT NOT NULL CHECK (platform IN ('slack', 'discord')),
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
    finished_at     INTEGER
);

CREATE INDEX outbox_pending_by_destination ON outbox (status, platform, url, id);
