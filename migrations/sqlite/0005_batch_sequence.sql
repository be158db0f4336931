-- A poll cycle's alerts to one destination go out together as one batch. Batches were the
-- cycle's commit time in ms, so a clock stepped back could merge two cycles or order them
-- wrongly; now they come from this counter, moved once per cycle that queues alerts. It starts
-- above every batch already stored, so batches keep growing across the upgrade.
CREATE TABLE outbox_batch_sequence (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO outbox_batch_sequence (id, last) SELECT 1, COALESCE(MAX(batch), 0) FROM outbox;
