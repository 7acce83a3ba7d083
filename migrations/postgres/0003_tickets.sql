-- Projects, tickets with their progress history and technician position, custom fields, and
-- tracking links (only a hash of each link's token is stored).

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE custom_fields (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    label      TEXT NOT NULL,
    field_type TEXT NOT NULL CHECK (field_type IN ('text', 'number', 'boolean', 'date', 'choice')),
    choices    TEXT NOT NULL,
    required   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, key)
);

CREATE TABLE ticket_counters (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_number BIGINT NOT NULL
);

CREATE TABLE tickets (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    project_id         TEXT NOT NULL REFERENCES projects (id),
    number             BIGINT NOT NULL,
    title              TEXT NOT NULL,
    description        TEXT NOT NULL,
    ticket_type        TEXT NOT NULL,
    priority           TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    contact_first_name TEXT NOT NULL,
    contact_last_name  TEXT NOT NULL,
    contact_email      TEXT NOT NULL,
    contact_mobile     TEXT,
    address            TEXT NOT NULL,
    custom_fields      TEXT NOT NULL,
    technician_id      TEXT REFERENCES staff_users (id) ON DELETE SET NULL,
    status             TEXT NOT NULL,
    -- microdegrees: integers behave the same on both backends
    latitude_e6        BIGINT,
    longitude_e6       BIGINT,
    position_at        BIGINT,
    eta_at             BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (tenant_id, number)
);
CREATE INDEX tickets_tenant ON tickets (tenant_id, id);

CREATE TABLE ticket_status_history (
    id        TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    status    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX ticket_status_history_ticket ON ticket_status_history (tenant_id, ticket_id, at);

CREATE TABLE tracking_links (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id  TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
