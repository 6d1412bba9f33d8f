"""Mutual TLS: auto mTLS on outbound clusters and endpoints, DestinationRule TLS, inbound chains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy_validate import envoy_validate
from sample_mesh import (
    API,
    BACKEND,
    BACKEND_PROXY,
    DATA_PROXY,
    DB,
    FRONTEND_PROXY,
    PASSTHROUGH,
    ROUTER,
    meshed_model,
)
from test_envoy_accepts_config import inlined_config

from translators.envoy.clusters import build_clusters
from translators.envoy.endpoints import build_endpoints
from translators.envoy.listeners.sidecar import build_listeners
from translators.envoy.resources import build_resources
from translators.mesh.model.policies import (
    ClientTls,
    ClientTlsMode,
    DestinationRule,
    MtlsMode,
    PeerAuthentication,
    Policies,
    PortTrafficPolicy,
    TrafficPolicy,
)
from translators.mesh.model.proxy import Proxy
from translators.mesh.model.services import labels_of


def cluster(policies: Policies, name: str) -> cluster_pb2.Cluster:
    found = {c.name: c for c in build_clusters(meshed_model(policies), ROUTER)}
    return found[name]


def upstream(socket: Any) -> tls_pb2.UpstreamTlsContext:
    assert socket.name == "envoy.transport_sockets.tls"
    context = tls_pb2.UpstreamTlsContext()
    assert socket.typed_config.Unpack(context)
    return context


def dr(host: str, tls: ClientTls | None, *levels: PortTrafficPolicy) -> Policies:
    rule = DestinationRule("default", "dr", host, TrafficPolicy(tls, levels))
    return Policies.build(destination_rules=(rule,))


def sds_names(context: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext) -> list[str]:
    common = context.common_tls_context
    certs = [s.name for s in common.tls_certificate_sds_secret_configs]
    root = common.combined_validation_context.validation_context_sds_secret_config
    assert root.sds_config.HasField("ads") and all(
        s.sds_config.HasField("ads") for s in common.tls_certificate_sds_secret_configs
    )
    return [*certs, root.name]


# --- client side: auto mTLS ---------------------------------------------------------------


def test_auto_mtls_transport_socket_matches() -> None:
    c = cluster(Policies(), f"outbound|9080||{BACKEND}")
    assert not c.HasField("transport_socket")
    istio, disabled = c.transport_socket_matches
    assert (istio.name, dict(istio.match)) == ("tlsMode-istio", {"tlsMode": "istio"})
    context = upstream(istio.transport_socket)
    assert context.sni == f"outbound_.9080_._.{BACKEND}"
    assert list(context.common_tls_context.alpn_protocols) == ["istio-peer-exchange", "istio"]
    assert sds_names(context) == ["default", "ROOTCA"]
    sans = context.common_tls_context.combined_validation_context.default_validation_context
    assert [m.matcher.exact for m in sans.match_typed_subject_alt_names] == [
        "spiffe://cluster.local/ns/default/sa/backend"
    ]
    assert (disabled.name, dict(disabled.match)) == ("tlsMode-disabled", {})
    assert disabled.transport_socket.name == "envoy.transport_sockets.raw_buffer"


def test_auto_mtls_offers_h2_for_grpc() -> None:
    c = cluster(Policies(), f"outbound|9090||{BACKEND}")
    alpn = upstream(c.transport_socket_matches[0].transport_socket).common_tls_context
    assert list(alpn.alpn_protocols) == ["istio-peer-exchange", "istio", "h2"]


def test_no_auto_mtls_for_passthrough() -> None:
    c = cluster(Policies(), f"outbound|8443||{PASSTHROUGH}")
    assert not c.transport_socket_matches and not c.HasField("transport_socket")


def test_endpoint_metadata_marks_sidecars() -> None:
    clas = {c.cluster_name: c for c in build_endpoints(meshed_model(), ROUTER)}
    (backend,) = clas[f"outbound|9080||{BACKEND}"].endpoints[0].lb_endpoints
    (db,) = clas[f"outbound|5432||{DB}"].endpoints[0].lb_endpoints
    meta = backend.metadata.filter_metadata["envoy.transport_socket_match"]
    assert dict(meta) == {"tlsMode": "istio"}
    assert "envoy.transport_socket_match" not in db.metadata.filter_metadata


def test_peer_authentication_disable_turns_endpoint_plaintext() -> None:
    pa = PeerAuthentication("default", "off", labels_of({"app": "backend"}), MtlsMode.DISABLE)
    model = meshed_model(Policies.build(peer_authentications=(pa,)))
    clas = {c.cluster_name: c for c in build_endpoints(model, ROUTER)}
    (backend,) = clas[f"outbound|9080||{BACKEND}"].endpoints[0].lb_endpoints
    assert "envoy.transport_socket_match" not in backend.metadata.filter_metadata


# --- client side: DestinationRule -----------------------------------------------------------


def test_destination_rule_istio_mutual_for_every_endpoint() -> None:
    tls = ClientTls(ClientTlsMode.ISTIO_MUTUAL, ("spiffe://cluster.local/ns/x/sa/y",), "sni.x")
    c = cluster(dr(BACKEND, tls), f"outbound|9080||{BACKEND}")
    assert not c.transport_socket_matches
    context = upstream(c.transport_socket)
    assert context.sni == "sni.x"
    vc = context.common_tls_context.combined_validation_context.default_validation_context
    assert [m.matcher.exact for m in vc.match_typed_subject_alt_names] == [
        "spiffe://cluster.local/ns/x/sa/y"
    ]


def test_destination_rule_disable_is_plaintext() -> None:
    c = cluster(dr(BACKEND, ClientTls(ClientTlsMode.DISABLE)), f"outbound|9080||{BACKEND}")
    assert not c.transport_socket_matches and not c.HasField("transport_socket")


def test_destination_rule_simple_and_mutual_originate_tls_from_files() -> None:
    simple = ClientTls(ClientTlsMode.SIMPLE, ("api.example.com",), "api.example.com", "/ca.pem")
    context = upstream(cluster(dr(API, simple), f"outbound|443||{API}").transport_socket)
    assert context.sni == "api.example.com"
    validation = context.common_tls_context.validation_context
    assert validation.trusted_ca.filename == "/ca.pem"
    assert validation.match_typed_subject_alt_names[0].matcher.exact == "api.example.com"
    assert not context.common_tls_context.tls_certificates
    mutual = ClientTls(ClientTlsMode.MUTUAL, (), "", "", "/cert.pem", "/key.pem")
    context = upstream(cluster(dr(API, mutual), f"outbound|443||{API}").transport_socket)
    cert = context.common_tls_context.tls_certificates[0]
    assert (cert.certificate_chain.filename, cert.private_key.filename) == (
        "/cert.pem",
        "/key.pem",
    )


def san_names(context: tls_pb2.UpstreamTlsContext) -> list[str]:
    sans = context.common_tls_context.validation_context.match_typed_subject_alt_names
    return [m.matcher.exact for m in sans]


def test_origination_verifies_the_host_against_the_system_store_by_default() -> None:
    """Istio's defaults since 1.20: the server is verified (VERIFY_CERTIFICATE_AT_CLIENT)
    against the system store when no CA is given, and the SNI is the host, which the
    certificate must then name."""
    context = upstream(
        cluster(dr(API, ClientTls(ClientTlsMode.SIMPLE)), f"outbound|443||{API}").transport_socket
    )
    assert context.sni == API
    validation = context.common_tls_context.validation_context
    assert validation.trusted_ca.filename == "/etc/ssl/certs/ca-certificates.crt"
    assert san_names(context) == [API]
    system = ClientTls(ClientTlsMode.SIMPLE, ca_certificates="system")
    context = upstream(cluster(dr(API, system), f"outbound|443||{API}").transport_socket)
    validation = context.common_tls_context.validation_context
    assert validation.trusted_ca.filename == "/etc/ssl/certs/ca-certificates.crt"


def test_an_explicit_sni_checks_no_name_and_insecure_skip_verify_checks_nothing() -> None:
    named = ClientTls(ClientTlsMode.SIMPLE, sni="front.example.com", ca_certificates="/ca.pem")
    context = upstream(cluster(dr(API, named), f"outbound|443||{API}").transport_socket)
    assert (context.sni, san_names(context)) == ("front.example.com", [])
    skip = ClientTls(ClientTlsMode.SIMPLE, insecure_skip_verify=True)
    context = upstream(cluster(dr(API, skip), f"outbound|443||{API}").transport_socket)
    assert context.sni == API
    assert not context.common_tls_context.HasField("validation_context")


def test_mutual_with_a_credential_name_names_no_empty_files() -> None:
    """The Secret comes over SDS (``test_origination_credentials``); empty file names would
    make Envoy refuse the cluster, and with it the proxy's whole CDS update."""
    mutual = ClientTls(ClientTlsMode.MUTUAL, credential_name="client-credential")
    context = upstream(cluster(dr(API, mutual), f"outbound|443||{API}").transport_socket)
    assert not context.common_tls_context.tls_certificates


