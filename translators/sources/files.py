"""The file config source: a directory of Kubernetes YAML becomes one ``MeshModel``.

Invariants:

1. One bad object is refused alone: every object of every file is read, an
   invalid one (or one losing a cross-object rule) is reported as a
   ``Refusal`` and keeps its last valid version in force (``mesh.in_force``,
   through ``loader.load``), and the model is built from what is in force.
   Nothing raises for an object; ``ConfigInvalid`` only when the path does
   not exist. A file that cannot be read whole (unreadable, broken YAML) is
   named in ``Documents.unreadable``, so its objects keep their versions.
2. Deterministic: files are every ``*.yaml``/``*.yml`` below the root, read in
   sorted path order; hidden files and directories (``.git``, and the
   ``..data`` links of a mounted ConfigMap, which would double every file)
   are ignored. The model does not depend on file names or order.
3. Errors and warnings name files relative to the root, and documents by
   their 0-based index within the file.
4. The only I/O is reading the files; nothing is logged. Unsupported kinds
   come back as warnings for the caller to log.
5. ``FileSource`` keeps parsed files between reads (``ParseCache``); what is
   in force between reads is the ``Loader``'s.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from translators.mesh.documents.kinds import ParseResult, Skipped, parse_object
from translators.mesh.in_force import NOTHING, Objects
from translators.mesh.model.services import DEFAULT_DOMAIN_SUFFIX
from translators.sources.loader import Documents, LoadResult, load
from translators.sources.yaml_size import MAX_DOCUMENT_NODES, expanded_nodes
from xds_server.errors import ConfigError, ConfigInvalid

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class _FileResult:
    results: tuple[ParseResult, ...]
    """The file's documents of supported kinds, valid or not."""
    warnings: tuple[str, ...]
    whole: bool = True
    """False when the file could not be read to its end (unreadable, broken YAML)."""
    lines: tuple[int, ...] = ()
    """The 1-based line each document starts on, by document index (empty if unknown)."""
    skipped: tuple[Skipped, ...] = ()
    """Documents of kinds pyistiod does not read (each also said in ``warnings``)."""


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
        """Each (file, display name) parsed, reusing unchanged files' results."""
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
        if len(self._documents) > 4 * sum(len(r.results) + 1 for r in out):
            self._documents = {}  # forget documents of files that are gone
        return out


def read_dir(path: Path, cache: ParseCache | None = None) -> Documents:
    """Every document of every YAML file below ``path`` (or of the one file ``path``).

    Raises ``ConfigInvalid`` only if ``path`` does not exist.
    """
    files = yaml_files(path)
    if files is None:
        raise ConfigInvalid([ConfigError(str(path), 0, "", "no such directory or YAML file")])
    root = path if path.is_dir() else path.parent
    named = [(f, _relative(f, root)) for f in files]
    results = (cache or ParseCache()).load(named)
    pairs = list(zip(named, results, strict=True))
    return Documents(
        tuple(d for r in results for d in r.results),
        tuple(w for r in results for w in r.warnings),
        frozenset(display for (_, display), r in pairs if not r.whole),
        len(files),
        {(display, i): line for (_, display), r in pairs for i, line in enumerate(r.lines)},
        tuple(s for r in results for s in r.skipped),
    )


def load_dir(
    path: Path,
    domain_suffix: str = DEFAULT_DOMAIN_SUFFIX,
    cache: ParseCache | None = None,
    previous: Objects = NOTHING,
) -> LoadResult:
    """Load every YAML file below ``path`` (or the one file ``path``) into a model.

    ``previous`` is what was in force before this read: a refused object keeps
    its version from there. Raises ``ConfigInvalid`` only if ``path`` does not
    exist.
    """
    return load([read_dir(path, cache)], previous, domain_suffix)


class FileSource:
    """A config directory read again and again: parsed files are kept for the next read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache = ParseCache()

    def read(self) -> Documents:
        """Every document of the directory now; ``ConfigInvalid`` if it does not exist."""
        return read_dir(self.root, self._cache)


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


def _unreadable(display: str, exc: Exception) -> _FileResult:
    error = ConfigError(display, 0, "", f"cannot be read: {exc}")
    return _FileResult((ParseResult(None, (error,)),), (), whole=False)


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
    by_document = _by_document(text, display, documents) if documents is not None else None
    broken, lines = False, tuple[int, ...]()
    if by_document is None:
        parsed, _, broken = _parse_stream(text, display, 0)
    else:
        parsed, lines = by_document
    results: list[ParseResult] = []
    warnings: list[str] = []
    skipped: list[Skipped] = []
    for result in parsed:
        warnings.extend(result.warnings)
        if isinstance(result.obj, Skipped):
            warnings.append(skipped_warning(result.obj))
            skipped.append(result.obj)
        else:
            results.append(result)
    return _FileResult(
        tuple(results), tuple(warnings), whole=not broken, lines=lines, skipped=tuple(skipped)
    )


def _parse_stream(text: str, display: str, first: int) -> tuple[list[ParseResult], int, bool]:
    """Every document of a YAML stream, numbered from ``first`` (empty documents are
    skipped, a ``kind: List`` yields its ``items``, a syntax error ends the stream with an
    error naming the line and column); how many documents were read, and whether a syntax
    error stopped the stream."""
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


def _by_document(
    text: str, display: str, memo: DocumentMemo
) -> tuple[list[ParseResult], tuple[int, ...]] | None:
    """``_parse_stream`` one document at a time through ``memo``, with the line each
    document starts on; None on a syntax error (the caller then parses the whole text,
    for line numbers that count from its top).

    Documents are split at lines holding only ``---``; a document after a
    separator counts as one even when empty, as ``yaml.load_all`` counts it.
    A document starts on its first line that is not blank, as Istio counts.
    """
    out: list[ParseResult] = []
    lines: list[int] = []
    index = 0
    line = 1
    for position, chunk in enumerate(_SEPARATOR.split(text)):
        key = (display, index, chunk)
        hit = memo.get(key)
        if hit is None:
            results, documents, broken = _parse_stream(chunk, display, index)
            if broken:
                return None
            hit = memo[key] = (results, documents)
        out.extend(hit[0])
        count = max(hit[1], 1) if position > 0 else hit[1]
        blank = len(chunk) - len(chunk.lstrip("\n"))
        lines.extend([line + blank] * count)
        index += count
        line += chunk.count("\n")  # the next chunk starts on this chunk's separator line
    return out, tuple(lines)


def _expand(raw: object, display: str, index: int) -> Iterator[ParseResult]:
    if expanded_nodes(raw) > MAX_DOCUMENT_NODES:
        reason = (
            f"expands to more than {MAX_DOCUMENT_NODES:,} nodes through YAML aliases "
            "(an alias bomb?); refused unread"
        )
        yield ParseResult(None, (ConfigError(display, index, "", reason),))
        return
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


def skipped_warning(s: Skipped) -> str:
    """The warning a skipped document is logged with."""
    name = f" {s.name}" if s.name else ""
    return f"{s.origin}: skipped unsupported kind {s.api_version}/{s.kind}{name}"
