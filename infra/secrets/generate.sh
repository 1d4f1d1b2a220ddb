#!/usr/bin/env bash
# Create the secret files infra/compose.yaml mounts, each with a fresh random value.
#
#   infra/secrets/generate.sh                   create the missing ones, keep existing ones
#   infra/secrets/generate.sh --rotate NAME...  replace the named ones (infra/README.md,
#                                               "Rotating secrets": what else to restart)
#
# Values are 64 hex characters: URL-safe (they end up in database URLs and mc arguments).
# One exception: dashboard_users is the dashboard's users file (PA_DASHBOARD_USERS_FILE;
# docs/dashboard.md, "Users and roles"). It starts with one operator, `admin`, whose random
# password is printed once, here, and stored only as a PBKDF2 hash (this needs python3). Add
# people to it with `python -m dashboard hash-password`; `--rotate dashboard_users` replaces
# the whole file with a fresh `admin`.
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
    dashboard_users
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

# PBKDF2-HMAC-SHA256 of the password on stdin, as `python -m dashboard hash-password` makes it
hash_password() {
    python3 -c '
import base64, hashlib, os, sys
password = sys.stdin.readline().rstrip("\n").encode()
salt, n = os.urandom(16), 600000
digest = hashlib.pbkdf2_hmac("sha256", password, salt, n, 32)
b64 = lambda b: base64.b64encode(b).decode()
print(f"pbkdf2_sha256${n}${b64(salt)}${b64(digest)}")'
}

# the users file, on stdout: one operator `admin` who may upload to every dataset
users_file() {
    local password hash
    if ! command -v python3 >/dev/null; then
        printf 'dashboard_users: python3 is needed to hash a password; write the file by ' >&2
        printf 'hand (docs/dashboard.md, "Users and roles")\n' >&2
        return 1
    fi
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    hash=$(printf '%s\n' "$password" | hash_password) && [[ -n "$hash" ]] || return 1
    printf '%s\n' \
        '# The dashboard'"'"'s users (PA_DASHBOARD_USERS_FILE; docs/dashboard.md, "Users and roles").' \
        '# Add people with a hash from `python -m dashboard hash-password`, then run' \
        '# `docker compose up -d --force-recreate dashboard`.' \
        'users:' \
        '  - name: admin' \
        '    role: operator' \
        "    password_hash: $hash" \
        '    upload_datasets: "*"'
    printf 'dashboard user admin (operator): password %s (shown only now; keep it)\n' \
        "$password" >&2
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
    if [[ "$name" == dashboard_users ]]; then
        if ! users_file 2>&1 >"$tmp"; then
            rm -f "$tmp"
            exit 1
        fi
    else
        printf '%s\n' "$(random_hex)" >"$tmp"
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$name"
    printf 'created %s\n' "$name"
done
