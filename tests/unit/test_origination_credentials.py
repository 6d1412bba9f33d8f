"""TLS origination from a DestinationRule's ``credentialName``: SDS names, secrets, Envoy.

The cluster's context names Istio's SDS resources (``kubernetes://NAME``,
``kubernetes://NAME-cacert``); a sidecar's snapshot carries them from the Secrets of
its own namespace only; a plain-text stream gets neither; real Envoy accepts it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy_validate import _self_signed, envoy_validate
from sample_mesh import API, DATA_PROXY, FRONTEND_PROXY, ROUTER, meshed_model
from test_envoy_accepts_config import as_dict, inlined_config
from test_secretless import plain_cluster
from test_security_mtls import cluster, dr, upstream

from pyistiod.secretless_view import SecretlessView
from pyistiod.snapshot_builder import SnapshotBuilder
from translators.envoy.resources import build_resources
from translators.envoy.tls.origination_secrets import origination_secrets
from translators.mesh.model.gateways import TlsCredential
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import ClientTls, ClientTlsMode, Policies
from xds_server import types

CLUSTER = f"outbound|443||{API}"
MUTUAL = ClientTls(ClientTlsMode.MUTUAL, credential_name="client-credential")
SIMPLE = ClientTls(ClientTlsMode.SIMPLE, credential_name="client-credential")
CERT, KEY = (s.encode() for s in _self_signed("spiffe://cluster.local/ns/default/sa/client"))
CA = _self_signed("spiffe://cluster.local/ns/default/sa/ca")[0].encode()


def model(tls: ClientTls, *credentials: TlsCredential) -> MeshModel:
    return replace(meshed_model(dr(API, tls)), credentials=credentials)


def client(namespace: str = "default", name: str = "client-credential") -> TlsCredential:
    return TlsCredential(namespace, name, CERT, KEY, CA)


def names(secrets: list[secret_pb2.Secret]) -> list[str]:
    return [s.name for s in secrets]


# --- the cluster's context -----------------------------------------------------------------


def test_mutual_names_the_key_pair_and_the_ca_over_ads_and_keeps_the_san_rules() -> None:
    context = upstream(cluster(dr(API, MUTUAL), CLUSTER).transport_socket)
    common = context.common_tls_context
    assert [s.name for s in common.tls_certificate_sds_secret_configs] == [
        "kubernetes://client-credential"
    ]
    combined = common.combined_validation_context
    ca = combined.validation_context_sds_secret_config
    assert ca.name == "kubernetes://client-credential-cacert"
    assert ca.sds_config.HasField("ads")
    assert not ca.sds_config.HasField("initial_fetch_timeout")  # Envoy's 15 s, as Istio
    sans = combined.default_validation_context.match_typed_subject_alt_names
    assert [m.matcher.exact for m in sans] == [API]  # the SNI came from the host
    assert context.sni == API
    assert not common.tls_certificates and not common.HasField("validation_context")


def test_simple_names_only_the_ca() -> None:
    common = upstream(cluster(dr(API, SIMPLE), CLUSTER).transport_socket).common_tls_context
    assert not common.tls_certificate_sds_secret_configs
    assert (
        common.combined_validation_context.validation_context_sds_secret_config.name
        == "kubernetes://client-credential-cacert"
    )


def test_an_explicit_sni_and_subject_alt_names_keep_their_rules() -> None:
    named = replace(SIMPLE, sni="front.example.test")
    context = upstream(cluster(dr(API, named), CLUSTER).transport_socket)
    default = context.common_tls_context.combined_validation_context.default_validation_context
    assert (context.sni, list(default.match_typed_subject_alt_names)) == ("front.example.test", [])
    sans = replace(MUTUAL, subject_alt_names=("api.internal",))
    context = upstream(cluster(dr(API, sans), CLUSTER).transport_socket)
    default = context.common_tls_context.combined_validation_context.default_validation_context
    assert [m.matcher.exact for m in default.match_typed_subject_alt_names] == ["api.internal"]


def test_mutual_with_insecure_skip_verify_presents_the_pair_and_verifies_nothing() -> None:
    skip = replace(MUTUAL, insecure_skip_verify=True)
    common = upstream(cluster(dr(API, skip), CLUSTER).transport_socket).common_tls_context
    assert len(common.tls_certificate_sds_secret_configs) == 1
    assert not common.HasField("combined_validation_context")
    assert not common.HasField("validation_context")
    assert names(origination_secrets(model(skip, client()), "default")) == [
        "kubernetes://client-credential"
    ]


# --- the secrets ---------------------------------------------------------------------------


def test_mutual_gets_the_pair_and_the_ca_of_the_proxys_namespace() -> None:
    secrets = origination_secrets(model(MUTUAL, client()), "default")
    assert names(secrets) == [
        "kubernetes://client-credential",
        "kubernetes://client-credential-cacert",
    ]
    pair, ca = secrets
    assert pair.tls_certificate.certificate_chain.inline_bytes == CERT
    assert pair.tls_certificate.private_key.inline_bytes == KEY
    assert ca.validation_context.trusted_ca.inline_bytes == CA


def test_simple_gets_only_the_ca() -> None:
    assert names(origination_secrets(model(SIMPLE, client()), "default")) == [
        "kubernetes://client-credential-cacert"
    ]


def test_a_secret_of_another_namespace_is_never_served() -> None:
    """Istio resolves ``kubernetes://NAME`` in the proxy's namespace and refuses a sidecar
    any other: the Secret in ``data`` serves proxies in ``data`` only."""
    elsewhere = model(MUTUAL, client(namespace="data"))
    assert origination_secrets(elsewhere, "default") == []
    assert len(origination_secrets(elsewhere, "data")) == 2


def test_a_ca_secret_named_name_cacert_wins_and_a_missing_part_yields_nothing() -> None:
    """Istio's ``GetCaCert``: Secret ``NAME-cacert`` first, else ``NAME``'s CA."""
    other_ca = _self_signed("spiffe://cluster.local/ns/default/sa/other")[0].encode()
    holder = TlsCredential("default", "client-credential-cacert", b"", b"", other_ca)
    secrets = origination_secrets(model(SIMPLE, client(), holder), "default")
    assert secrets[0].validation_context.trusted_ca.inline_bytes == other_ca
    no_ca = TlsCredential("default", "client-credential", CERT, KEY)
    assert names(origination_secrets(model(MUTUAL, no_ca), "default")) == [
        "kubernetes://client-credential"
    ]
    assert origination_secrets(model(MUTUAL), "default") == []  # no Secret: nothing


# --- snapshots -----------------------------------------------------------------------------


def test_a_sidecars_snapshot_carries_its_namespaces_secrets_shared_by_namespace() -> None:
    builder = SnapshotBuilder(model(MUTUAL, client()))
    front = builder.snapshot(FRONTEND_PROXY)
    other = builder.snapshot(replace(FRONTEND_PROXY, pod_name="frontend-2", ip="127.0.1.3"))
    assert sorted(r.name for r in front.get(types.SECRET)) == [
        "kubernetes://client-credential",
        "kubernetes://client-credential-cacert",
    ]
    assert other.get(types.SECRET) is front.get(types.SECRET)  # one part per namespace
    assert len(builder.snapshot(DATA_PROXY).get(types.SECRET)) == 0  # not its namespace


def test_a_router_gets_them_too() -> None:
    snapshot = SnapshotBuilder(model(SIMPLE, client())).snapshot(ROUTER)
    assert "kubernetes://client-credential-cacert" in {r.name for r in snapshot.get(types.SECRET)}


def test_a_plain_text_stream_gets_no_secret_and_no_reference_to_one() -> None:
    snapshot = SnapshotBuilder(model(MUTUAL, client())).snapshot(FRONTEND_PROXY)
    served = SecretlessView().snapshot(snapshot)
    assert types.SECRET not in served.sets
    assert plain_cluster(dr(API, MUTUAL), CLUSTER).transport_socket.name == (
        "envoy.transport_sockets.raw_buffer"
    )


# --- Envoy accepts it ----------------------------------------------------------------------


@pytest.mark.parametrize("tls", [SIMPLE, MUTUAL], ids=lambda t: t.mode.value)
def test_envoy_accepts_a_sidecar_config_with_these_secrets(tls: ClientTls, tmp_path: Path) -> None:
    mesh = model(tls, client())
    config = inlined_config(FRONTEND_PROXY, build_resources(mesh, FRONTEND_PROXY))
    secrets = origination_secrets(mesh, FRONTEND_PROXY.namespace)
    config["static_resources"]["secrets"] += [as_dict(s) for s in secrets]
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_policies_without_credential_names_give_no_secret() -> None:
    assert (
        origination_secrets(replace(meshed_model(Policies()), credentials=(client(),)), "default")
        == []
    )
