"""``istio.v1.auth.IstioCertificateService/CreateCertificate`` on the TLS port.

The identity comes from the authenticated caller (its workload token), never
from the CSR alone: the CSR may only ask for that identity. Errors reach the
caller as the CA error's gRPC status with an opaque message; the log gets the
full reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
import structlog

from ca.authority import SigningBundle, sign
from ca.errors import CAError, CAErrorKind
from ca.gen import istio_ca_pb2
from xds_server import metrics
from xds_server.transport.stream import Authenticator

log = structlog.get_logger("ca")

SERVICE = "istio.v1.auth.IstioCertificateService"


class CertificateService:
    """Signs CSRs for authenticated workloads."""

    def __init__(
        self,
        bundle: SigningBundle,
        authenticate: Authenticator,
        default_ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.bundle = bundle
        self.authenticate = authenticate
        self.default_ttl = default_ttl
        self.clock = clock

    async def create_certificate(self, request: Any, context: Any) -> Any:
        """Sign ``request.csr`` for the caller; the chain ends with the root, as Istio's does."""
        metrics.CSR_REQUESTS.inc()
        try:
            identity = await self.authenticate(context)
            if identity is None:
                raise CAError(CAErrorKind.UNAUTHENTICATED, "no workload token presented over TLS")
            ttl = (
                timedelta(seconds=request.validity_duration)
                if request.validity_duration
                else self.default_ttl
            )
            issued = await asyncio.to_thread(
                sign, self.bundle, request.csr.encode(), identity, ttl, self.clock()
            )
        except CAError as err:
            if err.kind is CAErrorKind.UNAUTHENTICATED:
                metrics.AUTHN_FAILURES.inc()
            log.warning("ca.refused", peer=context.peer(), kind=err.kind.value, reason=str(err))
            await context.abort(grpc.StatusCode[err.grpc_status.value], err.client_message)
        metrics.CERT_ISSUANCES.inc()
        log.info("ca.issued", identity=str(identity), serial=f"{issued.serial_number:x}")
        intermediates = issued.chain_pem[len(issued.cert_pem) :]
        chain = [issued.cert_pem.decode()] + ([intermediates.decode()] if intermediates else [])
        chain.append(issued.root_pem.decode())
        return istio_ca_pb2.IstioCertificateResponse(cert_chain=chain)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to register on the server."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateCertificate": grpc.unary_unary_rpc_method_handler(
                    self.create_certificate,
                    request_deserializer=istio_ca_pb2.IstioCertificateRequest.FromString,
                    response_serializer=istio_ca_pb2.IstioCertificateResponse.SerializeToString,
                )
            },
        )
