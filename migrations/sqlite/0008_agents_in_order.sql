-- The agents in the order a poll cycle reads them (`ORDER BY created_at, agent_id`): read
-- through this index, the rows stream one at a time; without it SQLite sorted every row, each
-- state's JSON with it, in memory (about 10 MB at 10,000 agents) before the first came out.
CREATE INDEX agents_in_order ON agents (created_at, agent_id);
