-- Domain events, written in the transaction of the change they describe, and the cursors of the
-- durable consumers that read them. `seq` is handed out at insert, not at commit, so a consumer
-- orders by the writing transaction's id first and reads only transactions older than every
-- running one (pg_snapshot_xmin): nothing can appear behind its cursor later.

CREATE TABLE events (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    tx         BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
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
CREATE INDEX events_by_position ON events (tx, seq);

CREATE TABLE event_cursors (
    consumer   TEXT PRIMARY KEY,
    tx         BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
