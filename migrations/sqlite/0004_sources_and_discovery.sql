-- Where each watched agent came from: `env` (WATCH_AGENT_IDS), `api` (POST /agents) or
-- `discovered` (WATCH_ALL_AGENTS). Agents that predate this column were added by one of the
-- first two; `api` is assumed, and start-up marks the ones still in WATCH_AGENT_IDS `env`.
ALTER TABLE agents ADD COLUMN source TEXT NOT NULL DEFAULT 'api'
    CHECK (source IN ('env', 'api', 'discovered'));
-- The agent's name in the organisation's listing: shown when the operator set none.
ALTER TABLE agents ADD COLUMN listed_name TEXT;
-- Complete listings in a row that did not list a discovered agent: at 2 it is unwatched.
ALTER TABLE agents ADD COLUMN absent_listings INTEGER NOT NULL DEFAULT 0;

-- Agents removed over the API: watch-all does not add them back until they are POSTed again.
CREATE TABLE unwatched_agents (
    agent_id TEXT PRIMARY KEY NOT NULL,
    since    INTEGER NOT NULL
);

-- The listed name and the source are settings a poll cycle reads (alerts name the agent; a
-- discovered agent's 404s alert nothing), so changing them moves the version too.
DROP TRIGGER agent_settings_changed;
CREATE TRIGGER agent_settings_changed
    AFTER UPDATE OF name, listed_name, source, slack_webhook_url, discord_webhook_url, muted,
        muted_until ON agents
BEGIN
    UPDATE settings_version SET version = version + 1;
END;
