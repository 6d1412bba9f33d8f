"""Analysis messages as ``istioctl analyze`` prints them, each with the file and line it is about.

``findings`` puts together what a read refused (each error an IST0106
schema error, as Istio's analyzers report a refused object), the documents of
kinds pyistiod does not read (PYI0001, pyistiod's own code: an error, since they
are not applied) and what the analyzers found in the objects in force, and finds
where each object was read. The formats are istioctl's:

- text: ``Error [IST0101] (VirtualService default/reviews mesh/vs.yaml:12)
  Referenced host not found: "reviewz"`` (the line the object's document
  starts on; ``file (document N)`` where the line is not known; nothing for
  an object read from the API server);
- ``json`` / ``yaml``: a list of objects with ``code``, ``documentationUrl``,
  ``level``, ``message``, ``origin`` and ``reference`` (keys sorted), plus
  pyistiod's ``field``, the path of the field at fault where one is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import yaml

from translators.mesh.analysis import Level, Message, analyze
from translators.mesh.analysis.messages import SCHEMA_VALIDATION_ERROR, UNSUPPORTED_KIND
from translators.mesh.documents.meta import Origin
from translators.sources.loader import LoadResult

Lines = Mapping[tuple[str, int], int]
"""The line each document starts on, by (file, document index)."""

NO_LINES: Lines = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Finding:
    """One message and the place of the object it is about (``file:line``, or "")."""

    message: Message
    reference: str = ""

    @property
    def origin(self) -> str:
        """The object as istioctl names it: ``Kind namespace/name``."""
        key = self.message.key
        return f"{key.kind} {key.namespace}/{key.name}" if key else ""

    def line(self) -> str:
        """The text form: ``Level [CODE] (origin reference) message``."""
        where = " ".join(part for part in (self.origin, self.reference) if part)
        head = f"{self.message.level} [{self.message.type.code}]"
        return f"{head} ({where}) {self.message.text}" if where else f"{head} {self.message.text}"

    def as_dict(self) -> dict[str, str]:
        """The ``json``/``yaml`` form (keys as istioctl's, plus ``field``)."""
        out = {
            "code": self.message.type.code,
            "level": str(self.message.level),
            "message": self.message.text,
        }
        if self.message.documentation_url:
            out["documentationUrl"] = self.message.documentation_url
        if self.origin:
            out["origin"] = self.origin
        if self.reference:
            out["reference"] = self.reference
        if self.message.field:
            out["field"] = self.message.field
        return dict(sorted(out.items()))


def findings(result: LoadResult, lines: Lines = NO_LINES) -> list[Finding]:
    """Every refusal of ``result`` (IST0106) and every analysis message, in Istio's order."""
    found = [
        *schema_findings(result, lines),
        *unsupported_findings(result, lines),
        *analysis_findings(result, lines),
    ]
    return sorted(found, key=lambda f: f.message.sort_key())


def schema_findings(result: LoadResult, lines: Lines = NO_LINES) -> list[Finding]:
    """Each error of each object ``result`` refused, as an IST0106 schema error."""
    return [
        Finding(
            SCHEMA_VALIDATION_ERROR(
                refusal.key,
                f"{error.field}: {error.reason}" if error.field else error.reason,
                field=error.field,
            ),
            reference(Origin(error.path, error.document), lines),
        )
        for refusal in result.refusals
        for error in refusal.errors
    ]


def unsupported_findings(result: LoadResult, lines: Lines = NO_LINES) -> list[Finding]:
    """Each Istio or Gateway API document of a kind pyistiod does not read (PYI0001, an
    error: not applied)."""
    return [
        Finding(UNSUPPORTED_KIND(s.key, f"{s.api_version}/{s.kind}"), reference(s.origin, lines))
        for s in result.skipped
        if s.is_mesh_config
    ]


def analysis_findings(result: LoadResult, lines: Lines = NO_LINES) -> list[Finding]:
    """Every analysis message about the objects in force, with where each object was read."""
    out = []
    for message in analyze(result.model):
        obj = result.in_force.get(message.key) if message.key else None
        out.append(Finding(message, reference(obj.meta.origin, lines) if obj else ""))
    return out


def reference(origin: Origin, lines: Lines) -> str:
    """``file:line`` for a document of a file (``file (document N)`` when its line is not
    known), "" for an object read from the API server."""
    if origin.document < 0:
        return ""
    line = lines.get((origin.path, origin.document))
    return f"{origin.path}:{line}" if line is not None else str(origin)


def at_least(found: Iterable[Finding], level: Level) -> list[Finding]:
    """The findings of ``level`` or more severe."""
    return [f for f in found if f.message.level >= level]


def render(found: list[Finding], output: str) -> str:
    """The findings as ``output`` (``log``, ``json`` or ``yaml``) says, as istioctl prints."""
    if output == "json":
        return json.dumps([f.as_dict() for f in found], indent="\t", ensure_ascii=False)
    if output == "yaml":
        data = [f.as_dict() for f in found]
        return yaml.safe_dump(data, sort_keys=True, width=80, allow_unicode=True).rstrip("\n")
    return "\n".join(f.line() for f in found)
