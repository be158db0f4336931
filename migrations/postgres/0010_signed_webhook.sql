-- An agent's own signed JSON webhook (issue 28): like its other webhooks, it replaces the
-- defaults when set; it is signed with the one WEBHOOK_SECRET.
ALTER TABLE agents ADD COLUMN webhook_url TEXT;

-- Setting it is a settings change like the others: the monitor reads the agents again.
DROP TRIGGER agent_settings_changed ON agents;
CREATE TRIGGER agent_settings_changed
    AFTER UPDATE OF name, listed_name, source, slack_webhook_url, discord_webhook_url,
        teams_webhook_url, webhook_url, muted, muted_until ON agents
    FOR EACH ROW EXECUTE FUNCTION settings_changed();
