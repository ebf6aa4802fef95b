-- Switchboard schema, PostgreSQL flavour. Times are Unix milliseconds; structured values are JSON text.
CREATE TABLE conversations (
    id            BIGSERIAL PRIMARY KEY,
    channel       TEXT    NOT NULL,
    chat          TEXT    NOT NULL,
    customer_id   TEXT    NOT NULL,
    customer_name TEXT    NOT NULL,
    lang          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    owner         TEXT    NOT NULL,
    ticket_id     BIGINT ,
    version       BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (channel, chat)
);

CREATE TABLE tickets (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT  NOT NULL REFERENCES conversations (id),
    channel         TEXT    NOT NULL,
    chat            TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    customer_name   TEXT    NOT NULL,
    lang            TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    priority        BIGINT  NOT NULL,
    fields          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    agent           TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX tickets_queue ON tickets (status, priority DESC, created_at, id);

CREATE TABLE ticket_events (
    id        BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT  NOT NULL REFERENCES tickets (id),
    at        BIGINT  NOT NULL,
    kind      TEXT    NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE transcript (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT  NOT NULL REFERENCES conversations (id),
    ticket_id       BIGINT ,
    author          TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    at              BIGINT  NOT NULL
);
CREATE INDEX transcript_conversation ON transcript (conversation_id, id);

CREATE TABLE processed (
    channel    TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    PRIMARY KEY (channel, message_id)
);

CREATE TABLE outbox (
    id       BIGSERIAL PRIMARY KEY,
    target   TEXT    NOT NULL,
    item     TEXT    NOT NULL,
    attempts BIGINT  NOT NULL,
    due_at   BIGINT  NOT NULL,
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
