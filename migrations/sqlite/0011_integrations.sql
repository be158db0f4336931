-- The organisation-level integration an `integration_down`, `integration_recovered` or
-- `token_expiring` event is about (`calcom_org`, `ghl`; issue 26); NULL for every other event.
ALTER TABLE events ADD COLUMN integration TEXT;

-- tracker::IntegrationState as JSON, one row per organisation-level integration checked: what
-- its checks have seen, kept across restarts so a threshold, an open outage or a token's steady
-- expiry is not forgotten.
CREATE TABLE integrations (
    name  TEXT PRIMARY KEY CHECK (name IN ('calcom_org', 'ghl')),
    state TEXT NOT NULL
);
