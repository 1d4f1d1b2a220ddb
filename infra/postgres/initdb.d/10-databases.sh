#!/usr/bin/env bash
# PostgreSQL set-up for privacy-analytics: one server, two databases, three roles.
#
# The postgres image runs this once, on the first start of an empty data volume
# (/docker-entrypoint-initdb.d). It is idempotent, so it can also be run by hand against an
# existing server (psql connection settings from PG* variables / POSTGRES_USER):
#
#   role       database     may
#   prefect    prefect      own it (the Prefect server's database)
#   pa_writer  aggregates   own it (the pipeline: migrations, releases, ledger, runs)
#   pa_reader  aggregates   CONNECT and SELECT only, read-only by default (the dashboard)
#
# Passwords come from secret files. pa_reader is set up by the project's own
# analytics/sql/readonly_role.sql (mounted at $READONLY_ROLE_SQL), plus default privileges
# so that every table pa_writer creates later (the schema does not exist yet: the pipeline's
# store migrates it on first open) is readable by pa_reader.
set -euo pipefail

: "${POSTGRES_USER:=postgres}"
: "${PREFECT_DB_PASSWORD_FILE:=/run/secrets/prefect_db_password}"
: "${STORE_WRITER_PASSWORD_FILE:=/run/secrets/store_writer_password}"
: "${STORE_READER_PASSWORD_FILE:=/run/secrets/store_reader_password}"
: "${READONLY_ROLE_SQL:=/pa/sql/readonly_role.sql}"

check_secret() {
    local path=$1
    if [[ ! -f "$path" || ! -r "$path" || ! -s "$path" ]]; then
        printf 'postgres init: secret file %s is missing, unreadable or empty\n' "$path" >&2
        exit 1
    fi
}

run_psql() {
    psql --no-psqlrc --set ON_ERROR_STOP=1 --quiet --username "$POSTGRES_USER" "$@"
}

[[ -f "$READONLY_ROLE_SQL" ]] || {
    printf 'postgres init: %s is missing (mount analytics/sql/readonly_role.sql there)\n' \
        "$READONLY_ROLE_SQL" >&2
    exit 1
}

for f in "$PREFECT_DB_PASSWORD_FILE" "$STORE_WRITER_PASSWORD_FILE" "$STORE_READER_PASSWORD_FILE"; do
    check_secret "$f"
done

# psql reads the password files itself (backquotes in \set), so no password is ever part of
# a command line
run_psql --dbname postgres \
    --set prefect_file="$PREFECT_DB_PASSWORD_FILE" \
    --set writer_file="$STORE_WRITER_PASSWORD_FILE" \
    --set reader_file="$STORE_READER_PASSWORD_FILE" <<'SQL'
\set prefect_password `cat :'prefect_file'`
\set writer_password `cat :'writer_file'`
\set reader_password `cat :'reader_file'`

SELECT format('CREATE ROLE %I', r)
FROM unnest(ARRAY['prefect', 'pa_writer', 'pa_reader']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE prefect   LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'prefect_password';
ALTER ROLE pa_writer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'writer_password';
ALTER ROLE pa_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT PASSWORD :'reader_password';

SELECT 'CREATE DATABASE prefect OWNER prefect'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'prefect') \gexec
SELECT 'CREATE DATABASE aggregates OWNER pa_writer'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'aggregates') \gexec

-- nobody connects anywhere by default; owners keep their rights, pa_reader gets CONNECT
-- on aggregates from readonly_role.sql below
REVOKE ALL ON DATABASE prefect FROM PUBLIC;
REVOKE ALL ON DATABASE aggregates FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
SQL

# pa_reader: CONNECT, USAGE and SELECT, default_transaction_read_only (the project's script)
run_psql --dbname aggregates --file "$READONLY_ROLE_SQL"

run_psql --dbname aggregates <<'SQL'
-- tables the pipeline (pa_writer) creates later are readable by pa_reader too
ALTER DEFAULT PRIVILEGES FOR ROLE pa_writer IN SCHEMA public GRANT SELECT ON TABLES TO pa_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE pa_writer IN SCHEMA public GRANT SELECT ON SEQUENCES TO pa_reader;
SQL

printf 'postgres init: databases prefect and aggregates, roles prefect, pa_writer, pa_reader ready\n'