def test_destination_rule_port_level_and_wildcard_host() -> None:
    policies = dr(
        "*.default.svc.cluster.local",
        ClientTls(ClientTlsMode.DISABLE),
        PortTrafficPolicy(9090, ClientTls(ClientTlsMode.ISTIO_MUTUAL)),
    )
    assert not cluster(policies, f"outbound|9080||{BACKEND}").transport_socket_matches
    grpc = cluster(policies, f"outbound|9090||{BACKEND}")
    assert upstream(grpc.transport_socket).sni == f"outbound_.9090_._.{BACKEND}"
    # a rule without TLS settings leaves auto mTLS in place
    assert cluster(dr(API, None), f"outbound|443||{API}").transport_socket_matches


def test_exact_host_beats_wildcard() -> None:
    wide = DestinationRule("default", "a", "*", TrafficPolicy(ClientTls(ClientTlsMode.DISABLE)))
    exact = DestinationRule(
        "default", "b", BACKEND, TrafficPolicy(ClientTls(ClientTlsMode.ISTIO_MUTUAL))
    )
    c = cluster(Policies.build(destination_rules=(wide, exact)), f"outbound|9080||{BACKEND}")
    assert c.HasField("transport_socket")


# --- server side ----------------------------------------------------------------------------


def inbound(policies: Policies, proxy: Proxy = BACKEND_PROXY) -> dict[int, listener_pb2.Listener]:
    listeners = build_listeners(meshed_model(policies), proxy)
    return {
        listener.address.socket_address.port_value: listener
        for listener in listeners
        if listener.address.socket_address.address == proxy.ip
    }


