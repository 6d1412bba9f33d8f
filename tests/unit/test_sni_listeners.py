"""TLS services sharing an outbound port: one listener, a filter chain per host by SNI."""

from __future__ import annotations

from pathlib import Path

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy_validate import envoy_validate
from sample_mesh import API, FRONTEND_PROXY, endpoints, service_entry, services, workloads
from test_envoy_accepts_config import inlined_config

from translators.envoy.listeners.sidecar import build_listeners, listener_conflicts
from translators.envoy.resources import build_resources
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import Protocol, Resolution, ServicePort

OTHER_TLS = "b.example.com"
PLAIN_TCP = "plain.example.com"


def model() -> MeshModel:
    extra = [
        service_entry(OTHER_TLS, ServicePort("tls", 443, Protocol.TLS), Resolution.DNS),
        service_entry(PLAIN_TCP, ServicePort("tcp", 443, Protocol.TCP), Resolution.DNS),
    ]
    return MeshModel.build([*services(), *extra], endpoints(False), workloads())


def listener_443() -> listener_pb2.Listener:
    (found,) = [
        v
        for v in build_listeners(model(), FRONTEND_PROXY)
        if v.address.socket_address.port_value == 443
    ]
    return found


def cluster_of(chain: listener_pb2.FilterChain) -> str:
    tcp = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[0].typed_config.Unpack(tcp)
    return str(tcp.cluster)


def test_a_second_tls_service_on_the_port_gets_a_chain_matching_its_host() -> None:
    listener = listener_443()
    assert [f.name for f in listener.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    routed = {
        tuple(c.filter_chain_match.server_names): cluster_of(c) for c in listener.filter_chains
    }
    assert routed == {
        (OTHER_TLS,): f"outbound|443||{OTHER_TLS}",
        (): f"outbound|443||{API}",  # no or another SNI: the port's first service, as before
    }


def test_only_a_plain_tcp_service_still_loses_the_port_and_is_reported() -> None:
    conflicts = [c for c in listener_conflicts(model()) if "port 443" in c]
    assert len(conflicts) == 1 and PLAIN_TCP in conflicts[0] and OTHER_TLS not in conflicts[0]


def test_envoy_accepts_the_shared_listener(tmp_path: Path) -> None:
    config = inlined_config(FRONTEND_PROXY, build_resources(model(), FRONTEND_PROXY))
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
