-- Booking rules (SLA profiles and custom intervals) that portal profiles and projects name as
-- their booking source, the profiles' booking settings, and the rule set whose capacity a
-- ticket's appointment uses.

CREATE TABLE booking_rules (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('sla', 'intervals')),
    time_zone             TEXT NOT NULL,
    -- JSON of the definition, parsed into typed values by the host
    definition            TEXT NOT NULL,
    calculator_install_id TEXT REFERENCES plugin_installs (id) ON DELETE SET NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Which rules a portal profile offers, and a project's own rules that override its profile's.
-- A rule set in use cannot be deleted (NO ACTION); deleting the profile or project drops the row.
CREATE TABLE profile_booking_rules (
    profile_id TEXT PRIMARY KEY REFERENCES portal_profiles (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rules_id   TEXT NOT NULL REFERENCES booking_rules (id)
);
CREATE TABLE project_booking_rules (
    project_id TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rules_id   TEXT NOT NULL REFERENCES booking_rules (id)
);

-- Customers may change or cancel until this many minutes before the appointment.
ALTER TABLE portal_profiles ADD COLUMN change_notice_minutes BIGINT NOT NULL DEFAULT 1440;
-- Whom to call when it is too late to change online.
ALTER TABLE portal_profiles ADD COLUMN phone TEXT NOT NULL DEFAULT '';
-- Salutation and booking texts per language (JSON object by language code).
ALTER TABLE portal_profiles ADD COLUMN translations TEXT NOT NULL DEFAULT '{}';

ALTER TABLE tickets ADD COLUMN appointment_rules_id TEXT;
CREATE INDEX tickets_appointments ON tickets (tenant_id, appointment_rules_id, appointment_start);
