#!/usr/bin/env bash
# One pod of the docker-compose demo: the echo app and its Envoy sidecar, or (PROXY_TYPE=router,
# no APP_PORT) an ingress gateway's Envoy alone. Every container shares the host's network, and
# each pod binds the loopback addresses of pyistiod's address plan
# (translators/mesh/model/loopback.py): the sidecar its pod IP 127.0.X.Y (inbound listeners and
# admin port 15000), the app 127.1.X.Y, the sidecar's outbound listeners 127.2.X.Y.
#
# Environment:
#   POD_NAME, POD_IP     the Pod of the config directory this container plays (required)
#   POD_NAMESPACE        default "default"
#   PROXY_TYPE           sidecar (default) or router (a gateway)
#   APP_PORT             the app's HTTP port; unset: no app (a gateway)
#   APP_TCP_PORT         the app's line-echo TCP port, if any
#   APP_CALLS            HOST:PORT[,HOST:PORT...] the app calls through its sidecar per request
#   CONFIG_DIR           pyistiod's config directory (default /config): the Pod's labels and
#                        service account come from there
#   CA_DIR               pyistiod's CA directory (default /var/lib/pyistiod/ca): the
#                        workload's token is minted from it
#   XDS_ADDRESS          pyistiod's TLS xDS (default 127.0.0.1:15012)
#   READY_URL            pyistiod's readiness (default http://127.0.0.1:15014/ready)
#   READY_TIMEOUT        seconds to wait for it (default 120)
set -euo pipefail
: "${POD_NAME:?POD_NAME is required}" "${POD_IP:?POD_IP is required}"
namespace="${POD_NAMESPACE:-default}"
proxy_type="${PROXY_TYPE:-sidecar}"
config_dir="${CONFIG_DIR:-/config}"
ca_dir="${CA_DIR:-/var/lib/pyistiod/ca}"
case "$POD_IP" in
    127.0.*.*) host_part="${POD_IP#127.0.}" ;;
    *) echo "pod.sh: POD_IP $POD_IP is not in 127.0.0.0/16 (the loopback address plan)" >&2; exit 2 ;;
esac

# pyistiod creates its CA on start; it answers /ready once the CA exists and xDS serves.
python3 - "${READY_URL:-http://127.0.0.1:15014/ready}" "${READY_TIMEOUT:-120}" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"pod.sh: pyistiod not ready at {url} after {sys.argv[2]} s")
    time.sleep(0.5)
PY

bootstrap="$(mktemp /tmp/envoy-XXXXXX.yaml)"
pyistiod bootstrap \
    --node-id "$proxy_type~$POD_IP~$POD_NAME.$namespace~$namespace.svc.cluster.local" \
    --ca-dir "$ca_dir" --xds-address "${XDS_ADDRESS:-127.0.0.1:15012}" \
    --config-dir "$config_dir" >"$bootstrap"

pids=()
if [ -n "${APP_PORT:-}" ]; then
    app=(python3 -m pyistiod.echo_app --pod "$POD_NAME" --address "127.1.$host_part"
         --port "$APP_PORT" --outbound "127.2.$host_part")
    [ -n "${APP_TCP_PORT:-}" ] && app+=(--tcp-port "$APP_TCP_PORT")
    [ -n "${APP_CALLS:-}" ] && app+=(--calls "$APP_CALLS")
    "${app[@]}" &
    pids+=($!)
fi
# The sidecar flags of pyistiod.local_mesh.ENVOY_FLAGS: a changed listener drains in 2 s.
envoy -c "$bootstrap" --disable-hot-restart --concurrency 1 --log-level warn \
    --drain-time-s 2 --drain-strategy immediate &
pids+=($!)

# The pod ends when either process ends (or on SIGTERM from `docker compose down`), taking the
# other with it, so a crashed app shows as an exited container rather than a half pod.
stopping=""
trap 'stopping=1; kill "${pids[@]}" 2>/dev/null || true' TERM INT
status=0
wait -n "${pids[@]}" || status=$?
kill "${pids[@]}" 2>/dev/null || true
wait || true
[ -n "$stopping" ] && exit 0  # asked to stop: a clean exit
exit "$status"
