"""The SDS secrets of authenticated proxies: issued on first need, renewed on a timer.

Invariants:

1. A node has secrets only while it is connected over an authenticated
   stream; ``forget`` cancels its renewal and drops its key.
2. Renewal replaces the node's secret set in one step and calls
   ``on_rotated`` so the registry republishes the node's snapshot: the proxy
   gets its new certificate over the open stream, without reconnecting.
3. Key generation and signing run in a worker thread, never on the event
   loop that serves every other stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from ca.spiffe import SpiffeId
from pyistiod.workload_certs import CertificateIssuer, WorkloadCert
from translators.envoy.tls.workload_secrets import build_secrets
from xds_server import metrics, types
from xds_server.snapshot import Resource, ResourceSet, resource_name

log = structlog.get_logger("sds")


class SecretStore:
    """Per-node workload certificates as SDS resource sets."""

    def __init__(
        self, issuer: CertificateIssuer, on_rotated: Callable[[str], None] = lambda _: None
    ) -> None:
        self.issuer = issuer
        self.on_rotated = on_rotated
        self.certs: dict[str, WorkloadCert] = {}
        self.sets: dict[str, ResourceSet] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def ensure(self, node_id: str, identity: SpiffeId) -> None:
        """Make sure ``node_id`` holds a certificate for ``identity``."""
        held = self.certs.get(node_id)
        if held is not None and held.identity == identity:
            return
        self._install(node_id, await asyncio.to_thread(self.issuer.issue, identity))

    def secret_set(self, node_id: str) -> ResourceSet | None:
        """The node's ``default`` and ``ROOTCA`` secrets, if it has any."""
        return self.sets.get(node_id)

    def forget(self, node_id: str) -> None:
        """The node disconnected: stop renewing and drop its key."""
        timer = self._timers.pop(node_id, None)
        if timer is not None:
            timer.cancel()
        self.certs.pop(node_id, None)
        self.sets.pop(node_id, None)

    def _install(self, node_id: str, cert: WorkloadCert) -> None:
        secrets = build_secrets(cert.chain_pem, cert.key_pem, cert.root_pem)
        self.sets[node_id] = ResourceSet.of(
            types.SECRET, (Resource.of(types.SECRET, resource_name(s), s) for s in secrets)
        )
        self.certs[node_id] = cert
        metrics.CERT_ISSUANCES.inc()
        log.info(
            "sds.issued",
            node=node_id,
            identity=str(cert.identity),
            serial=f"{cert.serial_number:x}",
            not_after=cert.not_after.isoformat(),
            renew_at=cert.renew_at.isoformat(),
        )
        self._schedule(node_id, cert.renew_at)

    def _schedule(self, node_id: str, when: datetime) -> None:
        delay = max(0.0, (when - self.issuer.clock()).total_seconds())
        old = self._timers.pop(node_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[node_id] = loop.call_later(delay, self._renew, node_id)

    def _renew(self, node_id: str) -> None:
        task = asyncio.ensure_future(self._rotate(node_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rotate(self, node_id: str) -> None:
        held = self.certs.get(node_id)
        if held is None:
            return
        cert = await asyncio.to_thread(self.issuer.issue, held.identity)
        if self.certs.get(node_id) is not held:
            return  # forgotten or replaced meanwhile
        self._install(node_id, cert)
        self.on_rotated(node_id)
