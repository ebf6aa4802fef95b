-- Delivery order is kept per destination (one customer chat, or one ticket on a desk): the outbox
-- records it so that a batch asks only about its own destinations. Rows written before this
-- migration get it from `SqlStore::connect`, which fills in every NULL.
ALTER TABLE outbox ADD COLUMN dest TEXT;
CREATE INDEX outbox_dest ON outbox (status, dest, id);

-- Handled message ids are forgotten after a retention period, oldest first.
CREATE INDEX processed_at ON processed (at);
