"""What each ``pyistiod`` subcommand does, once ``cli`` has parsed its arguments.

Kept apart from ``cli`` so that ``pyistiod --help`` (and a mistyped flag) answers without
importing the translators, the CA and gRPC: ``cli`` imports this module only to run a command.
Each function takes the parsed arguments and returns the exit code; a user's mistake is one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ca.errors import CAError
from ca.spiffe import SpiffeId
from ca.storage import PLUGIN_CA_CERT, ROOT_CERT
from pyistiod import logging_setup
from pyistiod.analysis_report import Lines, analysis_findings, at_least, findings, render
from pyistiod.credentials import kubernetes_xds_tls, projected_xds_tls, workload_xds_tls
from pyistiod.settings import DEFAULT_CA_DIR, Settings, host_port
from translators.envoy.bootstrap import render_bootstrap
from translators.envoy.listeners.sidecar import listener_conflicts
from translators.mesh.model.proxy import parse_node_id
from translators.mesh.model.services import Workload
from translators.sources.files import read_dir, skipped_warning
from translators.sources.loader import LoadResult, load
from xds_server.errors import ConfigInvalid, SourceUnavailable


def _now() -> datetime:
    return datetime.now(UTC)


def serve(a: argparse.Namespace) -> int:
    from pyistiod.serve import run
    from pyistiod.worker_pool import WorkerFailed

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
        workers=a.workers,
    )
    try:
        run(settings, a.log_level)
    except (ConfigInvalid, CAError, SourceUnavailable, OSError) as err:
        print(f"pyistiod: refusing to start: {err}", file=sys.stderr)
        return 1
    except WorkerFailed as err:
        print(f"pyistiod: stopped: {err}", file=sys.stderr)
        return 1
    return 0


def _read(config_dir: str) -> tuple[LoadResult, Lines] | None:
    """The directory's documents loaded, with their lines; None (and one line said) if the
    directory does not exist."""
    try:
        documents = read_dir(Path(config_dir))
    except ConfigInvalid as invalid:
        print(f"pyistiod: {invalid.errors[0]}", file=sys.stderr)
        return None
    return load([documents]), documents.lines


def validate(a: argparse.Namespace) -> int:
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


def analyze(a: argparse.Namespace) -> int:
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


def bootstrap(a: argparse.Namespace) -> int:
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


def proxy_status(a: argparse.Namespace) -> int:
    from pyistiod.proxy_status import fetch, table

    try:
        proxies = fetch(a.monitoring_address)
    except OSError as err:
        print(f"pyistiod: {err}", file=sys.stderr)
        return 1
    print(table(proxies))
    return 0


def proxy_config(a: argparse.Namespace) -> int:
    from pyistiod.proxy_config import UnknownProxy, show

    try:
        print(show(a.monitoring_address, a.kind, a.proxy, a.output, datetime.now(UTC)))
    except (OSError, UnknownProxy) as err:
        print(f"pyistiod: {err}", file=sys.stderr)
        return 1
    return 0


def demo(a: argparse.Namespace) -> int:
    from pyistiod.demo import run_demo

    return run_demo(duration=a.duration, workdir=Path(a.workdir), reset=a.reset)
