"""One monitoring view of a supervisor and its xDS workers (``serve --workers N``).

Each worker serves xDS to a share of the proxies and answers the monitoring paths
(``monitoring.monitoring_app``) on a loopback port of its own; the supervisor's
port (15014) answers for all of them by asking each worker and merging:

- ``/metrics`` (``merge_metrics``): Prometheus text, as one process would expose it.
  Families keep the supervisor's order; families (and samples) only a worker has
  follow, in the order first seen, under that worker's HELP and TYPE lines.

  1. istiod's own families (``monitoring.OWN_PREFIXES``: ``pilot_``, ``citadel_``,
     ``pyistiod_``) are summed per sample name and labels over every process: each
     is set on one side only (the supervisor counts config, ``pilot_services``; the
     workers count xDS, ``pilot_xds``, pushes, convergence) and is zero elsewhere.
     A ``*_created`` sample takes the earliest value instead.
  2. ``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
     ``process_virtual_memory_bytes`` and ``process_open_fds`` are summed too: the
     pod's CPU, memory and file descriptors are all its processes'.
  3. ``process_start_time_seconds``, ``process_max_fds`` and every ``python_*``
     family are the supervisor's alone (a worker restarts; the pod did not).
  4. Any other family is the supervisor's if it has it, else the first worker's.

- ``/debug/syncz`` (``merge_syncz``) and ``/debug/adsz`` (``merge_adsz``): every
  worker's list, concatenated and sorted as ``XdsServer.sync_status`` and
  ``XdsServer.ads_clients`` sort one worker's.
- ``/debug/config_dump?proxyID=`` (``first_found``): a proxy is connected to one
  worker; the first that knows it answers (404 where none does).

``/debug/configz`` is not merged: the supervisor holds the config and answers it.

A worker that does not answer (it is restarting: connection refused, timeout, 503)
is left out of the merge and logged (``monitoring.worker_unreachable``, with its
port and the reason), so one restarting worker never fails the whole view.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import structlog

from pyistiod.monitoring import OWN_PREFIXES, View

log = structlog.get_logger("monitoring")

SUMMED_PROCESS = frozenset(
    {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
    }
)
"""Standard families summed over the processes (rule 2)."""

SUPERVISOR_ONLY = frozenset({"process_start_time_seconds", "process_max_fds"})
"""Standard families only the supervisor's copy of counts (rule 3, with ``python_*``)."""

