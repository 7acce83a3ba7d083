-- Portal profiles (branding, texts, theme, booking and feedback switches) assigned per project,
-- appointment windows on tickets, and end users' feedback.

CREATE TABLE portal_profiles (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    is_default         BIGINT NOT NULL,
    mode               TEXT NOT NULL CHECK (mode IN ('tracking', 'booking')),
    feedback           BIGINT NOT NULL,
    -- re-encoded PNG; the hash versions its URL
    logo               BYTEA,
    logo_sha256        TEXT,
    logo_link          TEXT,
    salutation         TEXT NOT NULL,
    booking_text       TEXT NOT NULL,
    booking_disclaimer TEXT NOT NULL,
    colours            TEXT NOT NULL,
    theme_install_id   TEXT REFERENCES plugin_installs (id) ON DELETE SET NULL,
    language           TEXT NOT NULL,
    link_expiry_days   BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE UNIQUE INDEX portal_profiles_one_default ON portal_profiles (tenant_id) WHERE is_default = 1;

ALTER TABLE projects ADD COLUMN profile_id TEXT REFERENCES portal_profiles (id) ON DELETE SET NULL;

ALTER TABLE tickets ADD COLUMN appointment_start BIGINT;
ALTER TABLE tickets ADD COLUMN appointment_end BIGINT;

CREATE TABLE ticket_feedback (
    ticket_id  TEXT PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rating     BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
