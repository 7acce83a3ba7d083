-- The platform's plugin catalogue, tenants' installs, and the record of every invocation.

CREATE TABLE plugin_packages (
    id         TEXT PRIMARY KEY,
    plugin_id  TEXT NOT NULL,
    version    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    package    BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (plugin_id, version)
);

CREATE TABLE plugin_installs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plugin_id        TEXT NOT NULL,
    version          TEXT NOT NULL,
    previous_version TEXT,
    enabled          BIGINT NOT NULL DEFAULT 1,
    config           TEXT NOT NULL,
    grants           TEXT NOT NULL,
    -- nonce || ChaCha20-Poly1305 ciphertext of the secrets, bound to this install and tenant
    secrets          BYTEA,
    limits           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (tenant_id, plugin_id),
    FOREIGN KEY (plugin_id, version) REFERENCES plugin_packages (plugin_id, version)
);

CREATE TABLE plugin_runs (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    install_id  TEXT,
    plugin_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    message     TEXT,
    duration_us BIGINT NOT NULL,
    fuel_used   BIGINT,
    logs        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX plugin_runs_tenant ON plugin_runs (tenant_id, id);
