"""What the demo tells of pyistiod's work: an edit applied or refused, one line each.

pyistiod's log goes to a file in the demo's work directory, as JSON lines (it
is not on a terminal); ``LogFollower`` reads what was added since the last
call and ``describe`` turns the events a person editing the config cares about
into a readable line (the rest, such as debug lines, into nothing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Entry = Mapping[str, Any]


class LogFollower:
    """Reads the complete lines appended to a file since the last ``lines()`` call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def lines(self) -> list[str]:
        """The new complete lines (a line still being written waits for the next call)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete.decode(errors="replace").splitlines()


def _applied(e: Entry) -> str:
    refused = f", {e['refused']} refused (see above)" if e.get("refused") else ""
    return f"applied: {e.get('objects')} objects from {e.get('files')} files in force{refused}"


def _invalid(e: Entry) -> str:
    what = " ".join(str(e[k]) for k in ("object",) if e.get(k))
    field = f"field {e['field']}: " if e.get("field") else ""
    standing = str(e.get("in_force", "nothing"))
    stays = "nothing of it is in force" if standing == "nothing" else f"{standing} stays in force"
    return (
        f"refused: {e.get('file')} (document {e.get('document')}){' ' + what if what else ''}: "
        f"{field}{e.get('reason')} ({stays})"
    )


_DESCRIBED: dict[str, Callable[[Entry], str]] = {
    "config.applied": _applied,
    "config.invalid": _invalid,
    "config.unreadable": lambda e: (
        f"refused: {e.get('detail')} ({e.get('in_force')} stays in force)"
    ),
    "config.empty_refused": lambda e: f"refused: {e.get('detail')}",
    "config.translation_failed": lambda e: (
        f"refused: pyistiod could not translate the config ({e.get('error')}); {e.get('detail')}"
    ),
    "config.analysis": lambda e: (
        f"warning: {e.get('object')}: {e.get('message')} [{e.get('code')}] (served anyway)"
    ),
    "xds.nack": lambda e: (
        f"rejected by Envoy: {e.get('node')} refused {e.get('type')} "
        f"version {e.get('version')}: {e.get('error')}"
    ),
}

_READ_ENDS = frozenset(
    ("config.applied", "config.unchanged", "config.unreadable", "config.empty_refused",
     "config.translation_failed", "serve.ready")
)  # fmt: skip
"""The events that close a read of the config (those before them are that read's)."""


class Narrator:
    """Readable lines for pyistiod's log lines, one per applied or refused edit.

    Every read of the config logs each refusal and warning again; a refusal
    already told at the previous read is told as ``still refused``, a warning
    already told is not told again.
    """

    def __init__(self) -> None:
        self.previous: set[str] = set()
        self.current: set[str] = set()

    def line(self, log_line: str) -> str | None:
        """What to tell of ``log_line`` (one JSON log entry), if anything."""
        try:
            entry = json.loads(log_line)
        except ValueError:
            return None
        if not isinstance(entry, dict):
            return None
        event = str(entry.get("event"))
        if event in _READ_ENDS:
            self.previous, self.current = self.current, set()
        render = _DESCRIBED.get(event)
        if render is None:
            return None
        said = render(entry)
        if event in ("config.invalid", "config.analysis"):
            self.current.add(said)
            if said in self.previous:
                return "still " + said if event == "config.invalid" else None
        return said
