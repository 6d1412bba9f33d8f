"""The CA root in Kubernetes mode: one Secret, ``istio-ca-secret``, shared by every replica.

istiod's self-signed CA keeps its key and certificate in the Secret
``istio-ca-secret`` of its own namespace (keys ``ca-cert.pem``, ``ca-key.pem``,
``cert-chain.pem``, ``root-cert.pem``), so every replica signs with the same
root. Rules:

1. Kubernetes decides who creates it: a replica that finds no Secret makes a
   root and creates the Secret; if another replica's create won (409
   Conflict), it drops its own root and loads the winner's. So however many
   replicas race at start, the mesh has one root.
2. An existing Secret is never overwritten, and a Secret that does not hold
   a valid self-signed CA is refused with a ``CAError`` naming the Secret key,
   never regenerated (workloads would lose trust in each other).
3. A missing namespace is an error that says to create it, as Istio expects
   ``istio-system`` to exist before istiod starts.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ca.authority import KeyKind, SigningBundle, cert_to_pem, generate_workload_key
from ca.authority import private_key_to_pem as key_to_pem
from ca.errors import CAError, CAErrorKind
from ca.storage import (
    DEFAULT_ROOT_VALIDITY,
    build_root_cert,
    parse_key,
    parse_single_cert,
    self_signed_bundle,
)

log = structlog.get_logger("ca")

CA_SECRET = "istio-ca-secret"
CA_CERT, CA_KEY = "ca-cert.pem", "ca-key.pem"
CERT_CHAIN, ROOT_CERT = "cert-chain.pem", "root-cert.pem"


async def load_or_create_ca_secret(
    api: client.ApiClient,
    namespace: str,
    trust_domain: str,
    now: datetime,
    key_kind: KeyKind = KeyKind.ECDSA_P256,
) -> SigningBundle:
    """The mesh's CA from ``namespace/istio-ca-secret``, created by whoever comes first (rule 1)."""
    core = client.CoreV1Api(api)
    for _ in range(3):
        data = await _read(core, namespace)
        if data is not None:
            return _bundle(data, namespace, now)
        key = generate_workload_key(key_kind)
        root = build_root_cert(key, trust_domain, now, DEFAULT_ROOT_VALIDITY)
        body: Any = {
            "metadata": {"name": CA_SECRET, "namespace": namespace, "labels": {"app": "pyistiod"}},
            "type": "istio.io/ca-root",
            "data": {
                CA_CERT: _b64(cert_to_pem(root)),
                CA_KEY: _b64(key_to_pem(key)),
                CERT_CHAIN: "",
                ROOT_CERT: _b64(cert_to_pem(root)),
            },
        }
        try:
            await core.create_namespaced_secret(namespace, body)
        except ApiException as err:
            if err.status == 409:
                continue  # another replica created it first: load theirs
            raise _unusable(namespace, err) from err
        log.info("ca.root_created", secret=f"{namespace}/{CA_SECRET}")
        return self_signed_bundle(
            key, root, now, _where(namespace, CA_KEY), _where(namespace, CA_CERT)
        )
    raise CAError(
        CAErrorKind.CA_NOT_READY, f"{namespace}/{CA_SECRET} could neither be read nor created"
    )


async def read_root_pem(api: client.ApiClient, namespace: str) -> bytes:
    """The mesh root from the Secret, for a bootstrap to trust (CA_NOT_READY if none yet)."""
    data = await _read(client.CoreV1Api(api), namespace)
    if data is None:
        raise CAError(
            CAErrorKind.CA_NOT_READY,
            f"no {namespace}/{CA_SECRET} yet: start pyistiod serve in Kubernetes mode first",
        )
    return _decoded(data, ROOT_CERT, namespace)


async def _read(core: client.CoreV1Api, namespace: str) -> dict[str, str] | None:
    try:
        secret = await core.read_namespaced_secret(CA_SECRET, namespace)
    except ApiException as err:
        if err.status == 404:
            return None  # (a missing namespace shows at create)
        raise _unusable(namespace, err) from err
    return dict(secret.data or {})


def _bundle(data: dict[str, str], namespace: str, now: datetime) -> SigningBundle:
    key = parse_key(_decoded(data, CA_KEY, namespace), _where(namespace, CA_KEY))
    cert = parse_single_cert(_decoded(data, CA_CERT, namespace), _where(namespace, CA_CERT))
    return self_signed_bundle(key, cert, now, _where(namespace, CA_KEY), _where(namespace, CA_CERT))


def _decoded(data: dict[str, str], name: str, namespace: str) -> bytes:
    try:
        return base64.b64decode(data.get(name, ""), validate=True)
    except (binascii.Error, ValueError) as err:
        where = _where(namespace, name)
        raise CAError(CAErrorKind.FILE_CORRUPT, "is not valid base64", path=where) from err


def _unusable(namespace: str, err: ApiException) -> CAError:
    if err.status == 404:
        reason = f"namespace {namespace} does not exist: kubectl create namespace {namespace}"
    else:
        reason = f"the API server refused access to the CA Secret: {err.status} {err.reason}"
    return CAError(CAErrorKind.FILE_UNREADABLE, reason, path=f"{namespace}/{CA_SECRET}")


def _where(namespace: str, name: str) -> str:
    return f"Secret {namespace}/{CA_SECRET} key {name}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
