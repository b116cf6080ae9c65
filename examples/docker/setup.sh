#!/usr/bin/env bash
# Set up (or tear down) the Docker + HAProxy example on YOUR Docker engine:
#   examples/docker/setup.sh up             build the demo image, start HAProxy, run v1, add load
#   examples/docker/setup.sh up --offline   no registry: busybox rootfs + this host's Python mounted
#   examples/docker/setup.sh status | down
# Needs: a Docker engine (DOCKER_HOST or the local socket; Podman's socket works too), this
# project importable by $PYTHON (default python3) with the docker package, and HAProxy >= 2.4
# either on PATH or as the haproxy:2.8 image. Ports used on 127.0.0.1: 8080 8404 8101 8201.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN="$HERE/run"
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
tool() { "$PYTHON" -m collectors.docker_tool "$@"; }
say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

spec_file() { if [[ -f "$RUN/release.toml" ]]; then echo "$RUN/release.toml"; else echo "$HERE/release.toml"; fi; }

images_build() {
    say "building releasedeck-demo:v1 and :v2 from $HERE/Dockerfile"
    docker build -q -t releasedeck-demo:v1 -f "$HERE/Dockerfile" "$ROOT" >/dev/null
    docker tag releasedeck-demo:v1 releasedeck-demo:v2
}

images_offline() {
    # No registry: an image of busybox-static only; the host's Python, its packages and this
    # project are bind-mounted read-only, so the container runs exactly what runs here.
    local busybox rootfs info exe prefix base
    busybox=$(command -v busybox) || die "--offline needs busybox (Debian: busybox-static)"
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs"/{bin,usr/lib,usr/lib64,tmp,etc}
    cp "$busybox" "$rootfs/bin/busybox"
    for a in sh wget sleep cat; do ln -s busybox "$rootfs/bin/$a"; done
    ln -s usr/lib "$rootfs/lib"; ln -s usr/lib64 "$rootfs/lib64"; chmod 1777 "$rootfs/tmp"
    tar -C "$rootfs" -cf "$rootfs.tar" . && rm -rf "$rootfs"
    say "importing releasedeck-demo:offline (busybox rootfs)"
    docker import "$rootfs.tar" releasedeck-demo:offline >/dev/null && rm -f "$rootfs.tar"
    read -r exe prefix base < <("$PYTHON" -c 'import sys; print(sys.executable, sys.prefix, sys.base_prefix)')
    local vols="" p
    for p in /usr/lib /usr/lib64 "$base" "$prefix" "$ROOT"; do
        [[ -d "$p" ]] && vols+="\"$p\" = { bind = \"$p\", mode = \"ro\" }, "
    done
    # the same release with the offline image, host Python and a wget healthcheck
    sed -e 's|^image = .*|image = "releasedeck-demo:offline"|' \
        -e "s|^command = \\[\"python\"|command = [\"$exe\"|" \
        -e "s|^socket = .*|socket = \"$RUN/admin.sock\"|" \
        -e "s|^healthcheck = .*|healthcheck = { test = [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:{port}/healthz\"], interval = \"1s\", timeout = \"2s\", retries = 2 }\nenv = { PYTHONPATH = \"$ROOT\", PYTHONDONTWRITEBYTECODE = \"1\" }\nvolumes = { ${vols%, } }|" \
        "$HERE/release.toml" > "$RUN/release.toml"
}

haproxy_up() {
    sed "s|@RUN@|$RUN|g" "$HERE/haproxy.cfg" > "$RUN/haproxy.cfg"
    if command -v haproxy >/dev/null; then
        say "starting haproxy (host binary)"
        haproxy -f "$RUN/haproxy.cfg" -D -p "$RUN/haproxy.pid"
    else
        say "starting haproxy (haproxy:2.8 container, host network)"
        docker run -d --name releasedeck-example-haproxy --network host --user 0 \
            --label releasedeck.example=true -v "$RUN:$RUN" haproxy:2.8 \
            haproxy -f "$RUN/haproxy.cfg" -db >/dev/null
    fi
    for _ in $(seq 50); do [[ -S "$RUN/admin.sock" ]] && return 0; sleep 0.1; done
    die "haproxy did not open $RUN/admin.sock"
}

up() {
    docker version >/dev/null 2>&1 || die "no Docker engine reachable (DOCKER_HOST=${DOCKER_HOST:-unset}); start dockerd/podman or set DOCKER_HOST"
    "$PYTHON" -c 'import docker, collectors.docker_platform' 2>/dev/null \
        || die "$PYTHON cannot import the docker package and this project; set PYTHON to releasedeck's venv python"
    mkdir -p "$RUN"
    if [[ "${1:-}" == "--offline" ]]; then images_offline; else images_build; fi
    haproxy_up
    say "starting v1 (what runs today)"
    tool "$(spec_file)" scale v1 1
    say "sending load through http://127.0.0.1:8080 (log: $RUN/load.log)"
    nohup "$PYTHON" "$HERE/load.py" http://127.0.0.1:8080 --rate 50 >"$RUN/load.log" 2>&1 &
    echo $! > "$RUN/load.pid"
    cat <<DONE

Ready. Release v2 with:   releasedeck run $(spec_file)
Break the candidate:      curl -X POST -d '{"error_ratio": 0.5}' http://127.0.0.1:8201/control
See the containers:       PYTHONPATH=$ROOT $PYTHON -m collectors.docker_tool $(spec_file) status
Tear everything down:     $0 down
DONE
}

down() {
    [[ -f "$RUN/load.pid" ]] && kill "$(cat "$RUN/load.pid")" 2>/dev/null || true
    [[ -f "$RUN/haproxy.pid" ]] && kill "$(cat "$RUN/haproxy.pid")" 2>/dev/null || true
    docker rm -f releasedeck-example-haproxy >/dev/null 2>&1 || true
    if [[ -d "$RUN" || -f "$HERE/release.toml" ]]; then tool "$(spec_file)" cleanup || true; fi
    rm -rf "$RUN"
    say "removed the example's containers, haproxy, load and $RUN"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    status) tool "$(spec_file)" status ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
esac
