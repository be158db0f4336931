-- The last digest's tick (DIGEST_SCHEDULE; issue 27), in Unix milliseconds (0: none yet): a
-- leader claims a tick by moving it forward in the write that queues the digest, so each tick
-- is sent once, across fail-overs and by however many processes.
CREATE TABLE digest (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_tick INTEGER NOT NULL
);
INSERT INTO digest (id, last_tick) VALUES (1, 0);
