"""The ``pyistiod`` command line: serve, validate, analyze, bootstrap, proxy-status,
proxy-config, demo.

This module parses arguments only (every flag's ``--help`` shows its default) and imports
nothing heavy, so ``pyistiod --help`` answers at once; ``commands`` does the work.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from pyistiod.settings import DEFAULT_CA_DIR

if TYPE_CHECKING:
    from translators.mesh.analysis import Level

EXAMPLE_MESH = Path(__file__).parent / "examples" / "mesh"


def address(text: str) -> str:
    """``HOST:PORT``, or "" (disabled)."""
    from pyistiod.settings import host_port

    if text:
        try:
            host_port(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    return text


def trust_domain(text: str) -> str:
    """A SPIFFE trust domain (``cluster.local``)."""
    from ca.errors import CAError
    from ca.spiffe import validate_trust_domain

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


def _level(text: str) -> Level:
    """An analysis level, case-insensitive: Info, Warning or Error."""
    from translators.mesh.analysis import Level

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
    """``k=v,k=v``, each key a valid label key."""
    from translators.mesh.documents.fields import is_label_key

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


def _positive(text: str) -> int:
    """A count of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a count of 1 or more: {text!r}")
    return int(text)


def _cores() -> int:
    """The cores this process may run on; 1 off Linux, whose SO_REUSEPORT alone spreads
    connections over the processes sharing a port (``serve --workers``)."""
    if not sys.platform.startswith("linux"):
        return 1
    return len(os.sched_getaffinity(0))


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
        k.set_defaults(run="proxy_config", kind=kind)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default after its help, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, []):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """A subcommand's parser: its ``--help`` shows every flag's default."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def _version() -> str:
    try:
        return metadata.version("pyistiod")
    except metadata.PackageNotFoundError:
        return "unknown"


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="pyistiod", description="An istiod clone in Python.")
    p.add_argument("--version", action="version", version=f"pyistiod {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _serve_args(
        sub.add_parser("serve", help="serve xDS to Envoy from a config directory and/or Kubernetes")
    )
    v = sub.add_parser(
        "validate", help="check a config directory; non-zero exit if any object is refused"
    )
    v.add_argument("config_dir", help="a directory (or file) of Kubernetes-shaped YAML")
    v.set_defaults(run="validate")
    an = sub.add_parser(
        "analyze",
        help="report what istioctl analyze would (Istio's codes); exit 79 on errors",
    )
    an.add_argument("config_dir", help="a directory (or file) of Kubernetes-shaped YAML")
    an.add_argument("-o", "--output", choices=("log", "json", "yaml"), default="log",
                    help="istioctl's formats")  # fmt: skip
    an.add_argument("--failure-threshold", type=_level, default="Error",
                    help="the level that makes the exit code 79")  # fmt: skip
    an.add_argument("--output-threshold", type=_level, default="Info",
                    help="the lowest level printed")  # fmt: skip
    an.set_defaults(run="analyze")
    _bootstrap_args(
        sub.add_parser("bootstrap", help="print an Envoy bootstrap that connects to pyistiod")
    )
    ps = sub.add_parser(
        "proxy-status", help="every connected proxy and whether it is in sync (istioctl's view)"
    )
    ps.add_argument("--monitoring-address", default="127.0.0.1:15014", type=address,
                    help="pyistiod's monitoring port")  # fmt: skip
    ps.set_defaults(run="proxy_status")
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
    d.set_defaults(run="demo")
    return p


def _serve_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--config-dir", help="a directory of Kubernetes-shaped YAML, watched")
    s.add_argument("--kubeconfig", help="follow the Kubernetes API server this kubeconfig names")
    s.add_argument("--in-cluster", action="store_true",
                   help="follow the API server of the cluster pyistiod runs in")  # fmt: skip
    s.add_argument("--xds-address", default="127.0.0.1:15010", type=address, help="plain-text xDS")
    s.add_argument("--secure-xds-address", default="127.0.0.1:15012", type=address,
                   help="TLS xDS, SDS and the CA service ('' to disable)")  # fmt: skip
    s.add_argument("--monitoring-address", default="127.0.0.1:15014", type=address,
                   help="metrics, readiness and /debug (istiod's port)")  # fmt: skip
    s.add_argument("--webhook-address", default="127.0.0.1:15017", type=address,
                   help="admission webhook, in Kubernetes mode ('' to disable)")  # fmt: skip
    s.add_argument("--ca-dir", default=DEFAULT_CA_DIR,
                   help="file mode: root CA (made if absent) or Istio cacerts")  # fmt: skip
    s.add_argument("--discovery-selector", action="append", default=[], type=_selector,
                   help="Kubernetes mode: only namespaces with these labels")  # fmt: skip
    s.add_argument("--system-namespace", default="istio-system",
                   help="Kubernetes mode: where the CA Secret istio-ca-secret lives")  # fmt: skip
    s.add_argument("--trust-domain", default="cluster.local", type=trust_domain,
                   help="the SPIFFE trust domain of workload identities")  # fmt: skip
    s.add_argument("--workload-cert-ttl", type=duration, default="24h",
                   help="lifetime of workload certificates (renewed at half)")  # fmt: skip
    s.add_argument("--debounce-after", type=float, default=0.1,
                   help="seconds of quiet after a change before it is pushed")  # fmt: skip
    s.add_argument("--debounce-max", type=float, default=10.0,
                   help="seconds a stream of changes may delay a push at most")  # fmt: skip
    s.add_argument("--push-concurrency", type=int, default=100,
                   help="responses written at once (Istio's PILOT_PUSH_THROTTLE)")  # fmt: skip
    s.add_argument("--connection-rate", type=float, default=1000.0,
                   help="new xDS streams admitted per second (burst as large)")  # fmt: skip
    s.add_argument("--workers", type=_positive, default=_cores(),
                   help="processes serving xDS on shared ports (the cores)")  # fmt: skip
    s.add_argument("--allow-empty-config", action="store_true",
                   help="let a config directory that yields no object empty the mesh "
                   "(by default the last good config stays)")  # fmt: skip
    s.add_argument("--log-level", default="info", help="debug, info, warning or error")
    s.set_defaults(run="serve")


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
    b.add_argument("--system-namespace", default="istio-system",
                   help="with --kubeconfig: where istio-ca-secret lives")  # fmt: skip
    b.add_argument("--token-file",
                   help="in a pod: TLS xDS with the projected ServiceAccount token in this file "
                   "(audience istio-ca), e.g. /var/run/secrets/tokens/istio-token")  # fmt: skip
    b.add_argument("--root-cert", default="/var/run/secrets/istio/root-cert.pem",
                   help="with --token-file: the mesh root to verify pyistiod with")  # fmt: skip
    b.add_argument("--trust-domain", default="cluster.local", type=trust_domain,
                   help="the SPIFFE trust domain of the workload's identity")  # fmt: skip
    b.add_argument("--token-ttl", type=duration, default="24h",
                   help="lifetime of the token minted with --ca-dir or --kubeconfig")  # fmt: skip
    b.add_argument("--admin-port", type=_port, default=15000,
                   help="Envoy's admin port, on the node ID's IP")  # fmt: skip
    b.add_argument("--labels", type=_labels, default=None,
                   help="k=v,k=v (default: the named Pod's, with --config-dir)")  # fmt: skip
    b.add_argument("--service-account", default=None,
                   help="default: the named Pod's (with --config-dir), else 'default'")  # fmt: skip
    b.add_argument("--config-dir", help="take labels and service account from the named Pod")
    b.set_defaults(run="bootstrap")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pyistiod`` console script."""
    args = parser().parse_args(argv)
    from pyistiod import commands  # the heavy imports, only to run a command

    sys.exit(getattr(commands, args.run)(args))


if __name__ == "__main__":
    main()
