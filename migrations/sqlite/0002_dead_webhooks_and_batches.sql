-- Webhooks that answered "gone" (Slack no_service, Discord 404 …): nothing more is sent to them
-- until their URL is set again.
CREATE TABLE dead_webhooks (
    platform TEXT NOT NULL,
    url      TEXT NOT NULL,
    reason   TEXT NOT NULL,
    since    INTEGER NOT NULL,
    PRIMARY KEY (platform, url)
);

-- The poll cycle that produced an outbox entry: one cycle's alerts to one destination are sent
-- together.
ALTER TABLE outbox ADD COLUMN batch INTEGER NOT NULL DEFAULT 0;
