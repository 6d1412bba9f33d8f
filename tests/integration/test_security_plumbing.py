"""TLS xDS, SDS and CreateCertificate over real gRPC on loopback, in process.

A private key only reaches its owner: secrets need TLS plus a valid token for
the very identity the node claims; everything else is refused with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from prometheus_client import REGISTRY
from xds_client import (
    ADS,
    FRONTEND,
    Stream,
    expect_closed,
    node,
    open_stream,
    secure_channel,
    uri_san,
)

from ca import tokens
from ca.authority import generate_workload_key, make_csr
from ca.gen import istio_ca_pb2
from ca.spiffe import SpiffeId
from ca.storage import load_or_create_token_key
from pyistiod.cli import EXAMPLE_MESH
from pyistiod.serve import ControlPlane, start_control_plane
from pyistiod.settings import Settings
from translators.sources.files import load_dir
from xds_server import types

FRONT_ID = SpiffeId("cluster.local", "default", "frontend")
BACK_ID = SpiffeId("cluster.local", "default", "backend")
CREATE = "/istio.v1.auth.IstioCertificateService/CreateCertificate"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        config_dir=EXAMPLE_MESH,
        xds_address="127.0.0.1:0",
        secure_xds_address="127.0.0.1:0",
        monitoring_address="",
        ca_dir=tmp_path / "ca",
        workload_cert_ttl=timedelta(seconds=4),
    )
    cp = await start_control_plane(settings, load_dir(EXAMPLE_MESH).model)
    cp.token_key = load_or_create_token_key(tmp_path / "ca")  # type: ignore[attr-defined]
    yield cp
    await cp.server.stop(0)


def token(cp: ControlPlane, who: SpiffeId, ttl: timedelta = timedelta(hours=1)) -> str:
    return tokens.issue(cp.token_key, who, datetime.now(UTC), ttl)  # type: ignore[attr-defined]


def secret_request(node_id: str = FRONTEND) -> discovery_pb2.DiscoveryRequest:
    return discovery_pb2.DiscoveryRequest(
        node=node(node_id), type_url=types.SECRET, resource_names=["default", "ROOTCA"]
    )


async def test_authenticated_owner_gets_its_certificate_and_key(plane: ControlPlane) -> None:
    async with secure_channel(plane.secure_xds_port, plane.root_pem, token(plane, FRONT_ID)) as ch:
        s = open_stream(ch, ADS)
        await s.send(secret_request())
        resp = await s.expect_response()
        secrets = {
            sec.name: sec for sec in (secret_pb2.Secret.FromString(r.value) for r in resp.resources)
        }
        assert set(secrets) == {"default", "ROOTCA"}
        chain = secrets["default"].tls_certificate.certificate_chain.inline_bytes
        key = load_pem_private_key(
            secrets["default"].tls_certificate.private_key.inline_bytes, None
        )
        assert uri_san(chain) == "spiffe://cluster.local/ns/default/sa/frontend"
        leaf = x509.load_pem_x509_certificates(chain)[0]
        assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
        assert secrets["ROOTCA"].validation_context.trusted_ca.inline_bytes == plane.root_pem
        await s.close()


async def test_certificate_is_rotated_over_the_open_stream(plane: ControlPlane) -> None:
    async with secure_channel(plane.secure_xds_port, plane.root_pem, token(plane, FRONT_ID)) as ch:
        s = open_stream(ch, ADS)
        await s.send(secret_request())
        first = await s.expect_response()
        await s.send(
            discovery_pb2.DiscoveryRequest(
                type_url=types.SECRET,
                resource_names=["default", "ROOTCA"],
                version_info=first.version_info,
                response_nonce=first.nonce,
            )
        )
        rotated = await s.expect_response(timeout=6)  # TTL 4 s: renewed at about 2 s
        serials = []
        for resp in (first, rotated):
            default = next(
                secret_pb2.Secret.FromString(r.value)
                for r in resp.resources
                if secret_pb2.Secret.FromString(r.value).name == "default"
            )
            chain = default.tls_certificate.certificate_chain.inline_bytes
            serials.append(x509.load_pem_x509_certificates(chain)[0].serial_number)
        assert serials[0] != serials[1]
        await s.close()


def denied_count() -> float:
    value = REGISTRY.get_sample_value(
        "pyistiod_xds_permission_denied_total", {"reason": "permission_denied"}
    )
    return value or 0.0


async def expect_secrets_refused(s: Stream) -> None:
    """On ADS a denied secret request gets no answer (and is counted); the stream lives on."""
    before = denied_count()
    await s.send(secret_request())
    await s.expect_no_response()
    assert denied_count() == before + 1
    await s.send(discovery_pb2.DiscoveryRequest(type_url=types.CLUSTER))
    assert (await s.expect_response()).type_url == types.CLUSTER


async def test_unauthenticated_proxy_is_denied_secrets(plane: ControlPlane) -> None:
    async with secure_channel(plane.secure_xds_port, plane.root_pem, None) as ch:
        await expect_secrets_refused(open_stream(ch, ADS))


async def test_plain_text_port_never_serves_secrets_even_with_a_token(
    plane: ControlPlane,
) -> None:
    call = grpc.aio.insecure_channel(f"127.0.0.1:{plane.xds_port}")
    async with call as ch:
        bearer = (("authorization", f"Bearer {token(plane, FRONT_ID)}"),)
        await expect_secrets_refused(open_stream(ch, ADS, metadata=bearer))


async def test_proxy_claiming_another_identity_is_denied(plane: ControlPlane) -> None:
    async with secure_channel(plane.secure_xds_port, plane.root_pem, token(plane, BACK_ID)) as ch:
        reason = await expect_closed(
            ch, secret_request(FRONTEND), grpc.StatusCode.PERMISSION_DENIED
        )
        assert "authenticated as spiffe://cluster.local/ns/default/sa/backend" in reason


async def test_invalid_token_is_unauthenticated(plane: ControlPlane) -> None:
    expired = token(plane, FRONT_ID, ttl=timedelta(seconds=-1))
    async with secure_channel(plane.secure_xds_port, plane.root_pem, expired) as ch:
        reason = await expect_closed(ch, secret_request(), grpc.StatusCode.UNAUTHENTICATED)
        assert "expired" in reason


async def create(
    ch: grpc.aio.Channel, csr: bytes, validity: int = 0
) -> istio_ca_pb2.IstioCertificateResponse:
    call = ch.unary_unary(
        CREATE,
        request_serializer=istio_ca_pb2.IstioCertificateRequest.SerializeToString,
        response_deserializer=istio_ca_pb2.IstioCertificateResponse.FromString,
    )
    return await call(
        istio_ca_pb2.IstioCertificateRequest(csr=csr.decode(), validity_duration=validity)
    )


async def test_create_certificate_signs_for_the_caller_only(plane: ControlPlane) -> None:
    key = generate_workload_key()
    async with secure_channel(plane.secure_xds_port, plane.root_pem, token(plane, FRONT_ID)) as ch:
        resp = await create(ch, make_csr(key, FRONT_ID), validity=3600)
        assert uri_san(resp.cert_chain[0].encode()) == str(FRONT_ID)
        assert resp.cert_chain[-1].encode() == plane.root_pem
        for csr, validity, code in (
            (make_csr(key, BACK_ID), 3600, grpc.StatusCode.PERMISSION_DENIED),
            (
                b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n",
                3600,
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (make_csr(key, FRONT_ID), 10**9, grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create(ch, csr, validity)
            assert err.value.code() == code
    async with secure_channel(plane.secure_xds_port, plane.root_pem, None) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(ch, make_csr(key, FRONT_ID))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_standalone_secret_discovery_service_serves_the_owner(plane: ControlPlane) -> None:
    sds = "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets"
    async with secure_channel(plane.secure_xds_port, plane.root_pem, token(plane, FRONT_ID)) as ch:
        s = open_stream(ch, sds)
        await s.send(discovery_pb2.DiscoveryRequest(node=node(), resource_names=["default"]))
        resp = await s.expect_response()
        assert resp.type_url == types.SECRET
        assert [secret_pb2.Secret.FromString(r.value).name for r in resp.resources] == ["default"]
        await s.close()
    async with secure_channel(plane.secure_xds_port, plane.root_pem, None) as ch:
        s = open_stream(ch, sds)
        await s.send(discovery_pb2.DiscoveryRequest(node=node(), resource_names=["default"]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.expect_response()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
