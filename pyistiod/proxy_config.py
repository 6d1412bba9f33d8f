"""``pyistiod proxy-config``: istioctl's tables of what one proxy is served.

Reads ``/debug/config_dump?proxyID=`` from the monitoring port (what pyistiod
serves that proxy now, per type) and ``/debug/syncz`` (which proxies are
connected, and whether this one ACKed its secrets), and prints istioctl's
columns, derived from the resources alone:

- clusters: SERVICE FQDN, PORT, SUBSET, DIRECTION (from Istio's cluster name
  ``direction|port|subset|fqdn``), TYPE, DESTINATION RULE (Istio's
  ``filter_metadata.istio.config``, ``-`` when the cluster carries none);
- listeners: ADDRESS, PORT, and per filter chain its MATCH and DESTINATION;
- routes: per RDS route: NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE;
- endpoints: ENDPOINT, STATUS (the health pyistiod sent), OUTLIER CHECK (``-``:
  Envoy's outlier state is Envoy's, pyistiod never sees it), CLUSTER; EDS
  assignments and clusters' inline ones;
- secrets: RESOURCE NAME, TYPE, STATUS (from ``/debug/syncz``: ACTIVE once the
  proxy ACKed its SDS version, WARMING before, NACKED), VALID CERT, SERIAL
  NUMBER, NOT AFTER, NOT BEFORE; read from the certificates, never a key (the
  config dump holds none: ``debug_views`` redacts them).

The row functions are pure: config-dump JSON in, rows out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pyistiod.proxy_status import NotFound, columns, get_json, state

KINDS: Mapping[str, str] = {
    "clusters": "cds",
    "listeners": "lds",
    "routes": "rds",
    "endpoints": "eds",
    "secrets": "sds",
}
"""Each kind ``proxy-config`` shows and the config dump's type it reads."""

HEADERS: Mapping[str, tuple[str, ...]] = {
    "clusters": ("SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"),
    "listeners": ("ADDRESS", "PORT", "MATCH", "DESTINATION"),
    "routes": ("NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"),
    "endpoints": ("ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"),
    "secrets": (
        "RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE",
    ),
}  # fmt: skip

