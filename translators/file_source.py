"""The file config source: a directory of Kubernetes YAML becomes one ``MeshModel``.

Invariants:

1. All or nothing: ``load_dir`` returns a complete model, or raises
   ``ConfigInvalid`` carrying every error found in every file (syntax, field
   and cross-object); it never returns a partial model.
2. Deterministic: files are every ``*.yaml``/``*.yml`` below the root, read in
   sorted path order; hidden files and directories (``.git``, and the
   ``..data`` links of a mounted ConfigMap, which would double every file)
   are ignored. The model does not depend on file names or order.
3. Errors and warnings name files relative to the root, and documents by
   their 0-based index within the file.
4. The only I/O is reading the files; nothing is logged. Unsupported kinds
   come back as warnings for the caller to log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from translators.k8s_objects import ParseResult, Skipped, SourceObject, parse_object
from translators.mesh_builder import build_model
from translators.mesh_checks import check_objects
from translators.model import DEFAULT_DOMAIN_SUFFIX, MeshModel
from xds_server.errors import ConfigError, ConfigInvalid

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded config directory.

    ``files`` counts the YAML files read; ``objects`` the objects that went
    into the model (skipped kinds excluded).
    """

    model: MeshModel
    warnings: tuple[str, ...]
    files: int
    objects: int


@dataclass(frozen=True, slots=True)
class _FileResult:
    objects: tuple[SourceObject, ...]
    errors: tuple[ConfigError, ...]
    warnings: tuple[str, ...]


def load_dir(path: Path, domain_suffix: str = DEFAULT_DOMAIN_SUFFIX) -> LoadResult:
    """Load every YAML file below ``path`` (or the one file ``path``) into a model.

    Raises ``ConfigInvalid`` with every error found if anything is invalid.
    """
    files = yaml_files(path)
    if files is None:
        raise ConfigInvalid([ConfigError(str(path), 0, "", "no such directory or YAML file")])
    root = path if path.is_dir() else path.parent
    results = [load_file(f, _relative(f, root)) for f in files]
    objects = [o for r in results for o in r.objects]
    errors = [e for r in results for e in r.errors]
    errors.extend(check_objects(objects, domain_suffix))
    if errors:
        raise ConfigInvalid(errors)
    model = build_model(objects, domain_suffix)
    warnings = tuple(w for r in results for w in r.warnings)
    return LoadResult(model, warnings, len(files), len(objects))


def yaml_files(path: Path) -> list[Path] | None:
    """The YAML files ``load_dir`` reads, sorted; ``None`` if ``path`` does not exist."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return None
    found = (
        f
        for f in path.rglob("*")
        if f.suffix in YAML_SUFFIXES
        and f.is_file()
        and not any(part.startswith(".") for part in f.relative_to(path).parts)
    )
    return sorted(found)


def _relative(file: Path, root: Path) -> str:
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return str(file)


def load_file(file: Path, display: str) -> _FileResult:
    """Parse one YAML file's documents; ``display`` is the name used in messages."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _FileResult((), (ConfigError(display, 0, "", f"cannot be read: {exc}"),), ())
    objects: list[SourceObject] = []
    errors: list[ConfigError] = []
    warnings: list[str] = []
    for result in parse_text(text, display):
        errors.extend(result.errors)
        warnings.extend(result.warnings)
        if isinstance(result.obj, Skipped):
            warnings.append(_skipped_warning(result.obj))
        elif result.obj is not None:
            objects.append(result.obj)
    return _FileResult(tuple(objects), tuple(errors), tuple(warnings))


def parse_text(text: str, display: str) -> Iterator[ParseResult]:
    """Parse every document of a YAML stream: empty documents are skipped, and a
    ``kind: List`` yields its ``items``. A syntax error ends the stream with an
    error naming the line and column."""
    index = 0  # documents fully read so far: the index of the one being read
    try:
        for raw in yaml.safe_load_all(text):
            if raw is not None:
                yield from _expand(raw, display, index)
            index += 1
    except yaml.YAMLError as exc:
        yield ParseResult(None, (_syntax_error(exc, display, index),))


def _expand(raw: object, display: str, index: int) -> Iterator[ParseResult]:
    if isinstance(raw, dict) and raw.get("kind") == "List" and "items" in raw:
        items = raw["items"]
        if not isinstance(items, list):
            error = ConfigError(display, index, "items", "must be a list of objects")
            yield ParseResult(None, (error,))
            return
        for i, item in enumerate(items):
            yield parse_object(item, path=display, document=index, prefix=f"items[{i}]")
    else:
        yield parse_object(raw, path=display, document=index)


def _syntax_error(exc: yaml.YAMLError, display: str, index: int) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}, {problem}" if context else problem
    return ConfigError(display, index, "", f"invalid YAML{where}: {detail}")


def _skipped_warning(s: Skipped) -> str:
    name = f" {s.name}" if s.name else ""
    return f"{s.origin}: skipped unsupported kind {s.api_version}/{s.kind}{name}"
