-- A second wall behind the tenant-scoped queries: every table with a tenant, and the tenants
-- table itself, shows and accepts only the rows of the tenant the connection names in the
-- setting `portico.tenant` ('*' for the platform's own work, across tenants). The host writes the
-- setting each time its pool hands a connection out (host/src/db.rs). Forced, so the tables'
-- owner is bound too; only a superuser or a BYPASSRLS role passes. The wall holds a query that
-- forgets its tenant; it does not hold against SQL injection, which could change the setting.
--
-- A later migration that reads or changes rows must first say whose:
--   SET LOCAL portico.tenant = '*';
-- New tables with a tenant_id need the same three statements; a test fails for any without.

DO $$
DECLARE
    tenant_table TEXT;
BEGIN
    FOR tenant_table IN
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables t
            ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id'
            AND t.table_type = 'BASE TABLE'
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format(
            'CREATE POLICY tenant_wall ON %I USING (tenant_id = current_setting(''portico.tenant'', true) OR current_setting(''portico.tenant'', true) = ''*'')',
            tenant_table
        );
    END LOOP;
END
$$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON tenants
    USING (id = current_setting('portico.tenant', true) OR current_setting('portico.tenant', true) = '*');
