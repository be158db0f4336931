-- An agent's own Microsoft Teams (Workflows) webhook (issue 28): like its Slack and Discord
-- ones, it replaces the defaults when set. Its URL's `sig` query is the secret.
ALTER TABLE agents ADD COLUMN teams_webhook_url TEXT;

-- Setting it is a settings change like the others: the monitor reads the agents again.
DROP TRIGGER agent_settings_changed ON agents;
CREATE TRIGGER agent_settings_changed
    AFTER UPDATE OF name, listed_name, source, slack_webhook_url, discord_webhook_url,
        teams_webhook_url, muted, muted_until ON agents
    FOR EACH ROW EXECUTE FUNCTION settings_changed();

-- The outbox and the event log named the platforms they take ('slack', 'discord') in a CHECK:
-- every new destination would need them changed again. The platforms are the application's
-- (domain::Platform); the store reads a platform back only by a name it knows
-- (store::rows::platform), so the column keeps only a shape check.
ALTER TABLE outbox DROP CONSTRAINT outbox_platform_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_platform_check CHECK (platform <> '');
ALTER TABLE event_deliveries DROP CONSTRAINT event_deliveries_platform_check;
ALTER TABLE event_deliveries ADD CONSTRAINT event_deliveries_platform_check CHECK (platform <> '');
