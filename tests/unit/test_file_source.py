"""Loading a directory of YAML into a MeshModel (translators.sources.files)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import pyistiod
from translators.mesh.model.services import Protocol, labels_of
from translators.sources.files import load_dir
from translators.sources.loader import LoadResult
from xds_server.errors import ConfigError, ConfigInvalid

EXAMPLE = Path(pyistiod.__file__).parent / "examples" / "mesh"

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web}}
spec: {serviceAccountName: web-sa}
status: {podIP: 10.1.0.1}
"""
SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.1.0.1], targetRef: {kind: Pod, name: web-0}}]
"""
WEB = "web.default.svc.cluster.local"
INJECTED = {"security.istio.io/tlsMode": "istio"}
"""The label Istio's sidecar injector adds to every Pod (see ``documents.kubernetes``)."""


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def invalid(root: Path) -> list[ConfigError]:
    """The errors of the objects refused in ``root`` (or why ``root`` cannot be read)."""
    try:
        result = load_dir(root)
    except ConfigInvalid as missing:
        return missing.errors
    assert result.refusals, "nothing was refused"
    return list(result.errors)


# --- the example mesh -------------------------------------------------------------------


def test_example_mesh_loads() -> None:
    result = load_dir(EXAMPLE)
    assert (result.files, result.objects, result.warnings) == (3, 8, ())
    model = result.model
    assert [s.name for s in model.services] == ["backend-tcp", "backend", "frontend"]
    backend = next(s for s in model.services if s.name == "backend")
    assert backend.ports[0].protocol is Protocol.HTTP
    tcp = next(s for s in model.services if s.name == "backend-tcp")
    assert tcp.ports[0].protocol is Protocol.TCP
    (front,) = model.endpoints_of("frontend.default.svc.cluster.local")
    assert (front.address, front.port, front.service_port) == ("127.0.0.11", 8080, 8080)
    assert front.labels == labels_of({"app": "frontend", "version": "v1", **INJECTED})
    assert (front.service_account, front.workload) == ("frontend", "frontend-0")
    (back,) = model.endpoints_of("backend-tcp.default.svc.cluster.local")
    assert (back.address, back.port, back.service_account) == ("127.0.0.21", 9090, "backend")
    assert back.labels == labels_of({"app": "backend", "version": "v1", **INJECTED})
    pod = model.workload("default", "backend-0")
    assert pod is not None and pod.ports == (("http", 9080), ("tcp", 9090))


# --- reading files ----------------------------------------------------------------------


def test_multi_document_nested_yml_and_hidden_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", f"---\n{SERVICE}---\n---\n# only a comment\n---\n{POD}")
    write(tmp_path, "deep/er/slices.yml", SLICE)
    write(tmp_path, "..data/a.yaml", SERVICE)  # a ConfigMap mount's hidden copy
    write(tmp_path, ".git/x.yaml", "not: [valid")
    write(tmp_path, "notes.txt", "ignored")
    result = load_dir(tmp_path)
    assert (result.files, result.objects) == (2, 3)
    (ep,) = result.model.endpoints_of(WEB)
    assert (ep.port, ep.service_account, ep.labels) == (
        8080,
        "web-sa",
        labels_of({"app": "web", **INJECTED}),
    )


def test_kind_list_items_are_read(tmp_path: Path) -> None:
    items = "\n".join(
        "  - " + textwrap.indent(doc, "    ").lstrip() for doc in (SERVICE, POD, SLICE)
    )
    write(tmp_path, "list.yaml", f"apiVersion: v1\nkind: List\nitems:\n{items}")
    result = load_dir(tmp_path)
    assert result.objects == 3 and len(result.model.endpoints_of(WEB)) == 1


def test_single_file_path_is_accepted(tmp_path: Path) -> None:
    write(tmp_path, "svc.yaml", SERVICE)
    assert load_dir(tmp_path / "svc.yaml").objects == 1


def test_unknown_kind_is_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.yaml",
        f"{SERVICE}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\n",
    )
    result = load_dir(tmp_path)
    assert result.warnings == (
        "x.yaml (document 1): skipped unsupported kind apps/v1/Deployment web",
    )
    assert result.objects == 1


