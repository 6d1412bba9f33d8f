"""``debug_views``: config_dump never shows a private key; configz shows in force and refused."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from pyistiod.cli import EXAMPLE_MESH
from pyistiod.debug_views import REDACTED, config_dump, configz
from translators.sources.files import FileSource
from translators.sources.loader import Loader
from xds_server import types
from xds_server.cache import SnapshotCache
from xds_server.snapshot import Snapshot

KEY = b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"


def test_config_dump_redacts_every_private_key() -> None:
    secret = secret_pb2.Secret(name="default")
    secret.tls_certificate.certificate_chain.inline_bytes = b"-----BEGIN CERTIFICATE-----"
    secret.tls_certificate.private_key.inline_bytes = KEY
    cache = SnapshotCache()
    cache.set_snapshot("p", Snapshot.from_messages({types.SECRET: [secret]}))
    dump = config_dump(cache, "p")
    assert dump is not None
    (shown,) = dump["configs"]["sds"]["resources"]
    assert shown["name"] == "default" and shown["tlsCertificate"]["privateKey"] == REDACTED
    assert "secret" not in json.dumps(dump).replace('"default"', "")
    assert config_dump(cache, "nobody") is None


def test_config_dump_redacts_passwords_and_session_ticket_keys() -> None:
    secret = secret_pb2.Secret(name="gw")  # one kind per Secret: a oneof
    secret.tls_certificate.password.inline_string = "hunter2"
    tickets = secret_pb2.Secret(name="tickets")
    tickets.session_ticket_keys.keys.add().inline_bytes = b"ticket-key-bytes"
    generic = secret_pb2.Secret(name="hmac")
    generic.generic_secret.secret.inline_bytes = b"hmac-key"
    cache = SnapshotCache()
    cache.set_snapshot("p", Snapshot.from_messages({types.SECRET: [secret, tickets, generic]}))
    text = json.dumps(config_dump(cache, "p"))
    for leaked in ("hunter2", "ticket-key-bytes", "hmac-key"):
        assert leaked not in text and base64.b64encode(leaked.encode()).decode() not in text
    assert text.count(REDACTED) == 3


def test_configz_lists_objects_in_force_and_refused_ones(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_MESH, tmp_path / "mesh")
    (tmp_path / "mesh" / "bad.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 0}]}\n"
    )
    loader = Loader([FileSource(tmp_path / "mesh")])
    loader.commit(loader.read())
    view = configz(loader)
    assert {"kind": "Service", "namespace": "default", "name": "backend",
            "from": "services.yaml (document 1)"} in view["in_force"]  # fmt: skip
    (refused,) = view["refused"]
    assert refused["object"] == "Service default/bad"
    assert refused["errors"][0]["field"] == "spec.ports[0].port"
    assert refused["in_force_instead"] == "nothing"
