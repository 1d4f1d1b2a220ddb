#!/usr/bin/env bash
# Container entrypoint of the privacy-analytics image.
#
# Secrets arrive as files (Compose/Swarm/Kubernetes secrets under /run/secrets/), while the
# processes read environment variables (PA_*, PA_DASHBOARD_*, PREFECT_*, libpq's PGPASSWORD).
# For every variable NAME_FILE=/path whose NAME starts with PA_, PREFECT_ or PG, this script
# exports NAME=<content of /path> (trailing newlines removed) and unsets NAME_FILE, then
# execs the command. Setting both NAME and NAME_FILE is refused: one source per secret.
set -euo pipefail

die() {
    printf 'pa-entrypoint: %s\n' "$*" >&2
    exit 64
}

for file_var in $(compgen -e); do
    case "$file_var" in
        PA_*_FILE | PREFECT_*_FILE | PG*_FILE) ;;
        *) continue ;;
    esac
    name=${file_var%_FILE}
    path=${!file_var}
    if [[ -n "${!name:-}" ]]; then
        die "both $name and $file_var are set; set only one of them"
    fi
    if [[ ! -f "$path" || ! -r "$path" ]]; then
        die "$file_var=$path: no readable file there; check the secret is mounted"
    fi
    value=$(<"$path")
    if [[ -z "$value" ]]; then
        die "$file_var=$path: the file is empty"
    fi
    export "$name=$value"
    unset "$file_var"
done

if [[ $# -eq 0 ]]; then
    die "no command given"
fi
exec "$@"
