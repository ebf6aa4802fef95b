-- What the bot made of each customer message (the dialogue's action, and the intent when one was
-- matched), kept on the message's transcript line for `switchboard report` and
-- `switchboard intents suggest`; other lines leave them empty. Both read a period by
-- `transcript_at` (0004); no index of their own, which every message would pay for.
ALTER TABLE transcript ADD COLUMN intent TEXT;
ALTER TABLE transcript ADD COLUMN outcome TEXT;
