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

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from translators.mesh.builder import build_model
from translators.mesh.checks import check_objects
from translators.mesh.documents.kinds import ParseResult, Skipped, SourceObject, parse_object
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import DEFAULT_DOMAIN_SUFFIX
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


DocumentMemo = dict[tuple[str, int, str], tuple[list[ParseResult], int]]
"""Parsed documents by (file, index of the document, its text), with how many it held."""


class ParseCache:
    """Parsed files by name and content digest, so a reload re-parses only edited files.

    A memo on the input (the bytes), so it can never serve a stale parse; entries
    of files no longer present are dropped at each load.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, bytes], _FileResult] = {}
        self._documents: DocumentMemo = {}

    def load(self, files: list[tuple[Path, str]]) -> list[_FileResult]:
        """``load_file`` for each (file, display name), reusing unchanged files' results."""
        fresh: dict[tuple[str, bytes], _FileResult] = {}
        out = []
        for file, display in files:
            try:
                data = file.read_bytes()
            except OSError as exc:
                out.append(_unreadable(display, exc))
                continue
            key = (display, hashlib.blake2b(data, digest_size=16).digest())
            result = self._entries.get(key) or parse_bytes(data, display, self._documents)
            fresh[key] = result
            out.append(result)
        self._entries = fresh
        if len(self._documents) > 4 * sum(len(r.objects) + 1 for r in out):
            self._documents = {}  # forget documents of files that are gone
        return out


def load_dir(
    path: Path, domain_suffix: str = DEFAULT_DOMAIN_SUFFIX, cache: ParseCache | None = None
) -> LoadResult:
    """Load every YAML file below ``path`` (or the one file ``path``) into a model.

    Raises ``ConfigInvalid`` with every error found if anything is invalid.
    """
    files = yaml_files(path)
    if files is None:
        raise ConfigInvalid([ConfigError(str(path), 0, "", "no such directory or YAML file")])
    root = path if path.is_dir() else path.parent
    results = (cache or ParseCache()).load([(f, _relative(f, root)) for f in files])
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


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it: about ten times faster."""


def load_file(file: Path, display: str) -> _FileResult:
    """Parse one YAML file's documents; ``display`` is the name used in messages."""
    try:
        return parse_bytes(file.read_bytes(), display)
    except OSError as exc:
        return _unreadable(display, exc)


def _unreadable(display: str, exc: Exception) -> _FileResult:
    return _FileResult((), (ConfigError(display, 0, "", f"cannot be read: {exc}"),), ())


def parse_bytes(data: bytes, display: str, documents: DocumentMemo | None = None) -> _FileResult:
    """Parse one file's bytes (UTF-8 YAML, any number of documents).

    With ``documents`` (a memo kept by ``ParseCache``), a file is parsed
    document by document and unchanged documents are reused: editing one
    EndpointSlice in a file of a thousand re-parses one.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _unreadable(display, exc)
    objects: list[SourceObject] = []
    errors: list[ConfigError] = []
    warnings: list[str] = []
    parsed = _by_document(text, display, documents) if documents is not None else None
    for result in parsed if parsed is not None else parse_text(text, display):
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
    yield from _parse_stream(text, display, 0)[0]


def _parse_stream(text: str, display: str, first: int) -> tuple[list[ParseResult], int, bool]:
    """``parse_text``'s results with documents numbered from ``first``, how many
    documents were read, and whether a syntax error stopped the stream."""
    out: list[ParseResult] = []
    index = first  # documents fully read so far: the index of the one being read
    try:
        for raw in yaml.load_all(text, Loader=_LOADER):
            if raw is not None:
                out.extend(_expand(raw, display, index))
            index += 1
    except yaml.YAMLError as exc:
        out.append(ParseResult(None, (_syntax_error(exc, display, index),)))
        return out, index - first, True
    return out, index - first, False


_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


def _by_document(text: str, display: str, memo: DocumentMemo) -> list[ParseResult] | None:
    """``parse_text`` one document at a time through ``memo``; None on a syntax error
    (the caller then parses the whole text, for line numbers that count from its top).

    Documents are split at lines holding only ``---``; a document after a
    separator counts as one even when empty, as ``yaml.load_all`` counts it.
    """
    out: list[ParseResult] = []
    index = 0
    for position, chunk in enumerate(_SEPARATOR.split(text)):
        key = (display, index, chunk)
        hit = memo.get(key)
        if hit is None:
            results, documents, broken = _parse_stream(chunk, display, index)
            if broken:
                return None
            hit = memo[key] = (results, documents)
        out.extend(hit[0])
        index += max(hit[1], 1) if position > 0 else hit[1]
    return out


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
