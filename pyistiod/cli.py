"""The ``pyistiod`` command: serve, validate, analyze, bootstrap, proxy-status, proxy-config,
demo."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from ca.errors import CAError
from ca.spiffe import SpiffeId, validate_trust_domain
from ca.storage import PLUGIN_CA_CERT, ROOT_CERT
from pyistiod import logging_setup
from pyistiod.analysis_report import Lines, analysis_findings, at_least, findings, render
from pyistiod.credentials import kubernetes_xds_tls, projected_xds_tls, workload_xds_tls
from pyistiod.settings import Settings, host_port
from translators.envoy.bootstrap import render_bootstrap
from translators.envoy.listeners.sidecar import listener_conflicts
from translators.mesh.analysis import Level
from translators.mesh.documents.fields import is_label_key
from translators.mesh.model.proxy import parse_node_id
from translators.mesh.model.services import Workload
from translators.sources.files import read_dir, skipped_warning
from translators.sources.loader import LoadResult, load
from xds_server.errors import ConfigInvalid, SourceUnavailable

EXAMPLE_MESH = Path(__file__).parent / "examples" / "mesh"
DEFAULT_CA_DIR = ".pyistiod/ca"
"""Where ``serve`` keeps its CA, and where ``bootstrap`` mints tokens from, unless told."""


def _now() -> datetime:
    return datetime.now(UTC)


def _serve(a: argparse.Namespace) -> int:
    from pyistiod.serve import run

    logging_setup.configure(a.log_level)
    if not a.config_dir and not a.kubeconfig and not a.in_cluster:
        print("pyistiod: serve needs --config-dir, --kubeconfig or --in-cluster", file=sys.stderr)
        return 2
    settings = Settings(
        config_dir=Path(a.config_dir) if a.config_dir else None,
        kubeconfig=Path(a.kubeconfig) if a.kubeconfig else None,
        in_cluster=a.in_cluster,
        webhook_address=a.webhook_address,
        system_namespace=a.system_namespace,
        discovery_selectors=tuple(a.discovery_selector),
        xds_address=a.xds_address,
        secure_xds_address=a.secure_xds_address,
        monitoring_address=a.monitoring_address,
        debounce_after=a.debounce_after,
        debounce_max=a.debounce_max,
        ca_dir=Path(a.ca_dir),
        trust_domain=a.trust_domain,
        workload_cert_ttl=a.workload_cert_ttl,
        push_concurrency=a.push_concurrency,
        connection_rate=a.connection_rate,
        allow_empty_config=a.allow_empty_config,
    )
    try:
        run(settings)
    except (ConfigInvalid, CAError, SourceUnavailable, OSError) as err:
        print(f"pyistiod: refusing to start: {err}", file=sys.stderr)
        return 1
    return 0


def address(text: str) -> str:
    """``HOST:PORT``, or "" (disabled)."""
    if text:
        try:
            host_port(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    return text


def trust_domain(text: str) -> str:
    """A SPIFFE trust domain (``cluster.local``)."""
    try:
        validate_trust_domain(text)
    except CAError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


def duration(text: str) -> timedelta:
    """A Go-style duration (``24h``, ``90s``, ``1h30m``, ``500ms``) or plain seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 24h, 90s, 1h30m): {text!r}")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


def _read(config_dir: str) -> tuple[LoadResult, Lines] | None:
    """The directory's documents loaded, with their lines; None (and one line said) if the
    directory does not exist."""
    try:
        documents = read_dir(Path(config_dir))
    except ConfigInvalid as invalid:
        print(f"pyistiod: {invalid.errors[0]}", file=sys.stderr)
        return None
    return load([documents]), documents.lines


