-- Maintenance windows (issue 27): planned work during which agents' alerts are held back.
-- Recurring (`schedule`, a 5-field cron read in `timezone`, and `duration_seconds`) or one-off
-- (`start_at` to `end_at`, Unix milliseconds). `agent_ids` is a JSON array of agent UUIDs, NULL
-- for every agent. Adding or removing a window moves the settings version, so poll cycles read
-- the windows again only then.
CREATE TABLE maintenance_windows (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    schedule         TEXT,
    duration_seconds INTEGER,
    start_at         INTEGER,
    end_at           INTEGER,
    timezone         TEXT NOT NULL,
    agent_ids        TEXT,
    created_at       INTEGER NOT NULL,
    CHECK ((schedule IS NOT NULL AND duration_seconds IS NOT NULL
            AND start_at IS NULL AND end_at IS NULL)
        OR (schedule IS NULL AND duration_seconds IS NULL
            AND start_at IS NOT NULL AND end_at IS NOT NULL))
);

CREATE TRIGGER maintenance_window_added AFTER INSERT ON maintenance_windows BEGIN
    UPDATE settings_version SET version = version + 1;
END;

CREATE TRIGGER maintenance_window_removed AFTER DELETE ON maintenance_windows BEGIN
    UPDATE settings_version SET version = version + 1;
END;
