"""``/debug/adsz`` and ``proxy-config`` against a live control plane with real gRPC clients.

One stream over TLS with a workload token (it gets secrets), one plain SotW
stream and one plain delta stream: adsz names each connection, its peer, its
identity (none on the plain port) and what it watches, and never a key or a token.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from envoy.service.discovery.v3 import discovery_pb2
from xds_client import ADS, DELTA_ADS, FRONTEND, node, open_stream, secure_channel

from ca import tokens
from ca.spiffe import SpiffeId
from ca.storage import load_or_create_token_key
from pyistiod.cli import EXAMPLE_MESH, main
from pyistiod.debug_views import config_dump
from pyistiod.local_mesh import free_port, http_get
from pyistiod.monitoring import Monitoring, View, on_loop
from pyistiod.proxy_config import UnknownProxy, show
from pyistiod.serve import ControlPlane, start_control_plane
from pyistiod.settings import Settings
from translators.sources.files import load_dir
from xds_server import types
from xds_server.transport.sync_status import MAX_WATCHED_NAMES

BACKEND = "sidecar~127.0.0.21~backend-0.default~default.svc.cluster.local"
FRONT_ID = SpiffeId("cluster.local", "default", "frontend")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        config_dir=EXAMPLE_MESH,
        xds_address="127.0.0.1:0",
        secure_xds_address="127.0.0.1:0",
        monitoring_address="",
        ca_dir=tmp_path / "ca",
    )
    cp = await start_control_plane(settings, load_dir(EXAMPLE_MESH).model)
    cp.token_key = load_or_create_token_key(tmp_path / "ca")  # type: ignore[attr-defined]
    yield cp
    await cp.server.stop(0)


@pytest.fixture
def monitoring() -> Any:
    views: dict[str, View] = {}
    m = Monitoring("127.0.0.1", 0, threading.Event().is_set, views)
    m.start()
    yield m, views
    m.stop()


def token(cp: ControlPlane) -> str:
    """The frontend workload's token, as its bootstrap would carry it."""
    key = cp.token_key  # type: ignore[attr-defined]
    return tokens.issue(key, FRONT_ID, datetime.now(UTC), timedelta(hours=1))