_SUFFIXES = ("", "_total", "_created", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info")
"""What a sample's name may add to its family's (the text format's)."""

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"')

_Labels = tuple[tuple[str, str], ...]
_Key = tuple[str, _Labels]


@dataclass(frozen=True, slots=True)
class _Sample:
    """One sample line: ``name{labels} value [timestamp]`` (labels as written)."""

    name: str
    labels: str
    value: float
    value_text: str
    timestamp: str = ""

    def line(self) -> str:
        return f"{self.name}{self.labels} {self.value_text}{self.timestamp}\n"


@dataclass(slots=True)
class _Family:
    """A family as written: its HELP/TYPE lines and samples keyed by name and labels."""

    name: str
    header: list[str] = field(default_factory=list)
    samples: dict[_Key, _Sample] = field(default_factory=dict)


_Text = dict[str, _Family]
"""One process's exposition: its families by name, in the order written."""


def merge_metrics(own: bytes, workers: Sequence[bytes]) -> bytes:
    """The supervisor's (``own``) and the workers' ``/metrics`` texts as one text
    (the module's rules 1-4); ``ValueError`` naming a line that is not the text format."""
    return _render(_merge(_parse(own), [_parse(text) for text in workers]))


def merge_syncz(answers: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every worker's ``/debug/syncz``, in ``XdsServer.sync_status``'s order."""
    found = [entry for answer in answers for entry in answer]
    return sorted(found, key=lambda d: (str(d["proxy"]), str(d["connected_at"])))


def merge_adsz(answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every worker's ``/debug/adsz``, in ``XdsServer.ads_clients``'s order (connection
    IDs are unique across workers already)."""
    clients = [client for answer in answers for client in answer["clients"]]
    clients.sort(key=lambda c: (str(c["proxy"]), str(c["connectionId"])))
    return {"totalClients": sum(int(a["totalClients"]) for a in answers), "clients": clients}


def first_found(answers: Iterable[object | None]) -> object | None:
    """The first answer that is not ``None`` (``None``: no worker has that proxy, a 404).

    Lazy: given an iterator, it stops asking at the first worker that knows the proxy."""
    return next((answer for answer in answers if answer is not None), None)


def _parse(text: bytes) -> _Text:
    """The families of one exposition, in order; ``ValueError`` on a line it cannot read."""
    families: _Text = {}
    current: _Family | None = None
    for line in text.decode().splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            words = line.split(maxsplit=3)
            if len(words) < 3:
                raise ValueError(f"no metric name: {line!r}")
            current = families.setdefault(words[2], _Family(words[2]))
            if not any(have.startswith(line[:7]) for have in current.header):
                current.header.append(line + "\n")  # one HELP and one TYPE a family
        elif line.strip() and not line.startswith("#"):
            sample, labels = _parse_sample(line)
            if current is None or not _belongs(sample.name, current.name):
                current = families.setdefault(sample.name, _Family(sample.name))
            current.samples[(sample.name, labels)] = sample
    return families


def _belongs(sample: str, family: str) -> bool:
    return sample.startswith(family) and sample[len(family) :] in _SUFFIXES


def _parse_sample(line: str) -> tuple[_Sample, _Labels]:
    """``name{labels} value [timestamp]`` (the labels kept as written) and its label
    pairs, sorted, values still escaped: the same labels in another order are the same
    series."""
    match = _NAME.match(line)
    if match is None:
        raise ValueError(f"not a metric sample: {line!r}")
    end, pairs = match.end(), list[tuple[str, str]]()
    if line[end : end + 1] == "{":
        end, pairs = _parse_labels(line, end + 1)
    rest = line[end:].split()
    if line[end : end + 1] not in (" ", "\t") or not 1 <= len(rest) <= 2:
        raise ValueError(f"not a metric sample: {line!r}")
    try:
        value = float(rest[0])
    except ValueError:
        raise ValueError(f"not a sample value: {line!r}") from None
    timestamp = f" {rest[1]}" if len(rest) == 2 else ""
    sample = _Sample(match.group(), line[match.end() : end], value, rest[0], timestamp)
    return sample, tuple(sorted(pairs))


def _parse_labels(line: str, pos: int) -> tuple[int, list[tuple[str, str]]]:
    """Where the label set opened just before ``pos`` ends (after its ``}``), and its
    pairs; values may hold escaped quotes, commas and braces."""
    pairs: list[tuple[str, str]] = []
    while True:
        pos = _skip_space(line, pos)
        if line[pos : pos + 1] == "}":
            return pos + 1, pairs
        label = _LABEL.match(line, pos)
        if label is None:
            raise ValueError(f"bad labels at {pos}: {line!r}")
        pos = _value_end(line, label.end())
        pairs.append((label.group(1), line[label.end() : pos - 1]))
        pos = _skip_space(line, pos)
        if line[pos : pos + 1] == ",":
            pos += 1
        elif line[pos : pos + 1] != "}":
            raise ValueError(f"bad labels at {pos}: {line!r}")


def _skip_space(line: str, pos: int) -> int:
    while line[pos : pos + 1] in (" ", "\t"):
        pos += 1
    return pos


def _value_end(line: str, pos: int) -> int:
    """Just after the closing quote of the label value starting at ``pos``."""
    while pos < len(line):
        if line[pos] == "\\":
            pos += 2
        elif line[pos] == '"':
            return pos + 1
        else:
            pos += 1
    raise ValueError(f"unterminated label value: {line!r}")


def _rule(family: str) -> str:
    """How a family is merged: ``sum`` (rules 1, 2), ``own`` (3) or ``first`` (4)."""
    if family.startswith(OWN_PREFIXES) or family in SUMMED_PROCESS:
        return "sum"
    if family.startswith("python_") or family in SUPERVISOR_ONLY:
        return "own"
    return "first"


def _merge(own: _Text, workers: Sequence[_Text]) -> _Text:
    """The families of ``own`` then ``workers``, merged by the module's rules."""
    merged: _Text = {}
    for index, text in enumerate([own, *workers]):
        for name, family in text.items():
            rule = _rule(name)
            if rule == "own" and index > 0:
                continue
            if name not in merged:
                merged[name] = _Family(name, list(family.header), dict(family.samples))
            elif rule == "sum":
                _add(merged[name], family)
    return merged


def _add(into: _Family, family: _Family) -> None:
    """Sum ``family``'s samples into ``into``'s (the earliest for ``*_created``)."""
    for key, sample in family.samples.items():
        have = into.samples.get(key)
        if have is None:
            into.samples[key] = sample
            continue
        if sample.name.endswith("_created"):
            value = min(have.value, sample.value)
        else:
            value = have.value + sample.value
        into.samples[key] = replace(have, value=value, value_text=_format(value))


def _format(value: float) -> str:
    """As ``monitoring.istiod_text`` writes a value, non-finite ones as the format spells
    them (``+Inf``, ``-Inf``, ``NaN``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _render(families: _Text) -> bytes:
    lines: list[str] = []
    for family in families.values():
        lines.extend(family.header)
        lines.extend(sample.line() for sample in family.samples.values())
    return "".join(lines).encode()


class WorkerViews:
    """The supervisor's merged views, asking each worker's monitoring port over HTTP.

    ``ports`` names the workers' ports now (a worker that restarts listens on a new one);
    each is asked in turn at ``host``, waiting ``timeout`` seconds at most.
    """

    def __init__(
        self, ports: Callable[[], Sequence[int]], host: str = "127.0.0.1", timeout: float = 5.0
    ) -> None:
        """Ask the workers on ``ports()`` at ``host``."""
        self._ports = ports
        self._host = host
        self._timeout = timeout
        # Loopback, always: no HTTP proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def views(self) -> dict[str, View]:
        """The merged debug views by path, for ``monitoring.monitoring_app`` (without
        ``/debug/configz``, which the supervisor answers itself)."""
        return {
            "/debug/syncz": self.syncz(),
            "/debug/adsz": self.adsz(),
            "/debug/config_dump": self.config_dump(),
        }

    def syncz(self) -> View:
        """``/debug/syncz`` of all the workers (``merge_syncz``)."""

        def view(query: Mapping[str, str]) -> object:
            answers = self._json("/debug/syncz", query, list)
            return merge_syncz([a for a in answers if a is not None])

        return view

    def adsz(self) -> View:
        """``/debug/adsz`` of all the workers, the query (``proxyID``) passed on
        (``merge_adsz``)."""

        def view(query: Mapping[str, str]) -> object:
            answers = self._json("/debug/adsz", query, dict)
            return merge_adsz([a for a in answers if a is not None])

        return view

    def config_dump(self) -> View:
        """``/debug/config_dump?proxyID=`` from the worker the proxy is connected to
        (``None``, a 404, if none is)."""

        def view(query: Mapping[str, str]) -> object:
            return first_found(self._json("/debug/config_dump", query, dict, missing_ok=True))

        return view

    def metrics(self, own: Callable[[], bytes]) -> Callable[[], bytes]:
        """``/metrics``: the supervisor's ``own()`` and every worker's (``merge_metrics``)."""

        def text() -> bytes:
            workers: list[_Text] = []
            for port, body in self._get("/metrics", {}):
                try:
                    workers.append(_parse(body or b""))
                except (ValueError, UnicodeDecodeError) as err:
                    self._unreachable(port, "/metrics", f"not Prometheus text: {err}")
            return _render(_merge(_parse(own()), workers))

        return text

    def _json(
        self, path: str, query: Mapping[str, str], kind: type, missing_ok: bool = False
    ) -> Iterator[Any]:
        """Each worker's JSON answer of type ``kind`` (``None`` for a 404 if
        ``missing_ok``); workers that do not answer, or answer something else, are left
        out."""
        for port, body in self._get(path, query, missing_ok):
            if body is None:
                yield None
                continue
            try:
                answer = json.loads(body)
            except ValueError as err:
                self._unreachable(port, path, f"not JSON: {err}")
                continue
            if not isinstance(answer, kind):
                self._unreachable(port, path, f"not a JSON {kind.__name__}")
                continue
            yield answer

    def _get(
        self, path: str, query: Mapping[str, str], missing_ok: bool = False
    ) -> Iterator[tuple[int, bytes | None]]:
        """Each answering worker's port and body (``None`` for a 404 if ``missing_ok``)."""
        suffix = f"?{urlencode(query)}" if query else ""
        for port in list(self._ports()):
            url = f"http://{self._host}:{port}{path}{suffix}"
            try:
                with self._opener.open(url, timeout=self._timeout) as response:
                    body: bytes | None = response.read()
            except urllib.error.HTTPError as err:
                err.close()
                if err.code != 404 or not missing_ok:
                    self._unreachable(port, path, f"HTTP {err.code}")
                    continue
                body = None
            except urllib.error.URLError as err:
                self._unreachable(port, path, str(err.reason))
                continue
            except (OSError, http.client.HTTPException) as err:
                self._unreachable(port, path, str(err) or type(err).__name__)
                continue
            yield port, body

    def _unreachable(self, port: int, path: str, reason: str) -> None:
        log.warning("monitoring.worker_unreachable", port=port, path=path, reason=reason)
