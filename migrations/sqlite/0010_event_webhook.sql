-- The webhook a `webhook_dead` event is about, masked (issue 25); NULL for every other event.
ALTER TABLE events ADD COLUMN webhook TEXT;