def test_empty_directory_gives_empty_model(tmp_path: Path) -> None:
    assert load_dir(tmp_path) == LoadResult(load_dir(tmp_path).model, (), 0, 0)
    assert load_dir(tmp_path).model.services == ()


# --- errors -----------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_document_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", f"{SERVICE}---\nkind: Pod\nname: a: b\n---\n{POD}")
    (err,) = invalid(tmp_path)
    assert (err.path, err.document, err.field) == ("bad.yaml", 1, "")
    # libyaml (CSafeLoader) says "...not allowed in this context", pure PyYAML "...here"
    assert err.reason.startswith("invalid YAML at line 9, column 8: mapping values are not allowed")
    assert str(err).startswith("bad.yaml (document 1): invalid YAML at line 9")


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("- just\n- a list\n", "", "must be a mapping (a Kubernetes object), got ['just', "),
        ("kind: Service\nmetadata: {name: a}\n", "apiVersion", "is required"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "kind", "is required"),
        ("42\n", "", "must be a mapping (a Kubernetes object), got 42 (int)"),
    ],
)
def test_documents_that_are_not_objects(tmp_path: Path, text: str, field: str, reason: str) -> None:
    write(tmp_path, "x.yaml", f"{SERVICE}---\n{text}")
    (err,) = invalid(tmp_path)
    assert (err.path, err.document, err.field) == ("x.yaml", 1, field)
    assert err.reason.startswith(reason)


def test_all_errors_across_files_are_collected(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SERVICE.replace("port: 80", "port: eighty"))
    write(tmp_path, "b/pods.yaml", f"{POD}---\n{POD.replace('10.1.0.1', '10.1.0.999')}")
    write(tmp_path, "c.yaml", "a: [unclosed\n")
    write(tmp_path, "d.yaml", SERVICE)  # duplicate of a.yaml's Service... which is invalid
    errors = invalid(tmp_path)
    rendered = [str(e) for e in errors]
    assert rendered[0] == (
        "a.yaml (document 0) Service default/web: field spec.ports[0].port "
        "must be an integer 1-65535, got 'eighty'"
    )
    assert rendered[1] == (
        "b/pods.yaml (document 1) Pod default/web-0: field status.podIP "
        "must be an IPv4 or IPv6 address, got '10.1.0.999'"
    )
    assert rendered[2].startswith("c.yaml (document 0): invalid YAML at line 2, column 1")
    assert len(errors) == 3  # an invalid object is not also reported as duplicated


def test_duplicate_across_files_names_the_first_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SERVICE)
    write(tmp_path, "b.yaml", f"{POD}---\n{SERVICE}")
    (err,) = invalid(tmp_path)
    assert (err.path, err.document, err.field) == ("b.yaml", 1, "metadata.name")
    assert err.reason == "duplicates Service default/web already defined in a.yaml (document 0)"


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    (err,) = invalid(tmp_path / "nope")
    assert err.reason == "no such directory or YAML file"


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    (err,) = invalid(tmp_path)
    assert err.path == "bin.yaml" and err.reason.startswith("cannot be read:")


# --- determinism ------------------------------------------------------------------------


def test_model_does_not_depend_on_file_names_or_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write(one, "all.yaml", f"{SERVICE}---\n{POD}---\n{SLICE}")
    write(two, "z-slices.yaml", SLICE)
    write(two, "m/pod.yml", POD)
    write(two, "a-svc.yaml", SERVICE)
    first, second = load_dir(one), load_dir(two)
    assert first.model == second.model
    assert [e.labels for e in first.model.endpoints_of(WEB)] == [
        e.labels for e in second.model.endpoints_of(WEB)
    ]
    assert (first.files, second.files) == (1, 3)


def test_parse_cache_reparses_only_edited_files(tmp_path: Path) -> None:
    from translators.sources.files import ParseCache, load_dir

    write(tmp_path, "a.yaml", SERVICE)
    write(tmp_path, "b.yaml", POD)
    cache = ParseCache()
    first = load_dir(tmp_path, cache=cache)
    kept = dict(cache._entries)
    write(
        tmp_path, "b.yaml", POD.replace("10.0.0.5", "10.0.0.6") if "10.0.0.5" in POD else POD + "\n"
    )
    second = load_dir(tmp_path, cache=cache)
    assert first.model.services == second.model.services
    same = [k for k in cache._entries if k in kept]
    assert [k[0] for k in same] == ["a.yaml"]  # b.yaml was parsed again, a.yaml was not


