"""The docker-compose demo (``docker-compose.yml``) in real containers, under podman.

One test brings the whole mesh up from the repository's ``Dockerfile`` through
``tests/containers/podman-compose.sh`` (docker-compose against podman's Docker API), sends
requests through the ingress gateway to productpage and on to details and reviews (and from
reviews v3 to ratings), moves the reviews split to v3 alone in the bind-mounted config and
sees only v3 answer, then brings everything down and checks podman holds no container or
volume of it. Every step is bounded in time; on failure the containers' logs are printed.

It needs Linux, root, podman, runc, docker-compose and debootstrap (``.ci/run`` installs
them where it can), and the loopback addresses of ``pyistiod/examples/demo`` with pyistiod's
fixed ports 15010/15012/15014, so run one mesh at a time on a machine. A first run builds the
base image with debootstrap (about 1.5 min, cached afterwards in podman's storage).

A second test, without containers, checks the compose file and the demo's Pods agree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pyistiod.local_mesh import http_get, wait_for

REPO = Path(__file__).resolve().parents[2]
WRAPPER = REPO / "tests" / "containers" / "podman-compose.sh"
DEMO = REPO / "pyistiod" / "examples" / "demo"
PROJECT = "pyistiod-compose-test"
TOOLS = ("podman", "runc", "docker-compose", "debootstrap")


def compose_services() -> dict[str, dict[str, Any]]:
    """The services of ``docker-compose.yml`` (YAML merge keys resolved)."""
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services: dict[str, dict[str, Any]] = doc["services"]
    return services


def demo_pods() -> dict[str, dict[str, Any]]:
    """The Pods of the demo's config directory, by name."""
    pods = {}
    for path in sorted(DEMO.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Pod":
                pods[doc["metadata"]["name"]] = doc
    return pods


def test_compose_pods_match_the_demo_config() -> None:
    """Every Pod of the demo runs in a compose service with the Pod's IP, namespace, port and
    app arguments, and every pod service names a Pod: the two cannot drift apart."""
    pods = demo_pods()
    played = {}
    for name, service in compose_services().items():
        env = service.get("environment", {})
        if "POD_NAME" not in env:
            continue
        pod = pods.get(env["POD_NAME"])
        assert pod is not None, f"service {name}: no Pod {env['POD_NAME']} in {DEMO}"
        assert env["POD_IP"] == pod["status"]["podIP"], name
        assert env.get("POD_NAMESPACE", "default") == pod["metadata"]["namespace"], name
        container = pod["spec"]["containers"][0]
        gateway = pod["metadata"].get("labels", {}).get("istio") == "ingressgateway"
        assert (env.get("PROXY_TYPE") == "router") == gateway, name
        if not gateway:
            port = container["ports"][0]["containerPort"]
            assert env.get("APP_PORT") == str(port), name
            args = container.get("args", [])
            calls = args[args.index("--calls") + 1] if "--calls" in args else None
            assert env.get("APP_CALLS") == calls, name
        played[env["POD_NAME"]] = name
    assert sorted(played) == sorted(pods)


def _skip_unless_containers_can_run() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the compose demo uses host networking on loopback addresses: Linux only")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed "
            "(apt-get install podman runc debootstrap docker-compose; .ci/run does)"
        )
    if os.geteuid() != 0:
        pytest.skip("podman-compose.sh runs podman as root")


