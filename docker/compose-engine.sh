#!/usr/bin/env bash
# Prepare a container engine that Docker Compose v2 can drive on a Debian host without Docker: podman (runc
# runtime, cgroupfs), its Docker-compatible API on a unix socket, and a debian:bookworm-slim base image made
# with debootstrap when no registry is reachable. Every step is idempotent and cached: a second run takes ~1 s.
#
#   docker/compose-engine.sh            # prepare (root: apt-get, /etc/containers), then print DOCKER_HOST=...
#   eval "$(docker/compose-engine.sh)"  # the same, exporting DOCKER_HOST for docker compose
#   docker/compose-engine.sh --stop     # stop the API service this script started
#
# Environment: COMPOSE_ENGINE_DIR (cache and socket, default /var/tmp/triton-pooling-engine), DEBIAN_MIRROR
# (default the Debian archive), BASE_IMAGE (default docker.io/library/debian:bookworm-slim).
# What it needs and why (verified on Debian 12 hosts with hybrid cgroups, docs/deployment.md): crun refuses
# hybrid cgroups, so runc; the default ulimits are not permitted in these sandboxes; no systemd, so cgroupfs.
set -euo pipefail

DIR=${COMPOSE_ENGINE_DIR:-/var/tmp/triton-pooling-engine}
SOCKET="$DIR/podman.sock"
BASE_IMAGE=${BASE_IMAGE:-docker.io/library/debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-}  # empty: debootstrap's own default archive
CONF=/etc/containers/containers.conf
log() { echo "[compose-engine] $*" >&2; }

podman_() { podman --runtime runc "$@"; }

stop_service() {
    if [[ -f "$DIR/ticker.pid" ]] && kill -0 "$(cat "$DIR/ticker.pid")" 2>/dev/null; then
        kill "$(cat "$DIR/ticker.pid")" && log "stopped the healthcheck ticker"
    fi
    rm -f "$DIR/ticker.pid"
    if [[ -f "$DIR/service.pid" ]] && kill -0 "$(cat "$DIR/service.pid")" 2>/dev/null; then
        kill "$(cat "$DIR/service.pid")" && log "stopped the podman API service (pid $(cat "$DIR/service.pid"))"
    fi
    rm -f "$DIR/service.pid" "$SOCKET"
}

if [[ "${1:-}" == "--stop" ]]; then
    stop_service
    exit 0
fi

mkdir -p "$DIR"

# 1. packages
missing=()
for pair in podman:podman runc:runc debootstrap:debootstrap curl:curl; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. engine settings (only the keys this host needs; an existing file is extended, not replaced)
if ! grep -qs '^# triton-pooling compose-engine' "$CONF"; then
    if [[ -s "$CONF" ]] && grep -qE '^\s*\[(containers|engine)\]' "$CONF"; then
        log "$CONF already has [containers]/[engine] tables: add default_ulimits = [] and cgroup_manager = \"cgroupfs\" by hand"
        exit 1
    fi
    mkdir -p "$(dirname "$CONF")"
    cat >>"$CONF" <<'EOF'
# triton-pooling compose-engine: no default ulimits (not permitted here), cgroupfs (no systemd), runc (crun
# refuses hybrid cgroups).
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
    log "wrote $CONF"
fi

# 3. the base image: pulled when a registry answers, else made with debootstrap (cached as a tarball)
if ! podman_ image exists "$BASE_IMAGE"; then
    if ! timeout 30 podman --runtime runc pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        tarball="$DIR/debian-bookworm-minbase.tar"
        if [[ ! -s "$tarball" ]]; then
            rootfs="$DIR/rootfs"
            rm -rf "$rootfs"
            log "no registry: debootstrap bookworm into $rootfs (~1 min)"
            debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" ${MIRROR:+"$MIRROR"} >"$DIR/debootstrap.log" 2>&1 \
                || { tail -20 "$DIR/debootstrap.log" >&2; exit 1; }
            # what the published bookworm-slim image does: no docs, man pages or locales, apt caches cleaned
            mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d" "$rootfs/etc/apt/apt.conf.d"
            printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
                'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
                'path-include /usr/share/locale/locale.alias' >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
            echo 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
                >"$rootfs/etc/apt/apt.conf.d/docker-clean"
            find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
            rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
            find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
            tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
            rm -rf "$rootfs"
        fi
        podman_ import -q "$tarball" "$BASE_IMAGE" >/dev/null
        log "imported $tarball as $BASE_IMAGE"
    fi
fi

# 4. the Docker-compatible API on a unix socket, kept running between calls
if ! curl -fsS --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; then
    stop_service
    log "starting podman system service on $SOCKET"
    nohup podman --runtime runc system service --time=0 "unix://$SOCKET" >"$DIR/service.log" 2>&1 &
    echo $! >"$DIR/service.pid"
    for _ in $(seq 100); do
        curl -fsS --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS --unix-socket "$SOCKET" http://d/_ping >/dev/null || { tail "$DIR/service.log" >&2; exit 1; }
fi
# 5. healthchecks: podman 4.3 schedules them with systemd timers; without systemd none ever runs ("unable to get
# systemd connection to add healthchecks"), a container stays "starting" and `depends_on: service_healthy` and
# `up --wait` wait forever. This loop runs each running container's own healthcheck (`podman healthcheck run`,
# which keeps the start period, retries and failing streak) every HEALTHCHECK_TICK_S seconds, as Docker would.
if ! { [[ -f "$DIR/ticker.pid" ]] && kill -0 "$(cat "$DIR/ticker.pid")" 2>/dev/null; }; then
    nohup bash -c '
        while sleep "${HEALTHCHECK_TICK_S:-3}"; do
            for id in $(podman ps -q --filter health=starting --filter health=healthy --filter health=unhealthy 2>/dev/null); do
                podman healthcheck run "$id" >/dev/null 2>&1 || true
            done
        done' >"$DIR/ticker.log" 2>&1 &
    echo $! >"$DIR/ticker.pid"
    log "started the healthcheck ticker (pid $(cat "$DIR/ticker.pid"))"
fi
echo "export DOCKER_HOST=unix://$SOCKET"
