"""istiod's validating admission webhook: bad Istio objects are refused at ``kubectl apply``.

The API server sends an ``admission.k8s.io/v1`` AdmissionReview for each
create or update of a kind pyistiod reads; the object goes through the very
readers ``pyistiod validate`` and ``serve`` use, and any error denies it with
the object, field and reason. Invariants:

1. ``review`` is pure: an AdmissionReview in, the AdmissionReview answer out.
   It never raises on bad input: what it cannot read it denies, saying why.
2. Only what the readers refuse is denied; a kind pyistiod does not read is
   allowed (the configuration does not send those anyway), as is every
   delete. What the readers warn about (Istio's validation warnings: a field
   not applied yet, a deprecated form) goes back as admission warnings,
   which ``kubectl`` prints.
3. The HTTPS server presents a certificate of pyistiod's own CA, for the
   webhook's IP address and istiod's DNS name; the API server trusts it
   through the configuration's ``caBundle``.
4. Outside a cluster, ``admission_webhook`` writes the
   ValidatingWebhookConfiguration itself, pointing the API server at the
   webhook's URL (Istio's ``failurePolicy: Fail`` once the webhook serves,
   ``sideEffects: None``), and removes it when pyistiod stops.
5. In a cluster the configuration comes from ``deploy/`` with a Service
   reference and no caBundle; one replica, the holder of the Lease
   ``istio-validation-controller-election``, patches the caBundle (every
   replica has the same root, from ``istio-ca-secret``) and the failure
   policy, as istiod's validation controller does; it is left installed
   when pyistiod stops.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection.electionconfig import Config
from kubernetes_asyncio.leaderelection.leaderelection import LeaderElection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from ca.authority import SigningBundle
from pyistiod.istiod_cert import issue_istiod_cert
from pyistiod.settings import Settings, host_port
from translators.mesh.documents.fields import is_ip
from translators.mesh.documents.kinds import parse_object
from translators.sources.kubernetes.resources import RESOURCES
from translators.sources.kubernetes.source import NO_DOCUMENT
from xds_server.errors import SourceUnavailable

log = structlog.get_logger("webhook")

CONFIGURATION = "pyistiod-validator"
WEBHOOK = "validation.istio.io"
PATH = "/validate"


def review(body: object) -> dict[str, Any]:
    """The AdmissionReview answer to ``body`` (invariants 1, 2)."""
    request = body.get("request") if isinstance(body, Mapping) else None
    if not isinstance(request, Mapping):
        return _answer("", False, "not an admission.k8s.io/v1 AdmissionReview with a request")
    uid = str(request.get("uid", ""))
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return _answer(uid, True)
    obj = request.get("object")
    if not isinstance(obj, Mapping):
        return _answer(uid, False, "the request holds no object")
    namespaced = _with_namespace(obj, request.get("namespace"))
    result = parse_object(namespaced, path="", document=NO_DOCUMENT)
    if result.errors:
        return _answer(uid, False, "; ".join(str(e) for e in result.errors))
    answer = _answer(uid, True)  # valid, or a kind pyistiod does not read
    if result.warnings:  # Istio's validation warnings, which kubectl prints as "Warning: ..."
        warnings = [w.removeprefix(": ")[:MAX_WARNING] for w in result.warnings]
        answer["response"]["warnings"] = warnings[:MAX_WARNINGS]
    return answer


MAX_WARNING = 256
"""Characters of one admission warning (the API server truncates longer ones)."""
MAX_WARNINGS = 10


def _with_namespace(obj: Mapping[str, Any], namespace: object) -> Mapping[str, Any]:
    """The object with the request's namespace when it names none (``kubectl -n ns``)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("namespace") or not namespace:
        return obj
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


def _answer(uid: str, allowed: bool, message: str = "") -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 400, "reason": "Invalid", "message": message[:4000]}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


async def _handle(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    answer = review(body)
    response = answer["response"]
    if not response["allowed"]:
        log.info("webhook.denied", uid=response["uid"], reason=response["status"]["message"])
    return web.json_response(answer)


class WebhookServer:
    """The HTTPS server of the webhook (invariant 3)."""

    def __init__(self, chain_pem: bytes, key_pem: bytes) -> None:
        self._context = _server_context(chain_pem, key_pem)
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(PATH, _handle)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self, host: str, port: int) -> None:
        """Serve on ``host:port`` until ``stop``."""
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, ssl_context=self._context).start()

    async def stop(self) -> None:
        """Stop serving."""
        await self._runner.cleanup()