Row = list[str]
Json = Mapping[str, Any]

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
_ALPN_NAMES = {
    # istioctl's names for Istio's ALPN sets
    ("http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "HTTP TLS",
    ("istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"): "Istio HTTP Plain",
    ("istio-peer-exchange", "istio"): "TCP TLS",
    ("http/1.0", "http/1.1", "h2c"): "HTTP",
}


class UnknownProxy(LookupError):
    """No connected proxy (or more than one) answers to the name given; says which are."""


def resolve(proxy: str, connected: Iterable[str]) -> str:
    """The node ID ``proxy`` names: the ID itself, or istioctl's ``pod.namespace`` (``pod``
    alone: namespace ``default``). ``UnknownProxy`` saying which proxies are there when
    none or several match."""
    ids = sorted(set(connected))
    if proxy in ids:
        return proxy
    wanted = proxy if "." in proxy else f"{proxy}.default"
    found = [i for i in ids if _pod_namespace(i) == wanted]
    if len(found) == 1:
        return found[0]
    if found:
        raise UnknownProxy(
            f"{proxy!r} matches {len(found)} proxies: {', '.join(found)}; give the full node ID"
        )
    there = ", ".join(sorted({_pod_namespace(i) or i for i in ids})) or "none"
    raise UnknownProxy(f"no connected proxy is {proxy!r}; connected: {there}")


def _pod_namespace(node_id: str) -> str:
    """The ``POD.NS`` part of ``TYPE~IP~POD.NS~DOMAIN`` ("" for another shape)."""
    parts = node_id.split("~")
    return parts[2] if len(parts) == 4 else ""


def cluster_rows(clusters: Sequence[Json]) -> list[Row]:
    """One row per cluster, sorted as istioctl sorts them (FQDN, subset, port, direction)."""
    rows = []
    for c in clusters:
        parts = str(c.get("name", "")).split("|")
        kind = c.get("type") or c.get("clusterType", {}).get("name") or "STATIC"
        config = _management(c)
        if len(parts) == 4:
            direction, port, subset, fqdn = parts
            rows.append([fqdn, port, subset or "-", direction, kind, config])
        else:
            rows.append([str(c.get("name", "")), "-", "-", "-", kind, config])
    return sorted(rows, key=lambda r: (r[0], r[2], _number(r[1]), r[3]))


def _management(resource: Json) -> str:
    """istioctl's DESTINATION RULE / VIRTUAL SERVICE: ``name.namespace`` from Istio's
    ``filter_metadata.istio.config`` (``/apis/networking.istio.io/v1alpha3/namespaces/
    NS/destination-rule/NAME``); ``-`` when the resource says nothing."""
    config = resource.get("metadata", {}).get("filterMetadata", {}).get("istio", {}).get("config")
    if not isinstance(config, str):
        return "-"
    pieces = config.split("/")
    if config.startswith("/apis/networking.istio.io/") and len(pieces) == 8:
        return f"{pieces[7]}.{pieces[5]}"
    return "<unknown>"


def _number(text: str) -> int:
    return int(text) if text.isdigit() else -1


def listener_rows(listeners: Sequence[Json]) -> list[Row]:
    """One row per filter chain (the default one last), listeners sorted by port, address."""
    rows = []
    for listener in listeners:
        socket = listener.get("address", {}).get("socketAddress", {})
        address, port = str(socket.get("address", "")), str(socket.get("portValue", 0))
        chains = list(listener.get("filterChains", []))
        if "defaultFilterChain" in listener:
            chains.append(listener["defaultFilterChain"])
        for chain in chains or [{}]:
            rows.append([address, port, _chain_match(chain), _destination(chain)])
    return sorted(rows, key=lambda r: (int(r[1]), r[0]))


def _chain_match(chain: Json) -> str:
    """istioctl's MATCH: SNI, transport, application protocols, addresses; ``ALL``."""
    match = chain.get("filterChainMatch", {})
    said = []
    if match.get("serverNames"):
        said.append(f"SNI: {','.join(match['serverNames'])}")
    if match.get("transportProtocol"):
        said.append(f"Trans: {match['transportProtocol']}")
    alpn = tuple(match.get("applicationProtocols", ()))
    if alpn:
        said.append(f"App: {_ALPN_NAMES.get(alpn, ','.join(alpn))}")
    port = f":{match['destinationPort']}" if "destinationPort" in match else ""
    ranges = [f"{r.get('addressPrefix', '')}/{r.get('prefixLen', 0)}"
              for r in match.get("prefixRanges", [])]  # fmt: skip
    if ranges or port:
        said.append(f"Addr: {','.join(ranges) or '*'}{port}")
    return "; ".join(said) or "ALL"


def _destination(chain: Json) -> str:
    """istioctl's DESTINATION: the route (RDS or inline) or the TCP cluster a chain ends in."""
    for f in chain.get("filters", []):
        config = f.get("typedConfig", {})
        if f.get("name") == HCM:
            if "rds" in config:
                return f"Route: {config['rds'].get('routeConfigName', '')}"
            if "routeConfig" in config:
                return f"Inline Route: {_inline_route(config['routeConfig'])}"
            return "HTTP"
        if f.get("name") == TCP_PROXY:
            if "cluster" in config:
                cluster = str(config["cluster"])
                return cluster if "Cluster" in cluster else f"Cluster: {cluster}"
            weighted = config.get("weightedClusters", {}).get("clusters", [])
            return f"Clusters: {','.join(str(w.get('name', '')) for w in weighted)}"
    return "Non-HTTP/Non-TCP"


def _inline_route(route_config: Json) -> str:
    described = []
    for vhost in route_config.get("virtualHosts", []):
        domains = vhost.get("domains", [])
        matches = ", ".join(_route_match(r.get("match", {})) for r in vhost.get("routes", []))
        described.append(matches if domains == ["*"] else f"{'/'.join(domains)} {matches}")
    return "; ".join(described)


def _route_match(match: Json) -> str:
    """istioctl's MATCH of a route: ``prefix*``, the path, or the regex (headers left out)."""
    said = []
    for key in ("prefix", "pathSeparatedPrefix"):
        if key in match:
            said.append(f"{match[key]}*")
    if "path" in match:
        said.append(str(match["path"]))
    if "safeRegex" in match:
        said.append(f"regex {match['safeRegex'].get('regex', '')}")
    return " ".join(said) or "/*"


def route_rows(route_configs: Sequence[Json]) -> list[Row]:
    """One row per route of every virtual host (``/*`` and 404 for a host without routes)."""
    rows = []
    ordered = sorted(route_configs, key=lambda rc: (_number(str(rc.get("name", ""))),
                                                     str(rc.get("name", ""))))  # fmt: skip
    for rc in ordered:
        for vhost in rc.get("virtualHosts", []):
            head = [str(rc.get("name", "")), str(vhost.get("name", "")),
                    _domains(vhost.get("domains", []))]  # fmt: skip
            routes = [r for r in vhost.get("routes", []) if not _passthrough(r)]
            rows += [[*head, _route_match(r.get("match", {})), _management(r)] for r in routes]
            if not vhost.get("routes"):
                rows.append([*head, "/*", "404"])
    return rows


def _domains(domains: Sequence[str], shown: int = 2) -> str:
    """istioctl's DOMAINS: without ports and the longer forms of a short name, two at most."""
    if len(domains) <= 1:
        return domains[0] if domains else ""
    bare = [d for d in domains if ":" not in d or (d.count(":") > 2 and d.endswith("]"))]
    present = set(bare)
    kept = [
        d for d in bare
        if not any(d != s and s in present
                   for s in (d.removesuffix(".svc.cluster.local"), d.removesuffix(".svc")))
    ]  # fmt: skip
    if len(kept) > shown:
        return f"{', '.join(kept[:shown])} + {len(kept) - shown} more..."
    return ", ".join(kept)


def _passthrough(route: Json) -> bool:
    return bool(route.get("route", {}).get("cluster") == "PassthroughCluster")


def endpoint_rows(assignments: Sequence[Json], clusters: Sequence[Json] = ()) -> list[Row]:
    """One row per endpoint of every EDS assignment and every cluster's inline one."""
    inline = [{**c["loadAssignment"], "clusterName": c.get("name", "")}
              for c in clusters if "loadAssignment" in c]  # fmt: skip
    rows = []
    for cla in [*assignments, *inline]:
        for locality in cla.get("endpoints", []):
            for lb in locality.get("lbEndpoints", []):
                address = lb.get("endpoint", {}).get("address", {})
                rows.append([_address(address), _health(lb), "-", str(cla.get("clusterName", ""))])
    return sorted(rows, key=lambda r: (r[0], r[3]))


def _address(address: Json) -> str:
    if "socketAddress" in address:
        s = address["socketAddress"]
        return f"{s.get('address', '')}:{s.get('portValue', s.get('namedPort', 0))}"
    if "pipe" in address:
        return f"unix://{address['pipe'].get('path', '')}"
    if "envoyInternalAddress" in address:
        return f"envoy://{address['envoyInternalAddress'].get('serverListenerName', '')}"
    return "-"


def _health(lb_endpoint: Json) -> str:
    """The health pyistiod sent: Envoy counts UNKNOWN (the default) as healthy."""
    status = str(lb_endpoint.get("healthStatus", "UNKNOWN"))
    return "HEALTHY" if status in ("UNKNOWN", "HEALTHY") else status


def secret_rows(secrets: Sequence[Json], now: datetime, status: str = "ACTIVE") -> list[Row]:
    """One row for a secret's leaf certificate, one per root of a validation context."""
    from base64 import b64decode

    from cryptography import x509

    rows = []
    for secret in secrets:
        name = str(secret.get("name", ""))
        chain = secret.get("tlsCertificate", {}).get("certificateChain")
        roots = secret.get("validationContext", {}).get("trustedCa")
        for kind, source in (("Cert Chain", chain), ("CA", roots)):
            if source is None:
                continue
            if "inlineString" in source:
                pem = str(source["inlineString"]).encode()
            else:
                pem = b64decode(source.get("inlineBytes", ""))
            certs = x509.load_pem_x509_certificates(pem) if pem else []
            for cert in certs[:1] if kind == "Cert Chain" else certs:
                rows.append([name, kind, status, *_validity(cert, now)])
            if not certs:
                rows.append([name, kind, status, "false", "-", "-", "-"])
    return rows


def _validity(cert: Any, now: datetime) -> Row:
    """VALID CERT, SERIAL NUMBER (hex, as Envoy's /certs), NOT AFTER, NOT BEFORE."""
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    valid = before <= now <= after
    shown = "%Y-%m-%dT%H:%M:%SZ"
    return [str(valid).lower(), f"{cert.serial_number:x}",
            after.strftime(shown), before.strftime(shown)]  # fmt: skip


SECRET_STATUS = {"SYNCED": "ACTIVE", "STALE": "WARMING", "NACKED": "NACKED"}
"""istioctl's secret STATUS for a proxy-status state of its SDS type."""


def rows(kind: str, dump: Json, sync: Json | None, now: datetime) -> list[Row]:
    """The table rows of ``kind`` from a proxy's config dump (and its ``/debug/syncz`` entry)."""
    configs = dump.get("configs", {})

    def of(short: str) -> list[Json]:
        return list(configs.get(short, {}).get("resources", []))

    if kind == "clusters":
        return cluster_rows(of("cds"))
    if kind == "listeners":
        return listener_rows(of("lds"))
    if kind == "routes":
        return route_rows(of("rds"))
    if kind == "endpoints":
        return endpoint_rows(of("eds"), of("cds"))
    sds = state((sync or {}).get("types", {}).get("sds"))
    return secret_rows(of("sds"), now, SECRET_STATUS.get(sds, sds))


def show(monitoring_address: str, kind: str, proxy: str, output: str, now: datetime) -> str:
    """What ``pyistiod proxy-config KIND PROXY`` prints: the table, or (``json``) the raw
    resources of that type. ``OSError`` (pyistiod unreachable) or ``UnknownProxy``, each
    saying why in one line."""
    connected = get_json(monitoring_address, "/debug/syncz")
    node_id = resolve(proxy, (str(p["proxy"]) for p in connected))
    try:
        dump = get_json(monitoring_address, f"/debug/config_dump?proxyID={quote(node_id)}")
    except NotFound:
        raise UnknownProxy(f"proxy {node_id} disconnected from pyistiod") from None
    if output == "json":
        resources = dump.get("configs", {}).get(KINDS[kind], {}).get("resources", [])
        return json.dumps(resources, indent=2)
    sync = next((p for p in connected if p["proxy"] == node_id and "sds" in p["types"]), None)
    return columns([list(HEADERS[kind]), *rows(kind, dump, sync, now)])
