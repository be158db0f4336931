-- Poll cycles save an agent's state only when it changes in substance, not at every poll, and
-- re-read the agents' settings only when those changed. `settings_version` counts the changes
-- to the agents' settings; the triggers below move it inside the changing transaction itself,
-- so no writer can forget it. Each agent keeps the version that added it, and the monitor row
-- the version and start time of the last committed cycle: an agent added at or before that
-- version was polled by that cycle, so it was checked then even if its saved state is older.
CREATE TABLE settings_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO settings_version (id, version) VALUES (1, 0);

ALTER TABLE agents ADD COLUMN added_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE monitor_state ADD COLUMN polled_version INTEGER;
ALTER TABLE monitor_state ADD COLUMN polled_at INTEGER;

CREATE TRIGGER agent_added AFTER INSERT ON agents BEGIN
    UPDATE settings_version SET version = version + 1;
    UPDATE agents SET added_version = (SELECT version FROM settings_version)
        WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER agent_removed AFTER DELETE ON agents BEGIN
    UPDATE settings_version SET version = version + 1;
END;

CREATE TRIGGER agent_settings_changed
    AFTER UPDATE OF name, slack_webhook_url, discord_webhook_url, muted, muted_until ON agents
BEGIN
    UPDATE settings_version SET version = version + 1;
END;

-- Every cycle first lifts the mutes that have ended: with this, that finds them without reading
-- every agent.
CREATE INDEX agents_mute_ends ON agents (muted_until) WHERE muted_until IS NOT NULL;
