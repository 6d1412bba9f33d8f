"""The gateway example loads with its generated Secret and gives the router its config."""

from __future__ import annotations

from pathlib import Path

from gateway_example import CREDENTIAL, write_gateway_example

from translators.envoy.listeners.gateway import build_gateway_listeners
from translators.envoy.tls.gateway_secrets import gateway_secrets
from translators.mesh.model.proxy import proxy_from_node
from translators.sources.files import load_dir

NODE = "router~127.0.0.50~ingressgateway-0.istio-system~istio-system.svc.cluster.local"


def test_gateway_example_loads_and_configures_the_router(tmp_path: Path) -> None:
    example = write_gateway_example(tmp_path / "gateway")
    assert not list(Path(__file__).parents[2].glob("pyistiod/examples/gateway/*credential*"))
    model = load_dir(example.directory).model
    router = proxy_from_node(NODE, {}, model)
    assert [g.ref for g in model.gateways] == ["istio-system/ingress"]
    names = [str(listener.name) for listener in build_gateway_listeners(model, router)]
    assert names == ["127.0.0.50_8080", "127.0.0.50_8443"]
    (secret,) = gateway_secrets(model, router)
    assert secret.name == f"kubernetes://{CREDENTIAL}"
    assert secret.tls_certificate.certificate_chain.inline_bytes == example.cert_pem
