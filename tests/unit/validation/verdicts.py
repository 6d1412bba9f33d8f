"""What a validation suite expects of a document: accepted (maybe with a warning) or refused.

Shared by the per-kind suites in this folder, so each states only its rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from translators.mesh.documents.kinds import ParseResult, parse_object


@dataclass(frozen=True)
class Accept:
    """Istio accepts the object; pyistiod too, with a warning holding ``warning`` if set."""

    warning: str = ""


@dataclass(frozen=True)
class Refuse:
    """Istio refuses the object; pyistiod names ``field`` with a reason holding ``reason``."""

    field: str
    reason: str


def document(api: str, kind: str, spec: object, name: str = "r") -> ParseResult:
    """``spec`` as a whole ``kind`` document in namespace ``default``, through ``parse_object``
    (so the unknown-field check applies too)."""
    doc: dict[str, Any] = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }
    return parse_object(doc, path=f"{kind.lower()}.yaml", document=0)


def check(result: ParseResult, verdict: Accept | Refuse, kind: type, *, quiet: bool) -> None:
    """``result`` is ``verdict``: refused naming the field and reason, or an object of
    ``kind`` with the warning asked for (``quiet``: and no other)."""
    if isinstance(verdict, Refuse):
        reasons = {e.field: e.reason for e in result.errors}
        assert result.obj is None
        assert verdict.field in reasons, reasons
        assert verdict.reason in reasons[verdict.field], reasons[verdict.field]
        return
    assert result.errors == ()
    assert isinstance(result.obj, kind)
    if verdict.warning:
        assert any(verdict.warning in w for w in result.warnings), result.warnings
    elif quiet:
        assert result.warnings == ()


def verdict(refused: str, reason: str) -> Accept | Refuse:
    """A row's verdict from its refused field (empty: accepted) and its reason or warning."""
    return Refuse(refused, reason) if refused else Accept(reason)


@dataclass(frozen=True)
class Case:
    """One row: a ``spec`` (YAML), and pyistiod's verdict next to Istio's."""

    name: str
    spec: str
    refused: str = ""
    """The field refused; empty when the object is accepted."""
    reason: str = ""
    """A fragment of the refusal reason, or (accepted) of a warning; empty: no warning."""
    istio: str = ""

    @property
    def verdict(self) -> Accept | Refuse:
        """The row's verdict."""
        return verdict(self.refused, self.reason)
