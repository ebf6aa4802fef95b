-- Delivery is leased per destination (one customer chat, or one ticket on a desk), not per item:
-- the sender holding a destination's lease sends its items one at a time, in order, and renews the
-- lease while it lives. `token` is unique to one claim: an item is marked delivered, rescheduled
-- or failed only with the token that holds its destination, so a sender whose lease expired (and
-- was taken over) can change nothing. `until` is when the lease runs out if not renewed.
CREATE TABLE outbox_leases (
    dest  TEXT   NOT NULL PRIMARY KEY,
    owner TEXT   NOT NULL,
    token TEXT   NOT NULL,
    until BIGINT NOT NULL
);
CREATE INDEX outbox_leases_owner ON outbox_leases (owner);

-- Before this migration a claimed item's due time was its lease: items claimed by a process that
-- has since stopped are due now.
UPDATE outbox SET due_at = 0 WHERE status = 'pending' AND attempts = 0;
