"""Where a source object came from and who it is: ``Origin`` and ``Meta``.

Invariants:

1. Every parsed source object carries its ``Origin`` (file and document index),
   so a cross-object error (a duplicate, a host defined twice) can name both
   files involved.
2. ``metadata.name`` is required; ``metadata.namespace`` defaults to
   ``default``, as ``kubectl apply`` does without ``-n``.
3. Of ``metadata.annotations`` only ``istio.io/dry-run`` is read, as Istio's
   ``checkDryRunAnnotation`` checks it on every Istio kind: refused on any
   kind but AuthorizationPolicy; there its value must parse as Go's
   ``strconv.ParseBool`` (the action is checked with the spec, in
   ``authorization``). Kubernetes kinds (Service, Pod, ...) are not Istio's
   to validate, so their annotations are not read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.model.services import Labels, ObjectKey

DEFAULT_NAMESPACE = "default"

DRY_RUN_ANNOTATION = "istio.io/dry-run"
"""Istio's annotation for an AuthorizationPolicy that is evaluated and reported, not enforced."""

_GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
"""The spellings Go's ``strconv.ParseBool`` accepts, and what they mean."""


@dataclass(frozen=True, slots=True, order=True)
class Origin:
    """A document's place: the file (relative to the config root) and its 0-based index.

    An object read from the API server has the path ``kubernetes`` and index -1.
    """

    path: str
    document: int

    def __str__(self) -> str:
        return f"{self.path} (document {self.document})" if self.document >= 0 else self.path


@dataclass(frozen=True, slots=True)
class Meta:
    """An object's identity (kind, namespace, name), metadata labels and origin."""

    key: ObjectKey
    labels: Labels
    origin: Origin
    created: str = ""
    """``metadata.creationTimestamp`` as the API server wrote it (RFC 3339, UTC), "" in files:
    the older object wins a conflict, as Istio decides."""
    dry_run: bool | None = None
    """The ``istio.io/dry-run`` annotation read as a Go bool; None when absent."""

    @property
    def namespace(self) -> str:
        """The object's namespace."""
        return self.key.namespace

    @property
    def name(self) -> str:
        """The object's name."""
        return self.key.name


NameRule = tuple[Callable[[str], bool], str]
"""A name check and the words describing it for an error message."""

SUBDOMAIN: NameRule = (
    v.is_dns_subdomain,
    "must be a DNS-1123 subdomain (lowercase alphanumerics, '-' and '.', at most 253)",
)
SERVICE_NAME: NameRule = (
    v.is_dns1035_label,
    "must be a DNS-1035 label (lowercase alphanumerics and '-', starting with a letter, "
    "at most 63)",
)
LABEL: NameRule = (
    v.is_dns_label,
    "must be a DNS-1123 label (lowercase alphanumerics and '-', no dots, at most 63)",
)


def read_meta(p: v.Problems, doc: Mapping[str, object], kind: str, rule: NameRule) -> Meta | None:
    """Read ``metadata`` (name, namespace, labels); names the object in ``p`` once known."""
    md = v.mapping(p, doc.get("metadata"), "metadata")
    if md is None:
        p.add("metadata.name", "is required: every object needs metadata.name")
        return None
    name = v.string(p, md.get("name"), "metadata.name", required=True)
    namespace = v.string(p, md.get("namespace"), "metadata.namespace") or DEFAULT_NAMESPACE
    if not v.is_dns_label(namespace):
        p.add("metadata.namespace", f"must be a DNS-1123 label, got {v.describe(namespace)}")
    if name is not None and not rule[0](name):
        p.add("metadata.name", f"{rule[1]}, got {v.describe(name)}")
    if name is None:
        return None
    key = ObjectKey(kind, namespace, name)
    p.obj = str(key)
    created = md.get("creationTimestamp")
    return Meta(
        key,
        v.labels(p, md.get("labels"), "metadata.labels"),
        Origin(p.path, p.document),
        created if isinstance(created, str) else "",
        _dry_run(p, doc, md, key),
    )


def _dry_run(
    p: v.Problems, doc: Mapping[str, object], md: Mapping[str, object], key: ObjectKey
) -> bool | None:
    """The ``istio.io/dry-run`` annotation of an Istio object (invariant 3)."""
    api_version = doc.get("apiVersion")
    if not isinstance(api_version, str) or not api_version.split("/")[0].endswith(".istio.io"):
        return None
    annotations = md.get("annotations")
    if not isinstance(annotations, Mapping) or DRY_RUN_ANNOTATION not in annotations:
        return None
    field = f"metadata.annotations.{DRY_RUN_ANNOTATION}"
    if key.kind != "AuthorizationPolicy":
        p.add(
            field,
            f"{key.namespace}/{key.name} has unsupported annotation {DRY_RUN_ANNOTATION}, "
            "please remove the annotation: only an AuthorizationPolicy can be a dry run",
        )
        return None
    raw = annotations[DRY_RUN_ANNOTATION]
    value = _GO_BOOLS.get(raw) if isinstance(raw, str) else None
    if value is None:
        p.add(
            field,
            "must be a boolean as Go's strconv.ParseBool reads it "
            f"({', '.join(_GO_BOOLS)}), got {v.describe(raw)}",
        )
    return value
