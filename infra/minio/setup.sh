#!/usr/bin/env bash
# One-shot MinIO set-up for privacy-analytics (the `minio-setup` service of infra/compose.yaml).
#
# Creates, idempotently (run it again after changing a secret or a policy):
#   1. the bucket (no anonymous access);
#   2. one policy and one user per component (see infra/minio/policies/README.md):
#        pa-pipeline  get/put/delete in landing/, quarantine/, masked/; list the bucket
#        pa-uploader  s3:PutObject on landing/* only
#      the dashboard gets no identity of its own;
#   3. the webhook target `notify_webhook:pa` -> the event receiver, with its bearer token;
#   4. the bucket notification: every object created under landing/ goes to that target.
#
# Only bash built-ins and `mc` are used (the mc image has no sed, grep or jq).
# Secrets are read from files; nothing secret is printed.
set -euo pipefail

: "${MINIO_URL:=http://minio:9000}"
: "${MINIO_ROOT_USER_FILE:=/run/secrets/minio_root_user}"
: "${MINIO_ROOT_PASSWORD_FILE:=/run/secrets/minio_root_password}"
: "${BUCKET:=privacy-analytics}"
: "${POLICY_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/policies}"
: "${PIPELINE_ACCESS_KEY:=pa-pipeline}"
: "${PIPELINE_SECRET_KEY_FILE:=/run/secrets/s3_pipeline_secret_key}"
: "${UPLOADER_ACCESS_KEY:=pa-uploader}"
: "${UPLOADER_SECRET_KEY_FILE:=/run/secrets/s3_uploader_secret_key}"
: "${RECEIVER_URL:=http://receiver:8765/minio/events}"
: "${RECEIVER_TOKEN_FILE:=/run/secrets/receiver_token}"
: "${WEBHOOK_QUEUE_DIR:=/events}"
: "${NOTIFY_ARN:=arn:minio:sqs::pa:webhook}"

ALIAS=pa
POLICY_BUCKET=privacy-analytics # the bucket name written in policies/*.json

log() { printf '[minio-setup] %s\n' "$*"; }
die() {
    printf '[minio-setup] error: %s\n' "$*" >&2
    exit 1
}

read_secret() {
    local path=$1 value
    [[ -f "$path" && -r "$path" ]] || die "secret file $path is missing or unreadable"
    value=$(<"$path")
    [[ -n "$value" ]] || die "secret file $path is empty"
    printf '%s' "$value"
}

# run an mc command that may fail with "already ..." on a second run
mc_idempotent() {
    local out
    if ! out=$(mc "$@" 2>&1); then
        if [[ "$out" == *already* ]]; then
            return 0
        fi
        printf '%s\n' "$out" >&2
        return 1
    fi
}

install_policy() {
    local name=$1 file=$2 rendered
    [[ -f "$file" ]] || die "policy file $file is missing"
    rendered=$(mktemp)
    local text
    text=$(<"$file")
    printf '%s\n' "${text//arn:aws:s3:::${POLICY_BUCKET}/arn:aws:s3:::${BUCKET}}" >"$rendered"
    mc admin policy create "$ALIAS" "$name" "$rendered" >/dev/null
    rm -f "$rendered"
    log "policy $name installed"
}

install_user() {
    local access_key=$1 secret_file=$2 policy=$3 secret
    secret=$(read_secret "$secret_file")
    ((${#secret} >= 8)) || die "secret in $secret_file is shorter than 8 characters (MinIO refuses it)"
    mc admin user add "$ALIAS" "$access_key" "$secret" >/dev/null
    mc_idempotent admin policy attach "$ALIAS" "$policy" --user "$access_key"
    log "user $access_key has policy $policy"
}

main() {
    local root_user root_password token out
    root_user=$(read_secret "$MINIO_ROOT_USER_FILE")
    root_password=$(read_secret "$MINIO_ROOT_PASSWORD_FILE")
    token=$(read_secret "$RECEIVER_TOKEN_FILE")

    mc alias set "$ALIAS" "$MINIO_URL" "$root_user" "$root_password" >/dev/null
    mc ready "$ALIAS" >/dev/null
    log "MinIO at $MINIO_URL is ready"

    mc mb --ignore-existing "$ALIAS/$BUCKET" >/dev/null
    mc anonymous set none "$ALIAS/$BUCKET" >/dev/null
    log "bucket $BUCKET exists, anonymous access off"

    install_policy pa-pipeline "$POLICY_DIR/pipeline.json"
    install_policy pa-uploader "$POLICY_DIR/uploader.json"
    install_user "$PIPELINE_ACCESS_KEY" "$PIPELINE_SECRET_KEY_FILE" pa-pipeline
    install_user "$UPLOADER_ACCESS_KEY" "$UPLOADER_SECRET_KEY_FILE" pa-uploader

    # the queue keeps undelivered events on MinIO's disk while the receiver is down
    out=$(mc admin config set "$ALIAS" notify_webhook:pa \
        endpoint="$RECEIVER_URL" auth_token="$token" \
        queue_dir="$WEBHOOK_QUEUE_DIR" queue_limit=100000 2>&1) || {
        printf '%s\n' "$out" >&2
        die "could not configure the webhook target $RECEIVER_URL"
    }
    if [[ "$out" == *restart* ]]; then
        log "MinIO asks for a restart to load the webhook target; restarting it"
        mc admin service restart "$ALIAS" >/dev/null
        mc ready "$ALIAS" >/dev/null
    fi
    log "webhook target notify_webhook:pa -> $RECEIVER_URL (bearer token set)"

    mc event add "$ALIAS/$BUCKET" "$NOTIFY_ARN" --event put --prefix landing/ --ignore-existing >/dev/null
    log "bucket notification: put under landing/ -> $NOTIFY_ARN"
    log "done"
}

main "$@"