def downstream(chain: Any) -> tls_pb2.DownstreamTlsContext:
    context = tls_pb2.DownstreamTlsContext()
    assert chain.transport_socket.typed_config.Unpack(context)
    return context


def mesh_mode(mode: MtlsMode) -> Policies:
    pa = PeerAuthentication("istio-system", "default", mode=mode)
    return Policies.build(peer_authentications=(pa,))


def test_permissive_by_default_tls_inspector_and_two_chains() -> None:
    listener = inbound(Policies())[8080]
    assert [f.name for f in listener.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    tls, plain = listener.filter_chains
    assert tls.filter_chain_match.transport_protocol == "tls"
    assert plain.filter_chain_match.transport_protocol == "raw_buffer"
    assert not plain.HasField("transport_socket")
    context = downstream(tls)
    assert context.require_client_certificate.value
    assert sds_names(context) == ["default", "ROOTCA"]
    assert list(context.common_tls_context.alpn_protocols) == [
        "istio-peer-exchange",
        "istio",
        "h2",
        "http/1.1",
    ]


def test_strict_requires_tls() -> None:
    listener = inbound(mesh_mode(MtlsMode.STRICT))[8080]
    assert not listener.listener_filters
    (chain,) = listener.filter_chains
    assert downstream(chain).require_client_certificate.value


def test_disable_is_plaintext_only() -> None:
    listener = inbound(mesh_mode(MtlsMode.DISABLE))[8080]
    (chain,) = listener.filter_chains
    assert not chain.HasField("transport_socket") and not listener.listener_filters


def test_port_level_mode_per_listener() -> None:
    pa = PeerAuthentication(
        "default",
        "backend",
        labels_of({"app": "backend"}),
        MtlsMode.STRICT,
        ((7070, MtlsMode.DISABLE),),
    )
    listeners = inbound(Policies.build(peer_authentications=(pa,)))
    assert listeners[8080].filter_chains[0].HasField("transport_socket")
    assert not listeners[7070].filter_chains[0].HasField("transport_socket")


def test_http_inbound_forwards_client_identity() -> None:
    for chain in inbound(Policies())[8080].filter_chains:
        hcm = hcm_pb2.HttpConnectionManager()
        assert chain.filters[0].typed_config.Unpack(hcm)
        assert hcm.forward_client_cert_details == hcm_pb2.HttpConnectionManager.APPEND_FORWARD
        assert hcm.set_current_client_cert_details.uri


# --- Envoy accepts it -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", [MtlsMode.STRICT, MtlsMode.PERMISSIVE, MtlsMode.DISABLE])
@pytest.mark.parametrize(
    "proxy", [BACKEND_PROXY, FRONTEND_PROXY, DATA_PROXY], ids=lambda p: p.pod_name
)
def test_envoy_validates_mtls_config(mode: MtlsMode, proxy: Proxy, tmp_path: Path) -> None:
    resources = build_resources(meshed_model(mesh_mode(mode)), proxy)
    result = envoy_validate(inlined_config(proxy, resources), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
