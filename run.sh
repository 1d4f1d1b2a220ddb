#!/usr/bin/env bash
# The project's entry point on a fresh machine.
#
#   ./run.sh up      install what is missing, then start the whole service (embedded default)
#   ./run.sh test    install what is missing (browser included), then lint, type-check and test
#   ./run.sh <args>  any other privacy-analytics command, e.g. ./run.sh demo
#
# Everything Python goes into ./.venv; Debian packages (chromium, chromium-driver) are
# installed with apt-get only when the tests need them and they are missing.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY=${PYTHON:-python3}

log() { printf '[run.sh] %s\n' "$*" >&2; }

ensure_venv() {
    local stamp="$VENV/.installed"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV with $($PY --version 2>&1)"
        "$PY" -m venv "$VENV"
    fi
    if [ ! -x "$VENV/bin/uv" ]; then
        "$VENV/bin/pip" install --quiet --disable-pip-version-check uv
    fi
    # Reinstall only when the dependency files changed since the last install.
    local want
    want=$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing Python packages into $VENV"
        "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" \
            -r requirements.lock -e ".[test]"
        echo "$want" > "$stamp"
    fi
}

ensure_browser() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return
    fi
    log "installing chromium and chromium-driver (Debian packages) for the browser tests"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
}

case "${1:-}" in
    up)
        shift
        ensure_venv
        exec "$VENV/bin/privacy-analytics" up "$@"
        ;;
    test)
        shift
        ensure_venv
        ensure_browser
        log "ruff"
        "$VENV/bin/ruff" check flows privacy analytics dashboard tests bench
        log "mypy (privacy/, analytics/)"
        "$VENV/bin/mypy" --no-error-summary
        log "pytest"
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    ""|-h|--help)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        ensure_venv
        exec "$VENV/bin/privacy-analytics" "$@"
        ;;
esac
