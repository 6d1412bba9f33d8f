"""The ``pyistiod`` command's validate and bootstrap subcommands."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pyistiod.cli import EXAMPLE_MESH, main
from pyistiod.local_mesh import free_port

NODE = "sidecar~127.0.0.21~backend-0.default~default.svc.cluster.local"


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0)


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", str(EXAMPLE_MESH)]) == 0
    assert "3 service(s)" in capsys.readouterr().out


def test_validate_names_file_document_field_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLE_MESH, tmp_path / "mesh")
    (tmp_path / "mesh" / "bad.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {ports: [{port: 80}]}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: bad}\n"
        "spec: {ports: [{port: 99999}]}\n"
    )
    assert run(["validate", str(tmp_path / "mesh")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml (document 1)" in err
    assert "spec.ports[0].port" in err
    assert "99999" in err


def test_bootstrap_takes_labels_and_identity_from_the_pod(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        run(
            [
                "bootstrap",
                "--node-id",
                NODE,
                "--config-dir",
                str(EXAMPLE_MESH),
                "--plaintext",
            ]
        )
        == 0
    )
    doc = yaml.safe_load(capsys.readouterr().out)
    md = doc["node"]["metadata"]
    assert md["LABELS"] == {
        "app": "backend",
        "version": "v1",
        "security.istio.io/tlsMode": "istio",  # added as by Istio's injector
    }
    assert md["SERVICE_ACCOUNT"] == "backend"
    assert doc["node"]["id"] == NODE


def test_bootstrap_warns_when_the_pod_or_some_objects_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLE_MESH, tmp_path / "mesh")
    (tmp_path / "mesh" / "bad.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {}\n")
    other = NODE.replace("backend-0", "nobody-0")
    argv = ["bootstrap", "--node-id", other, "--config-dir", str(tmp_path / "mesh"), "--plaintext"]
    assert run(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("pyistiod: warning: 1 object(s) of ") and "refused" in err[0]
    assert err[1].startswith("pyistiod: warning: no Pod default/nobody-0 in ")


def test_bootstrap_refuses_a_malformed_node_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["bootstrap", "--node-id", "sidecar~nope"]) == 2
    assert "expected 4: TYPE~IP~POD.NAMESPACE~DOMAIN" in capsys.readouterr().err


def test_bootstrap_with_ca_dir_dials_tls_with_a_token_and_envoy_accepts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from envoy_validate import envoy_validate

    from ca import tokens
    from ca.storage import load_or_create_root, load_or_create_token_key

    load_or_create_root(tmp_path / "ca", "cluster.local", datetime.now(UTC))  # as serve does
    args = ["bootstrap", "--node-id", NODE, "--config-dir", str(EXAMPLE_MESH),
            "--ca-dir", str(tmp_path / "ca")]  # fmt: skip
    assert run(args) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    xds = doc["static_resources"]["clusters"][0]
    assert (
        xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ]["port_value"]
        == 15012
    )
    tls = xds["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
    assert "BEGIN CERTIFICATE" in tls["trusted_ca"]["inline_string"]
    (metadata,) = doc["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"]
    token = metadata["value"].removeprefix("Bearer ")
    key = load_or_create_token_key(tmp_path / "ca")
    who = tokens.verify(key, token, "cluster.local", datetime.now(UTC))
    assert (who.namespace, who.service_account) == ("default", "backend")
    result = envoy_validate(doc, tmp_path)
    assert result.returncode == 0, result.stderr


def test_bootstrap_is_tls_by_default_from_serves_default_ca_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from ca.storage import load_or_create_root

    monkeypatch.chdir(tmp_path)
    assert run(["bootstrap", "--node-id", NODE]) == 1  # no CA yet: said, and nothing made
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert "--ca-dir .pyistiod/ca: no such directory" in err and "--plaintext" in err
    assert not (tmp_path / ".pyistiod").exists()
    load_or_create_root(tmp_path / ".pyistiod" / "ca", "cluster.local", datetime.now(UTC))
    assert run(["bootstrap", "--node-id", NODE]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    xds = doc["static_resources"]["clusters"][0]
    assert xds["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["port_value"] == 15012


def test_plaintext_bootstrap_dials_15010_without_a_token_and_says_what_it_lacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["bootstrap", "--node-id", NODE, "--plaintext"]) == 0
    out = capsys.readouterr()
    doc = yaml.safe_load(out.out)
    xds = doc["static_resources"]["clusters"][0]
    assert "transport_socket" not in xds
    endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["port_value"] == 15010
    assert "initial_metadata" not in doc["dynamic_resources"]["ads_config"]["grpc_services"][0]
    (warning,) = out.err.strip().splitlines()
    assert warning.startswith("pyistiod: warning: --plaintext: ") and "no certificates" in warning


def test_validate_prints_analysis_warnings_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLE_MESH, tmp_path / "mesh")
    (tmp_path / "mesh" / "vs.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: x, namespace: default}\n"
        "spec: {hosts: [backend], http: [{route: [{destination: {host: nosuch}}]}]}\n"
    )
    assert run(["validate", str(tmp_path / "mesh")]) == 0
    line = 'Error [IST0101] (VirtualService default/x vs.yaml:1) Referenced host not found: "nosuch'
    assert line in capsys.readouterr().err


def test_bootstrap_with_a_missing_token_file_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bootstrap", "--node-id", NODE, "--token-file", str(tmp_path / "no-token")]
    assert run(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pyistiod: ") and "no-token" in err[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--kubeconfig", "{tmp}/missing"], "no such kubeconfig file"),
        (["--kubeconfig", "{tmp}/token"], "is not a kubeconfig file"),
        (["--service-account", "A!B"], "path segment 'A!B' has characters '!'"),
        (["--token-file", "{tmp}/token", "--root-cert", "{tmp}/token"], "not PEM certificates"),
        (["--config-dir", "{tmp}/nowhere"], "no such directory or YAML file"),
        (["--ca-dir", "{tmp}/token"], "--ca-dir {tmp}/token: not a directory"),
        (["--ca-dir", "{tmp}"], "holds no CA (root-cert.pem or ca-cert.pem); pyistiod serve"),
        (["--ca-dir", "{tmp}", "--plaintext"], "--plaintext and --ca-dir exclude each other"),
        (["--token-file", "{tmp}/token", "--kubeconfig", "{tmp}/k"], "exclude each other"),
    ],
)
def test_bootstrap_mistakes_are_said_in_one_line(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token").write_text("a-token\n")
    argv = ["bootstrap", "--node-id", NODE, *(a.format(tmp=tmp_path) for a in args)]
    assert run(argv) in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    says = says.format(tmp=tmp_path)
    assert len(err) == 1 and err[0].startswith("pyistiod: ") and says in err[0], err
    assert not (tmp_path / "root-key.pem").exists()  # a typo never creates a CA


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--xds-address", "nope"], "argument --xds-address: 'nope' is not HOST:PORT"),
        (["--trust-domain", "Cluster:Local"], "argument --trust-domain: INVALID_SPIFFE_ID"),
        (["--admin-port", "99999"], "argument --admin-port: not a port 1-65535: '99999'"),
        (["--labels", "=x"], "argument --labels: not a label key: ''"),
        (["--labels", "a b=x"], "argument --labels: not a label key: 'a b'"),
    ],
)
def test_malformed_flags_are_refused_by_the_parser(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["bootstrap", "--node-id", NODE, *args]) == 2
    assert says in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("port", ["monitoring", "xds"])
def test_serve_on_a_port_in_use_refuses_to_start_in_one_line(port: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        addresses = {"monitoring": free_address(), "xds": free_address()} | {port: busy}
        argv = [
            *(sys.executable, "-m", "pyistiod.cli", "serve", "--config-dir", str(EXAMPLE_MESH)),
            *("--xds-address", addresses["xds"], "--secure-xds-address", ""),
            *("--monitoring-address", addresses["monitoring"], "--ca-dir", str(tmp_path)),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pyistiod: refusing to start: cannot listen on {busy}"), last


def free_address() -> str:
    return f"127.0.0.1:{free_port()}"


BAD_ROUTE = (
    "# routes for reviews\n"
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: ok, namespace: default}\n"
    "spec: {hosts: [backend], http: [{route: [{destination: {host: backend}}]}]}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: reviews, namespace: default}\n"
    "spec: {hosts: [frontend], http: [{route: [{destination: {host: reviewz}}]}]}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
    "metadata: {name: typo, namespace: default}\n"
    "spec: {hosts: [frontend], http: [{route: [{destination: {host: frontend}}], timout: 1s}]}\n"
)


def analyze_mesh(tmp_path: Path, text: str) -> Path:
    shutil.copytree(EXAMPLE_MESH, tmp_path / "mesh")
    (tmp_path / "mesh" / "routes.yaml").write_text(text)
    return tmp_path / "mesh"


def test_analyze_prints_istioctl_lines_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = analyze_mesh(tmp_path, BAD_ROUTE)
    assert run(["analyze", str(mesh)]) == 79
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "Error [IST0101] (VirtualService default/reviews routes.yaml:7) "
        'Referenced host not found: "reviewz"',
        "Error [IST0106] (VirtualService default/typo routes.yaml:12) Schema validation error: "
        'spec.http[0].timout: unknown field; did you mean "timeout"?',
    ]  # fmt: skip
    assert err.startswith("Error: Analyzers found issues")


def test_analyze_json_yaml_and_thresholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = analyze_mesh(tmp_path, BAD_ROUTE)
    assert run(["analyze", "-o", "json", str(mesh)]) == 79
    first = json.loads(capsys.readouterr().out)[0]
    assert first == {
        "code": "IST0101",
        "documentationUrl": "https://istio.io/latest/docs/reference/config/analysis/ist0101/",
        "field": "spec.http[0].route[0].destination.host",
        "level": "Error",
        "message": 'Referenced host not found: "reviewz"',
        "origin": "VirtualService default/reviews",
        "reference": "routes.yaml:7",
    }
    assert run(["analyze", "-o", "yaml", str(mesh)]) == 79
    assert yaml.safe_load(capsys.readouterr().out)[0] == first
    assert run(["analyze", "--failure-threshold", "error", "--output-threshold", "Error",
                str(mesh)]) == 79  # fmt: skip
    warning_only = BAD_ROUTE.split("---\n")[0] + (
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: tls, namespace: default}\n"
        "spec: {host: backend, trafficPolicy: {tls: {mode: SIMPLE}}}\n"
    )
    (mesh / "routes.yaml").write_text(warning_only)
    capsys.readouterr()
    assert run(["analyze", str(mesh)]) == 0
    assert capsys.readouterr().out.startswith("Warning [IST0128] (DestinationRule default/tls")
    assert run(["analyze", "--failure-threshold", "Warning", str(mesh)]) == 79
    assert run(["analyze", "--output-threshold", "Error", str(mesh)]) == 0
    assert "No validation issues found" in capsys.readouterr().err


def test_analyze_a_missing_directory_or_a_bad_level_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["analyze", str(tmp_path / "nowhere")]) == 1
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert run(["analyze", "--failure-threshold", "loud", str(tmp_path)]) == 2
    assert "invalid level option 'loud'" in capsys.readouterr().err


def test_proxy_status_without_pyistiod_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert run(["proxy-status", "--monitoring-address", f"127.0.0.1:{port}"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("pyistiod: cannot reach pyistiod's monitoring port at http://127.0.0.1:")


UNSUPPORTED = """
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua, namespace: default}
spec: {configPatches: []}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: default}
spec: {}
"""


def test_istio_kinds_pyistiod_skips_are_errors_in_validate_and_analyze(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config that relies on an EnvoyFilter or a Gateway API route must not pass as if
    applied; a Deployment beside the Services is none of Istio's business (a warning)."""
    shutil.copytree(EXAMPLE_MESH, tmp_path / "mesh")
    (tmp_path / "mesh" / "extra.yaml").write_text(UNSUPPORTED)
    assert run(["validate", str(tmp_path / "mesh")]) == 1
    err = capsys.readouterr().err
    assert (
        "error: extra.yaml (document 0) EnvoyFilter default/lua: "
        "networking.istio.io/v1alpha3/EnvoyFilter is not supported by pyistiod" in err
    )
    assert "error: extra.yaml (document 1) HTTPRoute default/reviews: " in err
    assert "warning: extra.yaml (document 2): skipped unsupported kind apps/v1/Deployment" in err
    assert run(["analyze", "-o", "json", str(tmp_path / "mesh")]) == 79
    found = json.loads(capsys.readouterr().out)
    unsupported = [f for f in found if f["code"] == "PYI0001"]
    assert [f["origin"] for f in unsupported] == [
        "EnvoyFilter default/lua",
        "HTTPRoute default/reviews",
    ]
    assert unsupported[0]["level"] == "Error" and "documentationUrl" not in unsupported[0]
    assert unsupported[0]["reference"] == "extra.yaml:2"


def test_help_is_fast_because_the_parser_imports_nothing_heavy() -> None:
    code = (
        "import sys, pyistiod.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'translators', 'xds_server', 'ca', 'grpc', 'yaml', 'structlog', 'cryptography'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_and_every_flag_with_a_default_shows_it_in_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    from pyistiod.cli import parser

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("pyistiod ")
    top = parser()
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        text = command.format_help()
        for action in command._actions:
            if action.help == argparse.SUPPRESS or action.default in (None, False, []):
                continue
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.option_strings}: no help"
            assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)
