-- Maintenance windows (issue 27); see migrations/sqlite/0012_maintenance_windows.sql.
CREATE TABLE maintenance_windows (
    id               TEXT COLLATE "C" PRIMARY KEY,
    name             TEXT NOT NULL,
    schedule         TEXT,
    duration_seconds BIGINT,
    start_at         BIGINT,
    end_at           BIGINT,
    timezone         TEXT NOT NULL,
    agent_ids        TEXT,
    created_at       BIGINT NOT NULL,
    CHECK ((schedule IS NOT NULL AND duration_seconds IS NOT NULL
            AND start_at IS NULL AND end_at IS NULL)
        OR (schedule IS NULL AND duration_seconds IS NULL
            AND start_at IS NOT NULL AND end_at IS NOT NULL))
);

CREATE TRIGGER maintenance_window_added AFTER INSERT ON maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION settings_changed();

CREATE TRIGGER maintenance_window_removed AFTER DELETE ON maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION settings_changed();