BAD_SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: 0}]}\n"


@pytest.mark.parametrize(
    "text",
    [
        f"{SERVICE}---\n{BAD_SERVICE}---\n{POD}",
        f"---\n{SERVICE}---\n{POD}",
        f"{SERVICE}---\n# only a comment\n---\n{BAD_SERVICE}",
        f"{SERVICE}---\n---\n{BAD_SERVICE}---\n",
        f"# leading comment\n---\n{BAD_SERVICE}...\n---\n{POD}",
        f"{SERVICE}---\nkind: Pod\nname: a: b\n---\n{POD}",  # a syntax error: whole-file fallback
    ],
)
def test_document_by_document_parsing_equals_whole_file_parsing(text: str) -> None:
    from translators.sources.files import parse_bytes

    data = text.encode()
    by_document, whole = parse_bytes(data, "f.yaml", {}), parse_bytes(data, "f.yaml")
    assert (by_document.results, by_document.warnings, by_document.whole) == (
        whole.results,
        whole.warnings,
        whole.whole,
    )


def test_each_document_knows_the_line_it_starts_on() -> None:
    from translators.sources.files import parse_bytes

    text = f"# a comment\n{SERVICE}---\n\n{BAD_SERVICE}---\n{POD}"
    lines = text.splitlines()
    starts = parse_bytes(text.encode(), "f.yaml", {}).lines
    assert [lines[n - 1] for n in starts] == ["# a comment", "apiVersion: v1", "apiVersion: v1"]
    assert starts[1] == 4 + SERVICE.count("\n")


def test_editing_one_document_reparses_only_that_document(tmp_path: Path) -> None:
    from translators.sources.files import ParseCache, load_dir

    write(tmp_path, "all.yaml", f"{SERVICE}---\n{POD}")
    cache = ParseCache()
    load_dir(tmp_path, cache=cache)
    before = set(cache._documents)
    write(tmp_path, "all.yaml", f"{SERVICE}---\n{POD}\n# edited\n")
    load_dir(tmp_path, cache=cache)
    new = set(cache._documents) - before
    assert len(new) == 1 and next(iter(new))[1] == 1  # only document 1 was parsed again


# --- one bad object is refused alone -----------------------------------------------------


def test_broken_yaml_keeps_the_objects_the_file_held(tmp_path: Path) -> None:
    from translators.sources.files import FileSource
    from translators.sources.loader import Loader

    write(tmp_path, "all.yaml", f"{SERVICE}---\n{POD}---\n{SLICE}")
    write(tmp_path, "other.yaml", SERVICE.replace("name: web", "name: api"))
    source = Loader([FileSource(tmp_path)])
    source.commit(source.read())
    write(tmp_path, "all.yaml", f"{SERVICE}---\nkind: Pod\nname: a: b\n---\n{SLICE}")
    (tmp_path / "other.yaml").unlink()
    result = source.read()
    assert [str(k) for k in result.in_force] == [
        "EndpointSlice default/web-a",  # after the break: its last valid version
        "Pod default/web-0",
        "Service default/web",
    ]
    assert result.errors[0].reason.startswith("invalid YAML at line 9")
    assert len(result.model.endpoints_of(WEB)) == 1


def test_a_read_is_remembered_only_once_committed(tmp_path: Path) -> None:
    from translators.sources.files import FileSource
    from translators.sources.loader import Loader

    write(tmp_path, "svc.yaml", SERVICE)
    source = Loader([FileSource(tmp_path)])
    first = source.read()
    write(tmp_path, "svc.yaml", SERVICE.replace("port: 80", "port: eighty"))
    assert source.read().objects == 0  # nothing committed: no last valid version yet
    source.commit(first)
    kept = source.read()
    assert kept.objects == 1 and kept.refusals[0].kept