@contextlib.asynccontextmanager
async def admission_webhook(
    settings: Settings, bundle: SigningBundle, api: client.ApiClient, now: datetime
) -> AsyncIterator[WebhookServer]:
    """The webhook serving on ``settings.webhook_address``, made known to the API server
    (invariants 4, 5).

    Installed in a cluster (the configuration exists and names a Service), the
    holder of a Lease patches its ``caBundle``; outside a cluster, pyistiod
    registers the configuration by URL and removes it when the context ends (a
    ``failurePolicy: Fail`` webhook left pointing at a stopped pyistiod would
    refuse every Istio object written meanwhile).
    """
    address, system_namespace = settings.webhook_address, settings.system_namespace
    host, port = host_port(address)
    serving = issue_istiod_cert(
        bundle, settings.trust_domain, system_namespace, now, [host] if is_ip(host) else []
    )
    async with contextlib.AsyncExitStack() as stack:
        server = WebhookServer(serving.chain_pem, serving.key_pem)
        stack.push_async_callback(server.stop)
        await server.start(host, port)
        try:
            if await _installed(api):
                leading = asyncio.create_task(_patch_while_leading(api, system_namespace, bundle))
                stack.push_async_callback(_cancel, leading)
            else:
                await register(api, f"https://{address}{PATH}", bundle.roots_pem)
                stack.push_async_callback(_deregister, api)
        except ApiException as err:
            raise SourceUnavailable(
                "kubernetes", f"cannot set up the admission webhook: {err.status} {err.reason}"
            ) from err
        yield server


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _installed(api: client.ApiClient) -> bool:
    """Whether the configuration was installed with a Service reference (``deploy/``)."""
    try:
        found = await client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration(
            CONFIGURATION
        )
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return any(w.client_config.service is not None for w in found.webhooks or ())


LEASE = "istio-validation-controller-election"
"""The Lease whose holder patches the webhook configuration (istiod's election name)."""


async def _patch_while_leading(
    api: client.ApiClient, namespace: str, bundle: SigningBundle
) -> None:
    """Run for the Lease; while holding it, keep the configuration's caBundle on our root."""
    me = f"{socket.gethostname()}-{secrets.token_hex(3)}"

    async def lead() -> None:
        await patch_ca_bundle(api, bundle.roots_pem)
        log.info("webhook.ca_bundle_patched", configuration=CONFIGURATION, holder=me)

    async def lost() -> None:
        log.info("webhook.lease_lost", holder=me)

    lock = LeaseLock(LEASE, namespace, me, api)
    while True:  # run returns when the lease is lost: stand again
        election = LeaderElection(Config(lock, 15, 10, 2, lead, lost))
        await election.run()
        await asyncio.sleep(2)


async def patch_ca_bundle(api: client.ApiClient, root_pem: bytes) -> None:
    """Set every webhook's caBundle to ``root_pem`` and its failurePolicy to Fail (istiod's
    validation controller does the same once it serves)."""
    admission = client.AdmissionregistrationV1Api(api)
    encoded = base64.b64encode(root_pem).decode()
    for attempt in range(5):
        current = await admission.read_validating_webhook_configuration(CONFIGURATION)
        for hook in current.webhooks or ():
            hook.client_config.ca_bundle = encoded
            hook.failure_policy = "Fail"
        try:
            await admission.replace_validating_webhook_configuration(CONFIGURATION, current)
            return
        except ApiException as err:
            # 409: another writer came in between; read again, a few times, then give up.
            if err.status != 409 or attempt == 4:
                raise


async def _deregister(api: client.ApiClient) -> None:
    try:
        await client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(
            CONFIGURATION
        )
        log.info("webhook.deregistered", configuration=CONFIGURATION)
    except (ApiException, OSError) as err:
        log.warning("webhook.deregister_failed", configuration=CONFIGURATION, error=str(err)[:200])


def _server_context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:  # ssl loads keys from files only
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_bytes(chain_pem)
        key.touch(0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(cert, key)
    return context


def configuration(url: str, ca_bundle_pem: bytes) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration that sends pyistiod's Istio kinds to ``url``."""
    groups: dict[str, set[str]] = {}
    for resource in RESOURCES:
        if resource.needs_crd:
            group = resource.api_version.split("/")[0]
            groups.setdefault(group, set()).add(resource.plural)
    rules = [
        {
            "operations": ["CREATE", "UPDATE"],
            "apiGroups": [group],
            "apiVersions": ["*"],
            "resources": sorted(plurals),
        }
        for group, plurals in sorted(groups.items())
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION, "labels": {"app": "pyistiod"}},
        "webhooks": [
            {
                "name": WEBHOOK,
                "clientConfig": {
                    "url": url,
                    "caBundle": base64.b64encode(ca_bundle_pem).decode(),
                },
                "rules": rules,
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
        ],
    }


async def register(api: client.ApiClient, url: str, ca_bundle_pem: bytes) -> None:
    """Create (or replace) the configuration pointing the API server at ``url`` (invariant 4)."""
    admission = client.AdmissionregistrationV1Api(api)
    body: Any = configuration(url, ca_bundle_pem)  # the client sends a dict as it is
    try:
        await admission.create_validating_webhook_configuration(body)
    except ApiException as err:
        if err.status != 409:
            raise
        current = await admission.read_validating_webhook_configuration(CONFIGURATION)
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        await admission.replace_validating_webhook_configuration(CONFIGURATION, body)
    log.info("webhook.registered", configuration=CONFIGURATION, url=url)