async def get(port: int, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(http_get, f"http://127.0.0.1:{port}{path}")  # views: this loop


def wire(views: dict[str, View], cp: ControlPlane) -> None:
    """The views as ``serve`` wires them."""
    loop = asyncio.get_running_loop()
    views["/debug/syncz"] = on_loop(loop, lambda _: cp.server.sync_status())
    views["/debug/adsz"] = on_loop(loop, lambda q: cp.server.ads_clients(q.get("proxyID", "")))
    views["/debug/config_dump"] = on_loop(
        loop, lambda q: config_dump(cp.cache, q.get("proxyID", ""))
    )


async def ack(s: Any, resp: Any, names: list[str] | None = None) -> None:
    await s.send(
        discovery_pb2.DiscoveryRequest(
            type_url=resp.type_url,
            version_info=resp.version_info,
            response_nonce=resp.nonce,
            resource_names=names or [],
        )
    )


async def test_adsz_names_each_stream_its_peer_identity_and_watches(
    plane: ControlPlane, monitoring: Any
) -> None:
    m, views = monitoring
    assert (await get(m.port, "/debug/adsz"))[0] == 503  # not serving yet
    wire(views, plane)
    bearer = token(plane)
    eds_names = [f"outbound|{i}||nothing.default.svc.cluster.local" for i in range(150)]
    async with (
        secure_channel(plane.secure_xds_port, plane.root_pem, bearer) as tls_ch,
        grpc.aio.insecure_channel(f"127.0.0.1:{plane.xds_port}") as plain_ch,
    ):
        secure = open_stream(tls_ch, ADS)
        await secure.send(
            discovery_pb2.DiscoveryRequest(
                node=node(FRONTEND), type_url=types.SECRET, resource_names=["default", "ROOTCA"]
            )
        )
        await ack(secure, await secure.expect_response(), ["default", "ROOTCA"])
        plain = open_stream(plain_ch, ADS)
        await plain.send(discovery_pb2.DiscoveryRequest(node=node(BACKEND), type_url=types.CLUSTER))
        await ack(plain, await plain.expect_response())
        await plain.send(
            discovery_pb2.DiscoveryRequest(type_url=types.ENDPOINT, resource_names=eds_names)
        )
        await plain.expect_response()
        delta = open_stream(plain_ch, DELTA_ADS, delta=True)
        await delta.send(
            discovery_pb2.DeltaDiscoveryRequest(
                node=node(BACKEND), type_url=types.ROUTE, resource_names_subscribe=["9080"]
            )
        )
        await delta.expect_response()
        status, text = await get(m.port, "/debug/adsz")
        only = json.loads((await get(m.port, f"/debug/adsz?proxyID={FRONTEND}"))[1])
        for s in (secure, plain, delta):
            await s.close()
    assert status == 200
    body = json.loads(text)
    assert body["totalClients"] == 3 == len(body["clients"])
    by = {(c["proxy"], c["delta"]): c for c in body["clients"]}
    tls_client, sotw, incremental = by[FRONTEND, False], by[BACKEND, False], by[BACKEND, True]
    assert tls_client["tls"] is True and tls_client["authenticated"] is True
    assert tls_client["identity"] == "spiffe://cluster.local/ns/default/sa/frontend"
    assert tls_client["watches"][types.SECRET] == {
        "wildcard": False, "names": ["ROOTCA", "default"], "namesTotal": 2,
    }  # fmt: skip
    for c in (sotw, incremental):
        assert c["tls"] is False and c["authenticated"] is False and c["identity"] is None
    assert sotw["watches"][types.CLUSTER]["wildcard"] is True
    eds = sotw["watches"][types.ENDPOINT]
    assert eds["namesTotal"] == 150 and eds["names"] == sorted(eds_names)[:MAX_WATCHED_NAMES]
    assert incremental["watches"] == {
        types.ROUTE: {"wildcard": False, "names": ["9080"], "namesTotal": 1}
    }
    assert len({c["connectionId"] for c in body["clients"]}) == 3
    assert all(c["connectionId"].startswith(f"{c['proxy']}-") for c in body["clients"])
    for c in body["clients"]:
        host, _, port = c["address"].rpartition(":")
        assert host == "127.0.0.1" and port.isdigit()
        assert datetime.fromisoformat(c["connectedAt"]) <= datetime.now(UTC)
    assert [c["proxy"] for c in only["clients"]] == [FRONTEND] and only["totalClients"] == 1
    assert bearer not in text and "PRIVATE KEY" not in text and "BEGIN" not in text


async def test_proxy_config_reads_a_live_proxy(plane: ControlPlane, monitoring: Any) -> None:
    m, views = monitoring
    wire(views, plane)
    address = f"127.0.0.1:{m.port}"
    bearer = token(plane)
    async with secure_channel(plane.secure_xds_port, plane.root_pem, bearer) as ch:
        s = open_stream(ch, ADS)
        await s.send(discovery_pb2.DiscoveryRequest(node=node(FRONTEND), type_url=types.CLUSTER))
        await ack(s, await s.expect_response())
        await s.send(
            discovery_pb2.DiscoveryRequest(
                type_url=types.SECRET, resource_names=["default", "ROOTCA"]
            )
        )
        sds = await s.expect_response()
        now = datetime.now(UTC)

        def run(*argv: str) -> str:
            return show(address, argv[0], argv[1], argv[2] if len(argv) > 2 else "short", now)

        warming = await asyncio.to_thread(run, "secrets", "frontend-0.default")
        await ack(s, sds, ["default", "ROOTCA"])
        await s.expect_no_response()
        clusters = await asyncio.to_thread(run, "clusters", "frontend-0.default")
        secrets = await asyncio.to_thread(run, "secrets", FRONTEND)
        raw = await asyncio.to_thread(run, "secrets", "frontend-0.default", "json")
        with pytest.raises(UnknownProxy, match=r"connected: frontend-0\.default$"):
            await asyncio.to_thread(run, "clusters", "nobody.default")
        await s.close()
    header, *rows = clusters.splitlines()
    assert header.split()[:3] == ["SERVICE", "FQDN", "PORT"]
    assert ["backend.default.svc.cluster.local", "9080", "-", "outbound", "EDS", "-"] in [
        r.split() for r in rows
    ]
    assert {r.split()[0]: r.split()[-5] for r in warming.splitlines()[1:]} == {
        "default": "WARMING",
        "ROOTCA": "WARMING",
    }
    cert_rows = {r.split()[0]: r.split() for r in secrets.splitlines()[1:]}
    leaf = x509.load_pem_x509_certificates(plane.root_pem)[0]
    assert cert_rows["ROOTCA"][1:5] == ["CA", "ACTIVE", "true", f"{leaf.serial_number:x}"]
    assert cert_rows["default"][1:4] == ["Cert", "Chain", "ACTIVE"]
    assert "PRIVATE KEY" not in raw and "[redacted]" in raw


def test_proxy_config_without_pyistiod_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    with pytest.raises(SystemExit) as done:
        main(["proxy-config", "clusters", "a.b", "--monitoring-address", f"127.0.0.1:{port}"])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pyistiod: cannot reach")
