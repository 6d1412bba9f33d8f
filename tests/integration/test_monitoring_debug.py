"""The monitoring port's debug views against a live server: what each proxy was sent, and said."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from xds_client import ADS, FRONTEND, Running, node, open_stream, start

from pyistiod.cli import EXAMPLE_MESH
from pyistiod.debug_views import config_dump
from pyistiod.local_mesh import http_get
from pyistiod.monitoring import Monitoring, View, on_loop
from pyistiod.proxy_status import fetch, table
from translators.sources.files import load_dir
from xds_server import types


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    r = await start(load_dir(EXAMPLE_MESH).model)
    yield r
    await r.server.stop(0)


async def get_json(url: str) -> tuple[int, object]:
    status, body = await asyncio.to_thread(http_get, url)  # the view runs on this loop
    return status, json.loads(body)


async def test_syncz_shows_what_each_proxy_was_sent_acked_and_nacked(running: Running) -> None:
    views: dict[str, View] = {}
    monitoring = Monitoring("127.0.0.1", 0, threading.Event().is_set, views)
    monitoring.start()
    base = f"http://127.0.0.1:{monitoring.port}"
    try:
        assert (await get_json(f"{base}/debug/syncz"))[0] == 503  # not serving yet
        loop = asyncio.get_running_loop()
        views["/debug/syncz"] = on_loop(loop, lambda _: running.server.sync_status())
        views["/debug/config_dump"] = on_loop(
            loop, lambda q: config_dump(running.cache, q.get("proxyID", ""))
        )
        async with running.channel() as ch:
            s = open_stream(ch, ADS)
            await s.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            cds = await s.expect_response()
            await s.send(
                discovery_pb2.DiscoveryRequest(
                    type_url=types.CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
                )
            )
            await s.send(discovery_pb2.DiscoveryRequest(type_url=types.LISTENER))
            lds = await s.expect_response()
            await s.send(
                discovery_pb2.DiscoveryRequest(
                    type_url=types.LISTENER,
                    response_nonce=lds.nonce,
                    error_detail=status_pb2.Status(code=3, message="bad listener"),
                )
            )
            await s.expect_no_response()
            for _ in range(100):  # the NACK is handled on the loop; under load, a moment later
                lds_status = running.server.sync_status()[0]["types"].get("lds", {})
                if lds_status.get("nack"):
                    break
                await asyncio.sleep(0.05)
            status, body = await get_json(f"{base}/debug/syncz")
            dump_status, dump = await get_json(f"{base}/debug/config_dump?proxyID={FRONTEND}")
            shown = table(await asyncio.to_thread(fetch, f"127.0.0.1:{monitoring.port}"))
            await s.close()
        assert status == 200 and isinstance(body, list)
        (proxy,) = body
        assert proxy["proxy"] == FRONTEND and proxy["delta"] is False
        clusters, listeners = proxy["types"]["cds"], proxy["types"]["lds"]
        assert clusters["sent"]["version"] == cds.version_info == clusters["acked"]
        assert clusters["sent"]["nonce"] == cds.nonce and clusters["synced"] is True
        assert listeners["synced"] is False
        assert listeners["nack"]["message"] == "bad listener"
        assert listeners["nack"]["version"] == lds.version_info
        assert dump_status == 200 and isinstance(dump, dict)
        cds_dump = dump["configs"]["cds"]
        assert cds_dump["version"] == cds.version_info
        names = {c["name"] for c in cds_dump["resources"]}
        assert "outbound|9080||backend.default.svc.cluster.local" in names
        assert all(c["@type"] == types.CLUSTER for c in cds_dump["resources"])
        assert (await get_json(f"{base}/debug/config_dump?proxyID=nobody"))[0] == 404
        header, row, blank, nack = shown.splitlines()
        assert blank == "" and nack.startswith(f"{FRONTEND} LDS NACKED: ")
        assert header.split() == ["NAME", "CDS", "LDS", "EDS", "RDS", "SDS"]
        assert row.split() == [
            FRONTEND,
            "SYNCED",
            "NACKED",
            "NOT",
            "SENT",
            "NOT",
            "SENT",
            "NOT",
            "SENT",
        ]
        status, version = await get_json(f"{base}/version")
        assert status == 200 and isinstance(version, dict) and version["version"]
    finally:
        monitoring.stop()
