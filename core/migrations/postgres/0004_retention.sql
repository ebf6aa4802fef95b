-- Transcripts are deleted after `retention.transcript_days`, oldest first, in batches: by time.
CREATE INDEX transcript_at ON transcript (at);
-- Texts of a ticket erased (closed longer than `retention.closed_ticket_days`, or its customer
-- forgotten on request): when, so that housekeeping does not erase it again.
ALTER TABLE tickets ADD COLUMN erased_at BIGINT;
CREATE INDEX tickets_closed ON tickets (status, updated_at);
CREATE INDEX tickets_customer ON tickets (channel, customer_id);
CREATE INDEX conversations_customer ON conversations (channel, customer_id);
-- Erasing a ticket's texts finds its transcript lines by ticket.
CREATE INDEX transcript_ticket ON transcript (ticket_id);
