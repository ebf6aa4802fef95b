-- Switchboard schema, SQLite flavour. Times are Unix milliseconds; structured values are JSON text.
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    channel       TEXT    NOT NULL,
    chat          TEXT    NOT NULL,
    customer_id   TEXT    NOT NULL,
    customer_name TEXT    NOT NULL,
    lang          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    owner         TEXT    NOT NULL,
    ticket_id     INTEGER,
    version       INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (channel, chat)
);

CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    channel         TEXT    NOT NULL,
    chat            TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    customer_name   TEXT    NOT NULL,
    lang            TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    priority        INTEGER NOT NULL,
    fields          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    agent           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX tickets_queue ON tickets (status, priority DESC, created_at, id);

CREATE TABLE ticket_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE transcript (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    ticket_id       INTEGER,
    author          TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX transcript_conversation ON transcript (conversation_id, id);

CREATE TABLE processed (
    channel    TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (channel, message_id)
);

CREATE TABLE outbox (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    target   TEXT    NOT NULL,
    item     TEXT    NOT NULL,
    attempts INTEGER NOT NULL,
    due_at   INTEGER NOT NULL,
    status   TEXT    NOT NULL,
    error    TEXT
);
CREATE INDEX outbox_due ON outbox (status, target, due_at, id);

CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
