"""What a reload applies: bad objects refused alone, an emptied directory refused whole.

``ConfigWatcher.reload`` against a real directory (``FileSource``, ``Loader``), with the
model handed to a recording ``apply`` instead of a server.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from structlog.testing import capture_logs

from pyistiod.config_watcher import ConfigWatcher
from pyistiod.settings import Settings
from translators.mesh.model.mesh import MeshModel
from translators.sources.files import FileSource
from translators.sources.loader import Loader

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec: {{ports: [{{name: http, port: {port}}}]}}
"""


def service(name: str, port: object = 80) -> str:
    return SERVICE.format(name=name, port=port)


class Applied:
    """The models a watcher applied, in order."""

    def __init__(self) -> None:
        self.models: list[MeshModel] = []

    def __call__(self, model: MeshModel, _changed_at: float) -> None:
        self.models.append(model)

    def ports(self) -> dict[str, int]:
        return {s.name: s.ports[0].port for s in self.models[-1].services}


def watcher(root: Path, applied: Applied, allow_empty: bool = False) -> ConfigWatcher:
    settings = Settings(config_dir=root, allow_empty_config=allow_empty)
    return ConfigWatcher(settings, Loader([FileSource(root)]), applied)


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text))


async def test_a_bad_object_is_refused_alone_and_its_last_version_stays(tmp_path: Path) -> None:
    applied = Applied()
    w = watcher(tmp_path, applied)
    write(tmp_path, "web.yaml", service("web", 80))
    write(tmp_path, "api.yaml", service("api", 90))
    assert await w.reload()
    write(tmp_path, "web.yaml", service("web", "eighty"))  # broken edit
    write(tmp_path, "api.yaml", service("api", 91))  # good edit beside it
    with capture_logs() as logs:
        assert await w.reload()
    assert applied.ports() == {"api": 91, "web": 80}
    (invalid,) = [e for e in logs if e["event"] == "config.invalid"]
    assert (invalid["file"], invalid["field"]) == ("web.yaml", "spec.ports[0].port")
    assert invalid["in_force"] == "its last valid version"
    write(tmp_path, "web.yaml", service("web", 81))  # fixed
    assert await w.reload()
    assert applied.ports() == {"api": 91, "web": 81}


async def test_an_emptied_directory_keeps_the_last_good_config(tmp_path: Path) -> None:
    applied = Applied()
    w = watcher(tmp_path, applied)
    write(tmp_path, "web.yaml", service("web"))
    assert await w.reload()
    (tmp_path / "web.yaml").unlink()
    with capture_logs() as logs:
        assert not await w.reload()
    assert len(applied.models) == 1
    assert [e["objects_in_force"] for e in logs if e["event"] == "config.empty_refused"] == [1]
    write(tmp_path, "api.yaml", service("api"))  # a later read starts from the last good one
    assert await w.reload()
    assert applied.ports() == {"api": 80}


async def test_an_empty_directory_empties_the_mesh_when_allowed(tmp_path: Path) -> None:
    applied = Applied()
    w = watcher(tmp_path, applied, allow_empty=True)
    write(tmp_path, "web.yaml", service("web"))
    assert await w.reload()
    (tmp_path / "web.yaml").unlink()
    assert await w.reload()
    assert applied.models[-1].services == ()


async def test_a_directory_of_only_invalid_objects_is_not_empty(tmp_path: Path) -> None:
    applied = Applied()
    w = watcher(tmp_path, applied)
    write(tmp_path, "web.yaml", service("web"))
    assert await w.reload()
    write(tmp_path, "web.yaml", service("web", "eighty"))
    assert await w.reload()  # refused alone: its last valid version is served
    assert applied.ports() == {"web": 80}


async def test_a_read_that_is_not_applied_is_not_remembered(tmp_path: Path) -> None:
    def failing(_model: MeshModel, _changed_at: float) -> None:
        raise RuntimeError("translator bug")

    loader = Loader([FileSource(tmp_path)])
    w = ConfigWatcher(Settings(config_dir=tmp_path), loader, failing)
    write(tmp_path, "web.yaml", service("web"))
    with capture_logs():
        assert not await w.reload()
    assert loader.in_force == {}


async def test_a_missing_directory_is_logged_and_nothing_is_applied(tmp_path: Path) -> None:
    applied = Applied()
    w = watcher(tmp_path / "gone", applied)
    with capture_logs() as logs:
        assert not await w.reload()
    assert applied.models == []
    assert [e["event"] for e in logs] == ["config.unreadable"]


SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{name: http, port: 80}}]
endpoints: [{{addresses: [{address}]}}]
"""

ROUTE_TO_NOWHERE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec: {hosts: [web], http: [{route: [{destination: {host: nowhere}}]}]}
"""


async def test_an_endpoint_change_does_not_log_the_analysis_again(tmp_path: Path) -> None:
    applied = Applied()
    w = watcher(tmp_path, applied)
    write(tmp_path, "web.yaml", service("web"))
    write(tmp_path, "slice.yaml", SLICE.format(address="10.0.0.1"))
    write(tmp_path, "vs.yaml", ROUTE_TO_NOWHERE)

    async def findings() -> int:
        with capture_logs() as logs:
            assert await w.reload()
        return sum(e["event"] == "config.analysis" for e in logs)

    assert await findings() == 1  # a route to a host no service has
    write(tmp_path, "slice.yaml", SLICE.format(address="10.0.0.2"))
    assert await findings() == 0  # endpoints only: nothing the analysis reads changed
    assert {
        e.address for e in applied.models[-1].endpoints_of("web.default.svc.cluster.local")
    } == {"10.0.0.2"}
    write(tmp_path, "vs.yaml", ROUTE_TO_NOWHERE.replace("nowhere", "elsewhere"))
    assert await findings() == 1


async def test_a_reload_that_changes_nothing_applies_nothing(tmp_path: Path) -> None:
    applied = Applied()
    w = watcher(tmp_path, applied)
    write(tmp_path, "web.yaml", service("web"))
    assert await w.reload()
    write(tmp_path, "web.yaml", "# the same service\n" + service("web"))  # an edit, no change
    assert await w.reload()
    assert len(applied.models) == 1
    write(tmp_path, "web.yaml", service("web", 81))
    assert await w.reload()
    assert len(applied.models) == 2 and applied.ports() == {"web": 81}
