"""An EndpointSlice edit updates one service's endpoints and gives the model a full build gives.

``Loader`` takes the short path (``in_force.endpoint_slices_only`` and
``builder.update_endpoints``) when a read differs from the last applied one only
by edited EndpointSlices; each scenario checks it took it and that the model
equals a full build of the same files.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from translators.mesh.model.mesh import MeshModel
from translators.sources.files import FileSource, load_dir
from translators.sources.loader import Loader

SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}, ports: [{name: http, port: 80}, {name: grpc, port: 9090}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web, version: v1}}
spec: {serviceAccountName: web}
status: {podIP: 10.0.0.1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop, labels: {app: web}}
spec: {address: 10.9.9.9, serviceAccount: vm}
"""


def slice_doc(
    name: str, service: str, *addresses: str, ready: bool = True, port: int = 8080
) -> str:
    endpoints = ", ".join(
        f"{{addresses: [{a}], conditions: {{ready: {str(ready).lower()}}}, "
        f"targetRef: {{kind: Pod, name: web-0}}}}"
        for a in addresses
    )
    return textwrap.dedent(
        f"""\
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: {name}
          namespace: shop
          labels: {{kubernetes.io/service-name: {service}}}
        addressType: IPv4
        ports: [{{name: http, port: {port}}}]
        endpoints: [{endpoints}]
        """
    )


def mesh(root: Path) -> Loader:
    (root / "services.yaml").write_text(SERVICES)
    (root / "web-a.yaml").write_text(slice_doc("web-a", "web", "10.0.0.1"))
    (root / "web-b.yaml").write_text(slice_doc("web-b", "web", "10.0.0.2", "10.0.0.3"))
    (root / "api-a.yaml").write_text(slice_doc("api-a", "api", "10.0.1.1", port=80))
    loader = Loader([FileSource(root)])
    loader.commit(loader.read())
    return loader


def short_path(loader: Loader, before: MeshModel) -> MeshModel:
    result = loader.read()
    assert result.model.services is before.services, "the short path keeps the services"
    assert result.endpoints_only
    loader.commit(result)
    return result.model


EDITS = {
    "an address moves": ("web-b.yaml", slice_doc("web-b", "web", "10.0.0.2", "10.0.0.4")),
    "an endpoint goes unready": ("web-a.yaml", slice_doc("web-a", "web", "10.0.0.1", ready=False)),
    "the slice port changes": ("api-a.yaml", slice_doc("api-a", "api", "10.0.1.1", port=90)),
    "a slice moves to another service": ("web-b.yaml", slice_doc("web-b", "api", "10.0.0.2")),
}


@pytest.mark.parametrize("edit", EDITS)
def test_an_endpoint_slice_edit_gives_the_full_builds_model(tmp_path: Path, edit: str) -> None:
    loader = mesh(tmp_path)
    before = loader.read().model
    name, text = EDITS[edit]
    (tmp_path / name).write_text(text)
    updated = short_path(loader, before)
    assert updated == load_dir(tmp_path).model
    assert updated != before


def test_other_edits_take_the_full_path_and_still_agree(tmp_path: Path) -> None:
    loader = mesh(tmp_path)
    before = loader.read().model
    (tmp_path / "services.yaml").write_text(
        SERVICES.replace("port: 80, targetPort", "port: 81, targetPort")
    )
    (tmp_path / "web-a.yaml").unlink()  # a deletion too
    result = loader.read()
    assert result.model.services is not before.services and not result.endpoints_only
    assert result.model == load_dir(tmp_path).model


def test_an_invalid_slice_edit_is_refused_by_the_full_path(tmp_path: Path) -> None:
    loader = mesh(tmp_path)
    (tmp_path / "web-b.yaml").write_text(slice_doc("web-b", "web", "10.0.0.999"))
    result = loader.read()
    assert [str(r.key) for r in result.refusals] == ["EndpointSlice shop/web-b"]
    assert result.refusals[0].kept  # its last valid version stays: the full path decided
