-- Transcripts are deleted after `retention.transcript_days`, oldest first, in batches: by time.
CREATE INDEX transcript_at ON transcript (at);
-- Texts of a ticket erased (closed longer than `retention.closed_ticket_days`, or its customer
-- forgotten on request): when, so that housekeeping does not erase it again.
ALTER TABLE tickets ADD COLUMN erased_at INTEGER;
CREATE INDEX tickets_closed ON tickets (updated_at) WHERE status = 'closed' AND erased_at IS NULL;
-- Erasing a customer (`switchboard forget`) finds their conversations and tickets. The customer id
-- leads: an index starting with `channel` would also match the per-message lookup by
-- (channel, chat), and PostgreSQL's generic plan, made while the table is small, can pick it and
-- then read every conversation of the channel for each message.
CREATE INDEX tickets_customer ON tickets (customer_id, channel);
CREATE INDEX conversations_customer ON conversations (customer_id, channel);
-- Erasing a ticket's texts finds its transcript lines by ticket (partial: the lines outside a
-- ticket, most of them, cost nothing to write).
CREATE INDEX transcript_ticket ON transcript (ticket_id) WHERE ticket_id IS NOT NULL;
