"""Gateway listeners, routes and SDS secrets for a router."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from gateway_mesh import FRONTEND, ROUTER, SHOP, VIRTUAL_SERVICES, gateway_model

from translators.envoy.listeners.gateway import build_gateway_listeners
from translators.envoy.routes.gateway import build_gateway_routes
from translators.envoy.tls.gateway_secrets import gateway_secrets
from translators.mesh.model.gateways import TlsCredential
from translators.mesh.model.policies import AuthorizationPolicy, AuthzAction, AuthzRule
from translators.mesh.model.proxy import ProxyType
from translators.mesh.model.services import labels_of
from translators.mesh.selection.gateway_binding import intersect


def listeners() -> dict[str, Any]:
    found = build_gateway_listeners(gateway_model(), ROUTER, VIRTUAL_SERVICES)
    return {str(listener.name): listener for listener in found}


def routes() -> dict[str, Any]:
    found = build_gateway_routes(gateway_model(), ROUTER, virtual_services=VIRTUAL_SERVICES)
    return {str(route.name): route for route in found}


def hcm_of(chain: Any) -> hcm_pb2.HttpConnectionManager:
    hcm = hcm_pb2.HttpConnectionManager()
    assert chain.filters[0].typed_config.Unpack(hcm)
    return hcm


def tcp_of(chain: Any) -> tcp_proxy_pb2.TcpProxy:
    tcp = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[0].typed_config.Unpack(tcp)
    return tcp


def tls_of(chain: Any) -> tls_pb2.DownstreamTlsContext:
    context = tls_pb2.DownstreamTlsContext()
    assert chain.transport_socket.typed_config.Unpack(context)
    return context


def test_one_listener_per_server_port_at_the_router_ip() -> None:
    found = listeners()
    assert sorted(found) == [f"127.0.50.1_{p}" for p in (3306, 443, 8080, 8081, 8443, 9443)]
    address = found["127.0.50.1_8080"].address.socket_address
    assert (address.address, address.port_value) == ("127.0.50.1", 8080)


def test_http_server_uses_rds_http_port() -> None:
    (chain,) = listeners()["127.0.50.1_8080"].filter_chains
    hcm = hcm_of(chain)
    assert hcm.rds.route_config_name == "http.8080"
    assert hcm.strip_any_host_port
    vhosts = routes()["http.8080"].virtual_hosts
    assert [(v.name, list(v.domains)) for v in vhosts] == [(f"{SHOP}:8080", [SHOP])]
    assert vhosts[0].routes[0].route.cluster == f"outbound|80||{FRONTEND}"
    assert all(v.include_request_attempt_count for r in routes().values() for v in r.virtual_hosts)


def test_https_simple_terminates_with_credential_over_sds() -> None:
    listener = listeners()["127.0.50.1_8443"]
    assert [f.name for f in listener.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    (chain,) = listener.filter_chains
    assert list(chain.filter_chain_match.server_names) == [SHOP]
    context = tls_of(chain)
    sds = context.common_tls_context.tls_certificate_sds_secret_configs
    assert [s.name for s in sds] == ["kubernetes://shop-credential"]
    assert not context.require_client_certificate.value
    assert list(context.common_tls_context.alpn_protocols) == ["h2", "http/1.1"]
    name = "https.8443.p8443.ingress.istio-system"
    assert hcm_of(chain).rds.route_config_name == name
    assert [v.name for v in routes()[name].virtual_hosts] == [f"{SHOP}:8443"]


def test_https_mutual_requires_client_cert_verified_by_cacert() -> None:
    (chain,) = listeners()["127.0.50.1_9443"].filter_chains
    context = tls_of(chain)
    assert context.require_client_certificate.value
    combined = context.common_tls_context.combined_validation_context
    assert (
        combined.validation_context_sds_secret_config.name == "kubernetes://mtls-credential-cacert"
    )


def test_https_redirect_requires_tls_on_every_vhost() -> None:
    vhosts = routes()["http.8081"].virtual_hosts
    assert {v.name for v in vhosts} == {"*:8081", f"{SHOP}:8081"}
    assert all(v.require_tls == route_components_pb2.VirtualHost.ALL for v in vhosts)


def test_passthrough_routes_by_sni_to_the_tls_route_destination() -> None:
    (chain,) = listeners()["127.0.50.1_443"].filter_chains
    assert list(chain.filter_chain_match.server_names) == ["secure.example.com"]
    assert not chain.HasField("transport_socket")
    assert tcp_of(chain).cluster == "outbound|443||secure-backend.default.svc.cluster.local"


def test_passthrough_without_virtual_service_goes_to_the_sni_service() -> None:
    model = gateway_model()
    server = replace(model.gateways[0].servers[4], hosts=model.gateways[0].servers[5].hosts)
    gateway = replace(model.gateways[0], servers=(replace(server, port=3306),))
    model = replace(model, gateways=(gateway,))
    (listener,) = build_gateway_listeners(model, ROUTER, ())
    (chain,) = listener.filter_chains
    assert list(chain.filter_chain_match.server_names) == ["db.default.svc.cluster.local"]
    assert tcp_of(chain).cluster == "outbound|3306||db.default.svc.cluster.local"


def test_tcp_server_proxies_to_the_tcp_route() -> None:
    (chain,) = listeners()["127.0.50.1_3306"].filter_chains
    assert tcp_of(chain).cluster == "outbound|3306||db.default.svc.cluster.local"


def test_unbound_or_unselected() -> None:
    model = gateway_model()
    assert build_gateway_routes(model, ROUTER, virtual_services=())[0].virtual_hosts == []
    other = replace(ROUTER, labels=labels_of({"istio": "egressgateway"}))
    assert build_gateway_listeners(model, other, VIRTUAL_SERVICES) == []
    sidecar = replace(ROUTER, type=ProxyType.SIDECAR)
    assert gateway_secrets(model, sidecar) == []


def test_virtual_service_of_another_namespace_is_refused_by_namespaced_host() -> None:
    model = gateway_model()
    gateway = model.gateways[0]
    first = gateway.servers[0]
    only_prod = replace(first, hosts=(replace(first.hosts[0], namespace="prod"),))
    model = replace(model, gateways=(replace(gateway, servers=(only_prod,)),))
    (config,) = build_gateway_routes(model, ROUTER, virtual_services=VIRTUAL_SERVICES)
    assert list(config.virtual_hosts) == []


def test_gateway_secrets_serve_the_credentials() -> None:
    model = gateway_model()
    secrets = {s.name: s for s in gateway_secrets(model, ROUTER)}
    assert sorted(secrets) == [
        "kubernetes://mtls-credential",
        "kubernetes://mtls-credential-cacert",
        "kubernetes://shop-credential",
    ]
    pair = model.credential("istio-system", "shop-credential")
    assert pair is not None
    shop = secrets["kubernetes://shop-credential"].tls_certificate
    assert shop.certificate_chain.inline_bytes == pair.cert_pem
    assert shop.private_key.inline_bytes == pair.key_pem
    ca = secrets["kubernetes://mtls-credential-cacert"].validation_context
    assert ca.trusted_ca.inline_bytes == pair.cert_pem or ca.trusted_ca.inline_bytes


def test_a_cacert_secret_comes_before_the_credentials_own_ca() -> None:
    """Istio's GetCaCert reads ``NAME-cacert`` first and falls back to ``NAME``'s ca.crt."""
    model = gateway_model()
    own = model.credential("istio-system", "mtls-credential")
    assert own is not None and own.ca_pem
    other_ca = b"-----BEGIN CERTIFICATE-----\nother\n-----END CERTIFICATE-----\n"
    holder = TlsCredential("istio-system", "mtls-credential-cacert", b"", b"", ca_pem=other_ca)

    def served_ca(credentials: tuple[TlsCredential, ...]) -> bytes:
        found = {
            s.name: s for s in gateway_secrets(replace(model, credentials=credentials), ROUTER)
        }
        return bytes(
            found["kubernetes://mtls-credential-cacert"].validation_context.trusted_ca.inline_bytes
        )

    assert served_ca(model.credentials) == own.ca_pem
    assert served_ca((*model.credentials, holder)) == other_ca


def test_missing_credential_gives_no_secret() -> None:
    model = replace(gateway_model(), credentials=())
    assert gateway_secrets(model, ROUTER) == []


def test_host_intersection() -> None:
    assert intersect("*.example.com", SHOP) == SHOP
    assert intersect(SHOP, "*") == SHOP
    assert intersect("*.example.com", "*.shop.example.com") == "*.shop.example.com"
    assert intersect("*.example.com", "example.com") is None
    assert intersect("a.com", "b.com") is None


def test_authorization_policies_selecting_the_gateway_become_its_rbac() -> None:
    """HTTP: RBAC after jwt_authn (none here) and before fault, CORS and the router; TCP:
    network RBAC before tcp_proxy. A policy selecting other pods changes nothing."""
    deny_all = AuthorizationPolicy(
        "istio-system", "deny", AuthzAction.DENY, labels_of({"istio": "ingressgateway"}),
        (AuthzRule(),),
    )  # fmt: skip
    other = AuthorizationPolicy("istio-system", "other", selector=labels_of({"app": "x"}))
    model = gateway_model()
    policies = replace(model.policies, authorization_policies=(deny_all, other))
    found = {
        str(v.name): v
        for v in build_gateway_listeners(
            replace(model, policies=policies), ROUTER, VIRTUAL_SERVICES
        )
    }
    (http,) = found["127.0.50.1_8080"].filter_chains
    assert [f.name for f in hcm_of(http).http_filters] == [
        "envoy.filters.http.rbac",
        "envoy.filters.http.fault",
        "envoy.filters.http.cors",
        "envoy.filters.http.router",
    ]
    (tcp,) = found["127.0.50.1_3306"].filter_chains
    assert [f.name for f in tcp.filters] == [
        "envoy.filters.network.rbac",
        "envoy.filters.network.tcp_proxy",
    ]
    unselected = replace(policies, authorization_policies=(other,))
    (plain,) = {
        str(v.name): v
        for v in build_gateway_listeners(
            replace(model, policies=unselected), ROUTER, VIRTUAL_SERVICES
        )
    }["127.0.50.1_3306"].filter_chains
    assert [f.name for f in plain.filters] == ["envoy.filters.network.tcp_proxy"]
