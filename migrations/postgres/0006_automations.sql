-- Automated actions (trigger, conditions, steps), the tenant's reusable message templates, and
-- the delivery outbox the automated-actions consumer fills in the transaction that reads an
-- event. A delivery keeps its rendered message with each portal link as a marker: the link's
-- token is issued when the message is sent and only its hash is stored.

CREATE TABLE automated_actions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    active      BIGINT NOT NULL,
    object      TEXT NOT NULL,
    -- JSON documents, parsed into typed values by the host
    trigger     TEXT NOT NULL,
    conditions  TEXT NOT NULL,
    steps       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Which time-triggered action ran for which occurrence (an appointment time), once.
CREATE TABLE action_occurrences (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    action_id  TEXT NOT NULL REFERENCES automated_actions (id) ON DELETE CASCADE,
    occurrence TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (action_id, occurrence)
);

CREATE TABLE message_templates (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    language   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    html       TEXT NOT NULL,
    text       TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name, language)
);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- absent for a test send; kept when the action is deleted, as the log's history
    action_id       TEXT,
    event_seq       BIGINT,
    step_index      BIGINT NOT NULL,
    ticket_id       TEXT,
    install_id      TEXT NOT NULL,
    fallback_install_id TEXT,
    -- JSON: name, email, phone, language
    recipient       TEXT NOT NULL,
    recipient_key   TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT,
    -- JSON: link name to the marker standing for it in the bodies
    links           TEXT NOT NULL,
    -- links of 128 bits (22 characters) instead of 256, for SMS
    short_links     BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    provider_id     TEXT,
    detail          TEXT,
    sent_via        TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    updated_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, action_id, event_seq, step_index, recipient_key)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_log ON deliveries (tenant_id, id);
CREATE INDEX deliveries_sent ON deliveries (tenant_id, sent_at);

-- Information an automated action posts to a ticket's tracking page ("in-portal info").
CREATE TABLE ticket_notices (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ticket_id  TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_notices_ticket ON ticket_notices (tenant_id, ticket_id, created_at);
