#!/usr/bin/env bash
# Create the secret files infra/compose.yaml mounts, each with a fresh random value.
#
#   infra/secrets/generate.sh                   create the missing ones, keep existing ones
#   infra/secrets/generate.sh --rotate NAME...  replace the named ones (infra/README.md,
#                                               "Rotating secrets": what else to restart)
#
# Values are 64 hex characters: URL-safe (they end up in database URLs and mc arguments).
# The folder is 0700, so other users of the host cannot read it; the files are 0644 so the
# containers' unprivileged users can read their bind-mounted copies (Compose ignores
# uid/mode for file secrets).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

NAMES=(
    minio_root_password
    s3_pipeline_secret_key
    s3_uploader_secret_key
    postgres_password
    prefect_db_password
    store_writer_password
    store_reader_password
    pseudonym_key
    receiver_token
    dashboard_password
)

usage() {
    printf 'usage: %s [--rotate NAME...]\nnames: %s\n' "$0" "${NAMES[*]}" >&2
    exit 2
}

rotate=()
if [[ $# -gt 0 ]]; then
    [[ "$1" == --rotate && $# -gt 1 ]] || usage
    shift
    for name in "$@"; do
        [[ " ${NAMES[*]} " == *" $name "* ]] || usage
        rotate+=("$name")
    done
fi

random_hex() {
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

chmod 0700 .
umask 0022
if [[ ! -s minio_root_user ]]; then
    printf 'pa-admin\n' >minio_root_user
    printf 'created minio_root_user\n'
fi
for name in "${NAMES[@]}"; do
    if [[ -s "$name" && " ${rotate[*]} " != *" $name "* ]]; then
        continue
    fi
    tmp=$(mktemp "./.${name}.XXXXXX")
    printf '%s\n' "$(random_hex)" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$name"
    printf 'created %s\n' "$name"
done
