-- The agents in the order a poll cycle reads them (`ORDER BY created_at, agent_id`), as on
-- SQLite (0008): read through this index instead of sorting every row first.
CREATE INDEX agents_in_order ON agents (created_at, agent_id);
