"""A small mesh with an ingress gateway, for the gateway translator tests.

Gateway ``istio-system/ingress`` (selector ``istio=ingressgateway``) with
servers: 8080 HTTP ``shop.example.com``; 8443 HTTPS SIMPLE (credential
``shop-credential``); 9443 HTTPS MUTUAL (credential ``mtls-credential``,
its CA in ``ca.crt``); 8081 HTTP with ``httpsRedirect`` for ``*``; 443 TLS
PASSTHROUGH ``secure.example.com``; 3306 TCP. VirtualServices: ``shop``
binds shop.example.com to ``frontend``, ``secure`` routes SNI
secure.example.com to ``secure-backend`` and ``db`` sends TCP 3306 to ``db``.
"""

from __future__ import annotations

from gateway_example import self_signed

from translators.mesh.model.gateways import (
    Gateway,
    GatewayHost,
    GatewayServer,
    ServerProtocol,
    ServerTls,
    TlsCredential,
    TlsMode,
)
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.routing import (
    Destination,
    HttpRoute,
    L4Match,
    L4Route,
    RouteDestination,
    VirtualService,
)
from translators.mesh.model.services import ObjectKey, Protocol, Service, ServicePort, labels_of

FRONTEND = "frontend.default.svc.cluster.local"
SECURE = "secure-backend.default.svc.cluster.local"
DB = "db.default.svc.cluster.local"
SHOP = "shop.example.com"
ANY = "*"


def service(name: str, port: int, protocol: Protocol) -> Service:
    """A Kubernetes Service in ``default`` with one port."""
    return Service(
        hostname=f"{name}.default.svc.cluster.local",
        namespace="default",
        name=name,
        ports=(ServicePort("p", port, protocol),),
        source=ObjectKey("Service", "default", name),
    )


def server(
    port: int, protocol: ServerProtocol, host: str = SHOP, tls: ServerTls | None = None
) -> GatewayServer:
    """A server for ``host`` (any namespace)."""
    return GatewayServer(port, f"p{port}", protocol, (GatewayHost("*", host),), tls=tls)


INGRESS = Gateway(
    "istio-system",
    "ingress",
    labels_of({"istio": "ingressgateway"}),
    (
        server(8080, ServerProtocol.HTTP),
        server(8443, ServerProtocol.HTTPS, tls=ServerTls(credential_name="shop-credential")),
        server(
            9443,
            ServerProtocol.HTTPS,
            tls=ServerTls(TlsMode.MUTUAL, credential_name="mtls-credential"),
        ),
        server(8081, ServerProtocol.HTTP, host=ANY, tls=ServerTls(https_redirect=True)),
        server(443, ServerProtocol.TLS, "secure.example.com", ServerTls(TlsMode.PASSTHROUGH)),
        server(3306, ServerProtocol.TCP, DB),
    ),
)


def route_to(host: str, port: int) -> tuple[RouteDestination, ...]:
    """One destination."""
    return (RouteDestination(Destination(host, port=port)),)


GATEWAY_REF = ("istio-system/ingress",)
VIRTUAL_SERVICES = (
    VirtualService(
        "default",
        "shop",
        (SHOP,),
        GATEWAY_REF,
        http=(HttpRoute(route=route_to(FRONTEND, 80)),),
    ),
    VirtualService(
        "default",
        "secure",
        ("secure.example.com",),
        GATEWAY_REF,
        tls=(
            L4Route(
                matches=(L4Match(sni_hosts=("secure.example.com",)),),
                route=route_to(SECURE, 443),
            ),
        ),
    ),
    VirtualService("default", "db", (DB,), GATEWAY_REF, tcp=(L4Route(route=route_to(DB, 3306)),)),
)

ROUTER = Proxy(
    ProxyType.ROUTER,
    "127.0.50.1",
    "ingress-1",
    "istio-system",
    "istio-system.svc.cluster.local",
    labels=labels_of({"istio": "ingressgateway"}),
)


def gateway_model() -> MeshModel:
    """The mesh above with freshly generated credentials."""
    cert, key = self_signed(SHOP)
    return MeshModel.build(
        [
            service("frontend", 80, Protocol.HTTP),
            service("secure-backend", 443, Protocol.TLS),
            service("db", 3306, Protocol.TCP),
        ],
        {},
        gateways=[INGRESS],
        credentials=[
            TlsCredential("istio-system", "shop-credential", cert, key),
            TlsCredential("istio-system", "mtls-credential", cert, key, ca_pem=cert),
        ],
    )