def run(env: dict[str, str], *args: str, timeout: float) -> str:
    """``podman-compose.sh ARGS``: its output; AssertionError (with the output's tail) if it
    fails or outlives ``timeout``, in which case its process group is stopped."""
    proc = subprocess.Popen(
        [str(WRAPPER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: docker-compose and podman's service
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        message = f"{' '.join(args)}: still running after {timeout} s\n{out[-4000:]}"
        raise AssertionError(message) from None
    if proc.returncode:
        raise AssertionError(f"{' '.join(args)}: exit {proc.returncode}\n{out[-4000:]}")
    return out


def gateway_url() -> str:
    """Where the demo's ingress gateway listens: its pod IP, port 8080."""
    env = compose_services()["istio-ingressgateway"]["environment"]
    return f"http://{env['POD_IP']}:8080"


def productpage(gateway: str) -> dict[str, Any] | None:
    """One /productpage through the gateway, if productpage, details and reviews answered."""
    status, body = http_get(f"{gateway}/productpage", timeout=5)
    if status != 200:
        return None
    page: dict[str, Any] = json.loads(body)
    calls = page.get("calls", {})
    details, reviews = calls.get("details", {}), calls.get("reviews", {})
    if page.get("pod") != "productpage-v1" or details.get("pod") != "details-v1":
        return None
    return page if str(reviews.get("pod", "")).startswith("reviews-") else None


def route_reviews_to(config: Path, subset: str) -> None:
    """Rewrite the copied config's reviews VirtualService: every request to ``subset``."""
    path = config / "reviews-split.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    (vs,) = [d for d in docs if d and d["kind"] == "VirtualService"]
    vs["spec"]["http"] = [
        {"route": [{"destination": {"host": "reviews", "subset": subset}, "weight": 100}]}
    ]
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


@pytest.mark.e2e
@pytest.mark.containers
def test_compose_demo_under_podman(tmp_path: Path) -> None:
    _skip_unless_containers_can_run()
    config = tmp_path / "config"  # a copy the test edits; the containers run as user 1337
    shutil.copytree(DEMO, config)
    config.chmod(0o755)
    for f in config.iterdir():
        f.chmod(0o644)
    env = {**os.environ, "COMPOSE_PROJECT_NAME": PROJECT, "PYISTIOD_DEMO_CONFIG": str(config)}
    gateway = gateway_url()
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        run(env, "down", "-v", "--timeout", "5", timeout=120)  # leftovers of an aborted run
        run(env, "up", "-d", "--build", timeout=900)  # cold: debootstrap, wheels, image
        timings["up"] = time.monotonic() - started

        seen: dict[str, dict[str, Any]] = {}

        def both_versions() -> bool:
            if page := productpage(gateway):
                seen[page["calls"]["reviews"]["pod"]] = page["calls"]["reviews"]
            return {"reviews-v1", "reviews-v3"} <= seen.keys()

        wait_for(both_versions, timeout=90, interval=0.2)  # the demo splits v1/v3 50/50
        timings["traffic"] = time.monotonic() - started
        page = productpage(gateway)
        assert page, "productpage stopped answering"
        # mTLS on every hop, each proxy with its own certificate (SDS, from the CA volume)
        assert "URI=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway" in page["xfcc"]
        assert "sa/bookinfo-productpage" in page["calls"]["details"]["xfcc"]
        assert seen["reviews-v3"]["calls"]["ratings"]["pod"] == "ratings-v1"

        route_reviews_to(config, "v3")

        def only_v3() -> bool:
            pages = [productpage(gateway) for _ in range(20)]
            return all(p and p["calls"]["reviews"]["pod"] == "reviews-v3" for p in pages)

        wait_for(only_v3, timeout=30, interval=0.2)
        timings["split"] = time.monotonic() - started
    except BaseException:
        try:
            print(run(env, "logs", "--no-color", "--tail", "60", timeout=60))
        except AssertionError as err:
            print(f"no logs: {err}")
        raise
    finally:
        run(env, "down", "-v", "--timeout", "5", timeout=180)
        timings["down"] = time.monotonic() - started
        print("compose demo, seconds since start:", {k: round(v, 1) for k, v in timings.items()})
    label = f"label=com.docker.compose.project={PROJECT}"
    assert run(env, "podman", "ps", "-a", "-q", "--filter", label, timeout=60).strip() == ""
    volumes = run(env, "podman", "volume", "ls", "-q", "--filter", label, timeout=60)
    assert volumes.strip() == ""
