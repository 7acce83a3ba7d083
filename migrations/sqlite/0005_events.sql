-- Domain events, written in the transaction of the change they describe, and the cursors of the
-- durable consumers that read them. On SQLite writers are serialised, so `seq` order is commit
-- order and `tx` stays 0.

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    tx         BIGINT NOT NULL DEFAULT 0,
    -- absent for platform events (a tenant deleted, a package published)
    tenant_id  TEXT,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, seq);
CREATE INDEX events_by_subject ON events (tenant_id, subject, seq);
CREATE INDEX events_by_age ON events (created_at);

CREATE TABLE event_cursors (
    consumer   TEXT PRIMARY KEY,
    tx         BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