def _validate(a: argparse.Namespace) -> int:
    read = _read(a.config_dir)
    if read is None:
        return 1
    result, lines = read
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr)
    unsupported = [s for s in result.skipped if s.is_mesh_config]
    for s in unsupported:
        print(f"error: {s.describe()}: {s.api_version}/{s.kind} is not supported by "
              "pyistiod; skipped, not applied", file=sys.stderr)  # fmt: skip
    said = {skipped_warning(s) for s in unsupported}
    for warning in [*result.warnings, *listener_conflicts(result.model)]:
        if warning not in said:
            print(f"warning: {warning}", file=sys.stderr)
    for finding in analysis_findings(result, lines):
        print(finding.line(), file=sys.stderr)
    if result.refusals or unsupported:
        print(
            f"{len(result.refusals)} object(s) refused, each alone; {len(unsupported)} of a "
            f"kind pyistiod does not support; {result.objects} object(s) would be served",
            file=sys.stderr,
        )
        return 1
    print(
        f"ok: {result.files} file(s), {result.objects} object(s), "
        f"{len(result.model.services)} service(s)"
    )
    return 0


ANALYZE_FOUND_ISSUES = 79
"""``istioctl analyze``'s exit code when a message reaches the failure threshold; used in every
output format (istioctl exits 0 with ``-o json``/``yaml``), so a script's answer does not
depend on the format it reads."""


def _analyze(a: argparse.Namespace) -> int:
    read = _read(a.config_dir)
    if read is None:
        return 1
    found = findings(*read)
    shown = at_least(found, a.output_threshold)
    if shown:
        print(render(shown, a.output))
    else:
        print(f"\u2714 No validation issues found when analyzing {a.config_dir}.", file=sys.stderr)
    if at_least(found, a.failure_threshold):
        print(
            f"Error: Analyzers found issues when analyzing {a.config_dir}.\n"
            "See https://istio.io/latest/docs/reference/config/analysis for more information "
            "about causes and resolutions.",
            file=sys.stderr,
        )
        return ANALYZE_FOUND_ISSUES
    return 0


def _level(text: str) -> Level:
    """An analysis level, case-insensitive: Info, Warning or Error."""
    try:
        return Level[text.upper()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"invalid level option {text!r}") from None


