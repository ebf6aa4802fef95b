-- The quick-reply buttons a bot reply offered, as JSON (`[{"payload": …, "label": …}]`), on its
-- transcript line: the web chat shows a conversation from its transcript, after a reload too,
-- and draws the buttons again. Empty for every other line.
ALTER TABLE transcript ADD COLUMN choices TEXT;
