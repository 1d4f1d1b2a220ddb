-- Read-only role for readers of the aggregate store (the dashboard, `privacy-analytics
-- releases|budget|runs`). PostgreSQL only; SQLite readers open the file with mode=ro.
--
-- Run it once, in the aggregate store's database, as the role that owns the store's tables
-- (the role in the pipeline's PA_STORE_URL), after the pipeline has created them:
--
--     psql "postgresql://pa_writer@db/aggregates" -f analytics/sql/readonly_role.sql
--     psql "postgresql://pa_writer@db/aggregates" -c "\password pa_reader"
--
-- then give the dashboard a URL with that role, e.g.
-- postgresql+psycopg://pa_reader:<password>@db/aggregates. The dashboard also opens every
-- connection with default_transaction_read_only=on, but this role is what makes the database
-- itself refuse writes: it may connect and SELECT, nothing else.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pa_reader') THEN
        CREATE ROLE pa_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$$;

ALTER ROLE pa_reader SET default_transaction_read_only = on;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO pa_reader', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO pa_reader;
REVOKE CREATE ON SCHEMA public FROM pa_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO pa_reader;
-- tables added by later migrations (created by the owner running this script) stay readable
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO pa_reader;