def _selector(text: str) -> str:
    """A label selector, checked now so a typo is one line at start, not a failed watch."""
    from translators.sources.kubernetes.selectors import parse_selector

    try:
        parse_selector(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


def _labels(text: str) -> dict[str, str]:
    pairs = [kv.split("=", 1) for kv in text.split(",") if kv]
    if any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(f"labels must be k=v,k=v: {text!r}")
    for key, _ in pairs:
        if not key or not is_label_key(key):
            raise argparse.ArgumentTypeError(f"not a label key: {key!r} (in {text!r})")
    return dict((k, v) for k, v in pairs)


def _port(text: str) -> int:
    """A TCP port, 1-65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port 1-65535: {text!r}")
    return int(text)


def _bootstrap(a: argparse.Namespace) -> int:
    try:
        node = parse_node_id(a.node_id)
    except ValueError as err:
        print(f"pyistiod: {err}", file=sys.stderr)
        return 2
    labels, service_account = a.labels, a.service_account
    if a.config_dir:
        workload = _workload(Path(a.config_dir), node.namespace, node.pod_name)
        if isinstance(workload, int):
            return workload
        if workload is not None:
            labels = labels if labels is not None else dict(sorted(workload.labels))
            service_account = service_account or workload.service_account
    tls = None
    try:
        identity = SpiffeId(a.trust_domain, node.namespace, service_account or "default")
    except CAError as err:
        print(f"pyistiod: {err}", file=sys.stderr)
        return 2
    modes = [f for f, on in (("--plaintext", a.plaintext), ("--ca-dir", a.ca_dir),
             ("--token-file", a.token_file), ("--kubeconfig", a.kubeconfig)) if on]  # fmt: skip
    if len(modes) > 1:
        print(f"pyistiod: {' and '.join(modes)} exclude each other: give one", file=sys.stderr)
        return 2
    if a.token_file:
        try:
            tls = projected_xds_tls(Path(a.token_file), Path(a.root_cert))
        except (OSError, ValueError, CAError) as err:
            print(f"pyistiod: {err}", file=sys.stderr)
            return 1
    elif a.kubeconfig:
        from kubernetes_asyncio.client.exceptions import ApiException  # a slow import

        try:
            tls = asyncio.run(
                kubernetes_xds_tls(identity, a.token_ttl, Path(a.kubeconfig), a.system_namespace)
            )
        except (ApiException, OSError, ValueError, CAError, SourceUnavailable) as err:
            print(f"pyistiod: cannot get a token for {identity}: {err}", file=sys.stderr)
            return 1
    elif not a.plaintext:
        ca_dir = Path(a.ca_dir or DEFAULT_CA_DIR)
        if problem := _ca_problem(ca_dir):
            print(f"pyistiod: {problem}; or --plaintext, without certificates", file=sys.stderr)
            return 1
        tls = workload_xds_tls(ca_dir, identity, _now(), a.token_ttl)
    else:
        print(
            "pyistiod: warning: --plaintext: plain-text xDS gets no certificates, so this "
            "proxy's mesh traffic is plain text and ports that require mTLS refuse it",
            file=sys.stderr,
        )
    plain, tls_port = "127.0.0.1:15010", "127.0.0.1:15012"
    host, port = host_port(a.xds_address or (plain if a.plaintext else tls_port))
    doc = render_bootstrap(
        a.node_id,
        host,
        port,
        a.admin_port,
        labels=labels or {},
        namespace=node.namespace,
        service_account=service_account or "default",
        pod_name=node.pod_name,
        tls=tls,
    )
    sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
    return 0


def _workload(config_dir: Path, namespace: str, pod: str) -> Workload | int | None:
    """The Pod (or WorkloadEntry) ``namespace/pod`` of ``config_dir``; None, with a warning,
    if it holds none; 1 (said in one line) if the directory does not exist."""
    read = _read(str(config_dir))
    if read is None:
        return 1
    result = read[0]
    if result.refusals:
        print(
            f"pyistiod: warning: {len(result.refusals)} object(s) of {config_dir} refused "
            f"(pyistiod validate {config_dir} says why)",
            file=sys.stderr,
        )
    workload = result.model.workload(namespace, pod)
    if workload is None:
        print(
            f"pyistiod: warning: no Pod {namespace}/{pod} in {config_dir}: the bootstrap has "
            "only the labels and service account given as flags",
            file=sys.stderr,
        )
    return workload


def _ca_problem(ca_dir: Path) -> str | None:
    """Why ``ca_dir`` holds no CA to mint a token from, or None: a typo must not create a
    new root that the proxy's control plane never heard of."""
    if not ca_dir.is_dir():
        kind = "not a directory" if ca_dir.exists() else "no such directory"
        return f"--ca-dir {ca_dir}: {kind}; give the --ca-dir pyistiod serve uses"
    if not any((ca_dir / name).exists() for name in (ROOT_CERT, PLUGIN_CA_CERT)):
        return (
            f"--ca-dir {ca_dir} holds no CA ({ROOT_CERT} or {PLUGIN_CA_CERT}); "
            f"pyistiod serve --ca-dir {ca_dir} creates one on its first start"
        )
    return None


def _proxy_status(a: argparse.Namespace) -> int:
    from pyistiod.proxy_status import fetch, table

    try:
        proxies = fetch(a.monitoring_address)
    except OSError as err:
        print(f"pyistiod: {err}", file=sys.stderr)
        return 1
    print(table(proxies))
    return 0


def _proxy_config(a: argparse.Namespace) -> int:
    from pyistiod.proxy_config import UnknownProxy, show

    try:
        print(show(a.monitoring_address, a.kind, a.proxy, a.output, datetime.now(UTC)))
    except (OSError, UnknownProxy) as err:
        print(f"pyistiod: {err}", file=sys.stderr)
        return 1
    return 0


PROXY_CONFIG_KINDS = {
    # kind: (istioctl's aliases, help)
    "clusters": (["cluster", "c"], "SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE"),
    "listeners": (["listener", "l"], "ADDRESS, PORT, MATCH, DESTINATION per filter chain"),
    "routes": (["route", "r"], "NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE"),
    "endpoints": (["endpoint", "ep"], "ENDPOINT, STATUS, OUTLIER CHECK, CLUSTER"),
    "secrets": (["secret", "s"], "the workload certificate and roots: serial, validity (no key)"),
}


def _proxy_config_args(pc: argparse.ArgumentParser) -> None:
    kinds = pc.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, (aliases, shown) in PROXY_CONFIG_KINDS.items():
        k = kinds.add_parser(
            kind,
            aliases=aliases,
            help=shown,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        k.add_argument(
            "proxy",
            metavar="PROXY",
            help="the node ID, or istioctl's POD.NAMESPACE (POD alone: namespace default)",
        )
        k.add_argument(
            "--monitoring-address",
            default="127.0.0.1:15014",
            type=address,
            help="pyistiod's monitoring port",
        )
        k.add_argument(
            "-o",
            "--output",
            choices=("short", "json"),
            default="short",
            help="short: istioctl's table; json: the resources pyistiod serves",
        )
        k.set_defaults(func=_proxy_config, kind=kind)


def _demo(a: argparse.Namespace) -> int:
    from pyistiod.demo import run_demo

    return run_demo(duration=a.duration, workdir=Path(a.workdir), reset=a.reset)


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="pyistiod", description="An istiod clone in Python.")
    sub = p.add_subparsers(dest="command", required=True)
    _serve_args(
        sub.add_parser("serve", help="serve xDS to Envoy from a config directory and/or Kubernetes")
    )
    v = sub.add_parser(
        "validate", help="check a config directory; non-zero exit if any object is refused"
    )
    v.add_argument("config_dir")
    v.set_defaults(func=_validate)
    an = sub.add_parser(
        "analyze",
        help="report what istioctl analyze would (Istio's codes); exit 79 on errors",
    )
    an.add_argument("config_dir")
    an.add_argument("-o", "--output", choices=("log", "json", "yaml"), default="log")
    an.add_argument("--failure-threshold", type=_level, default=Level.ERROR,
                    help="the level that makes the exit code 79 (default Error)")  # fmt: skip
    an.add_argument("--output-threshold", type=_level, default=Level.INFO,
                    help="the lowest level printed (default Info)")  # fmt: skip
    an.set_defaults(func=_analyze)
    _bootstrap_args(
        sub.add_parser("bootstrap", help="print an Envoy bootstrap that connects to pyistiod")
    )
    ps = sub.add_parser(
        "proxy-status", help="every connected proxy and whether it is in sync (istioctl's view)"
    )
    ps.add_argument("--monitoring-address", default="127.0.0.1:15014", type=address,
                    help="pyistiod's monitoring port (default 127.0.0.1:15014)")  # fmt: skip
    ps.set_defaults(func=_proxy_status)
    _proxy_config_args(
        sub.add_parser(
            "proxy-config",
            aliases=["pc"],
            help="what pyistiod serves one proxy, as istioctl's tables (or -o json)",
        )
    )
    d = sub.add_parser(
        "demo", help="a bookinfo-style mesh on loopback: real Envoy sidecars, a gateway, mTLS"
    )
    d.add_argument("--duration", type=float, default=0, help="stop after N seconds (0: Ctrl-C)")
    d.add_argument("--workdir", default=".demo", help="config (WORKDIR/config/), logs, CA")
    d.add_argument("--reset", action="store_true",
                   help="restore WORKDIR/config/ from the example first")  # fmt: skip
    d.set_defaults(func=_demo)
    return p


def _serve_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--config-dir", help="a directory of Kubernetes-shaped YAML, watched")
    s.add_argument("--kubeconfig", help="follow the Kubernetes API server this kubeconfig names")
    s.add_argument("--in-cluster", action="store_true",
                   help="follow the API server of the cluster pyistiod runs in")  # fmt: skip
    s.add_argument("--xds-address", default="127.0.0.1:15010", type=address, help="plain-text xDS")
    s.add_argument("--secure-xds-address", default="127.0.0.1:15012", type=address,
                   help="TLS xDS, SDS and the CA service ('' to disable)")  # fmt: skip
    s.add_argument("--monitoring-address", default="127.0.0.1:15014", type=address)
    s.add_argument("--webhook-address", default="127.0.0.1:15017", type=address,
                   help="admission webhook, in Kubernetes mode ('' to disable)")  # fmt: skip
    s.add_argument("--ca-dir", default=DEFAULT_CA_DIR,
                   help="file mode: root CA (made if absent) or Istio cacerts")  # fmt: skip
    s.add_argument("--discovery-selector", action="append", default=[], type=_selector,
                   help="Kubernetes mode: only namespaces with these labels")  # fmt: skip
    s.add_argument("--system-namespace", default="istio-system",
                   help="Kubernetes mode: where the CA Secret istio-ca-secret lives")  # fmt: skip
    s.add_argument("--trust-domain", default="cluster.local", type=trust_domain)
    s.add_argument("--workload-cert-ttl", type=duration, default=timedelta(hours=24))
    s.add_argument("--debounce-after", type=float, default=0.1, help="seconds (default 0.1)")
    s.add_argument("--debounce-max", type=float, default=10.0, help="seconds (default 10)")
    s.add_argument("--push-concurrency", type=int, default=100,
                   help="responses written at once (Istio's PILOT_PUSH_THROTTLE)")  # fmt: skip
    s.add_argument("--connection-rate", type=float, default=1000.0,
                   help="new xDS streams admitted per second (burst as large)")  # fmt: skip
    s.add_argument("--allow-empty-config", action="store_true",
                   help="let a config directory that yields no object empty the mesh "
                   "(by default the last good config stays)")  # fmt: skip
    s.add_argument("--log-level", default="info")
    s.set_defaults(func=_serve)


def _bootstrap_args(b: argparse.ArgumentParser) -> None:
    b.add_argument("--node-id", required=True, help="sidecar~IP~POD.NS~NS.svc.cluster.local")
    b.add_argument("--xds-address", default=None, type=address,
                   help="default 127.0.0.1:15012; with --plaintext 127.0.0.1:15010")  # fmt: skip
    b.add_argument("--ca-dir",
                   help="TLS xDS with this workload's token minted from the CA serve uses "
                   f"(default without --token-file or --kubeconfig: {DEFAULT_CA_DIR})")  # fmt: skip
    b.add_argument("--plaintext", action="store_true",
                   help="plain-text xDS (15010) without a token: the proxy gets no certificates "
                   "(no mTLS); for trying things out only")  # fmt: skip
    b.add_argument("--kubeconfig",
                   help="Kubernetes mode: TLS xDS with the ServiceAccount's token (TokenRequest) "
                   "and the root of istio-ca-secret")  # fmt: skip
    b.add_argument("--system-namespace", default="istio-system")
    b.add_argument("--token-file",
                   help="in a pod: TLS xDS with the projected ServiceAccount token in this file "
                   "(audience istio-ca), e.g. /var/run/secrets/tokens/istio-token")  # fmt: skip
    b.add_argument("--root-cert", default="/var/run/secrets/istio/root-cert.pem",
                   help="with --token-file: the mesh root to verify pyistiod with")  # fmt: skip
    b.add_argument("--trust-domain", default="cluster.local", type=trust_domain)
    b.add_argument("--token-ttl", type=duration, default=timedelta(hours=24))
    b.add_argument("--admin-port", type=_port, default=15000)
    b.add_argument("--labels", type=_labels, default=None)
    b.add_argument("--service-account", default=None)
    b.add_argument("--config-dir", help="take labels and service account from the named Pod")
    b.set_defaults(func=_bootstrap)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pyistiod`` console script."""
    args = parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
