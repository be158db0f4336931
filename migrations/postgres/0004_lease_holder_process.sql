-- Where the lease's holder runs (src/util/process.rs): its host identity (boot id and pid
-- namespace; empty when unknown), pid, and start time in clock ticks since boot. A process on
-- the same host takes the lease at once when that holder provably no longer runs.
ALTER TABLE leader_lease ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE leader_lease ADD COLUMN pid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leader_lease ADD COLUMN started BIGINT NOT NULL DEFAULT 0;
