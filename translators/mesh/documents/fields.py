"""Field readers for Kubernetes-shaped documents: each reads one field and validates it.

Invariants:

1. A reader never raises on bad input. It records a ``ConfigError`` in the
   ``Problems`` it is given and returns ``None`` (or a stated default), so one
   document reports every bad field at once rather than the first.
2. Field paths are dotted with list indices, as ``kubectl explain`` writes them:
   ``spec.ports[0].port``.
3. Reasons say what is needed and what was found: ``must be an integer
   1-65535, got 'abc'``; a value is rendered short (``describe``), with work
   bounded whatever its size.

``Problems`` is the one mutable thing here: a local accumulator that lives for
the parse of one document and is never shared or stored.
"""

from __future__ import annotations

import enum
import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import TypeVar

from translators.mesh.model.addresses import is_ip as is_ip
from translators.mesh.model.services import Labels
from xds_server.errors import ConfigError

EnumT = TypeVar("EnumT", bound=enum.Enum)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_VALUE = _LABEL_NAME
_ISTIO_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")


class Problems:
    """Collects the ``ConfigError``s of one document while it is read.

    ``obj`` (``Kind namespace/name``) is filled in once metadata has been read,
    so errors found later name the object.
    """

    def __init__(self, path: str, document: int, prefix: str = "") -> None:
        self.path = path
        self.document = document
        self.prefix = prefix
        self.obj = ""
        self._errors: list[ConfigError] = []

    def add(self, field: str, reason: str) -> None:
        """Record that ``field`` is invalid because of ``reason``."""
        full = f"{self.prefix}.{field}" if self.prefix and field else self.prefix or field
        self._errors.append(ConfigError(self.path, self.document, full, reason, self.obj))

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Every error recorded so far, in the order found."""
        return tuple(self._errors)


_SHORT = reprlib.Repr()
"""Renders at most a few elements two levels deep: bounded work whatever the value holds
(a YAML alias bomb renders in microseconds, not minutes)."""
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple = 2, 4, 4, 4
_SHORT.maxstring, _SHORT.maxother = 60, 40


def describe(value: object) -> str:
    """A short rendering of a bad value for an error message: ``'abc'``, ``3 (int)``."""
    if isinstance(value, str):
        return _SHORT.repr(value)
    text = _SHORT.repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def mapping(p: Problems, value: object, field: str) -> Mapping[str, object] | None:
    """``value`` as a mapping with string keys; ``None`` (no error) when absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        p.add(field, f"must be a mapping with string keys, got {describe(value)}")
        return None
    return value


def sequence(p: Problems, value: object, field: str) -> Sequence[object]:
    """``value`` as a list; empty (no error) when absent."""
    if value is None:
        return ()
    if not isinstance(value, list):
        p.add(field, f"must be a list, got {describe(value)}")
        return ()
    return value


def string(p: Problems, value: object, field: str, *, required: bool = False) -> str | None:
    """``value`` as a non-empty string, or ``None`` when absent (an error if required)."""
    if value is None or value == "":
        if required:
            p.add(field, "is required and must be a non-empty string")
        return None
    if not isinstance(value, str):
        p.add(field, f"must be a string, got {describe(value)}")
        return None
    return value


def boolean(p: Problems, value: object, field: str, default: bool) -> bool:
    """``value`` as a boolean, ``default`` when absent."""
    if value is None:
        return default
    if not isinstance(value, bool):
        p.add(field, f"must be true or false, got {describe(value)}")
        return default
    return value


def port(p: Problems, value: object, field: str, *, required: bool = True) -> int | None:
    """``value`` as a port number 1-65535 (a YAML integer, not a quoted string)."""
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    got = "nothing" if value is None else describe(value)
    p.add(field, f"must be an integer 1-65535, got {got}")
    return None


def port_or_name(p: Problems, value: object, field: str) -> int | str | None:
    """A ``targetPort``: a port number or the name of a container port (IANA_SVC_NAME)."""
    if value is None:
        return None
    if isinstance(value, str):
        if is_port_name(value):
            return value
        p.add(field, f"must be a port number 1-65535 or a port name, got {describe(value)}")
        return None
    return port(p, value, field)


def is_port_name(name: str) -> bool:
    """Kubernetes IANA_SVC_NAME: at most 15 lowercase alphanumerics or '-', one letter."""
    return (
        len(name) <= 15
        and bool(_IANA_SVC_NAME.match(name))
        and "--" not in name
        and any(c.isalpha() for c in name)
    )


def is_dns_label(name: str) -> bool:
    """RFC 1123 label, as Kubernetes requires of namespaces and port names."""
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def is_istio_label(name: str) -> bool:
    """A DNS-1123 label as Istio's ``labels.IsDNS1123Label`` checks it: upper case allowed.

    Istio uses it for subset names, gateway references and port names, where
    ``V1`` passes although Kubernetes object names may not hold it.
    """
    return len(name) <= 63 and bool(_ISTIO_LABEL.match(name))


def is_dns1035_label(name: str) -> bool:
    """RFC 1035 label (starts with a letter), as Kubernetes requires of Service names."""
    return len(name) <= 63 and bool(_DNS1035_LABEL.match(name))


def is_dns_subdomain(name: str) -> bool:
    """RFC 1123 subdomain, as Kubernetes requires of most object names."""
    return len(name) <= 253 and all(is_dns_label(part) for part in name.split("."))


def is_hostname(value: str, *, wildcard: bool = False) -> bool:
    """Whether ``value`` is a DNS name (any case); ``*.`` may lead it if ``wildcard``."""
    name = value.lower()
    if wildcard and name.startswith("*."):
        name = name[2:]
    return bool(name) and is_dns_subdomain(name)


def ip(p: Problems, value: object, field: str, *, required: bool = False) -> str | None:
    """``value`` as an IPv4 or IPv6 address."""
    text = string(p, value, field, required=required)
    if text is not None and not is_ip(text):
        p.add(field, f"must be an IPv4 or IPv6 address, got {describe(text)}")
        return None
    return text


def is_label_key(key: str) -> bool:
    """A Kubernetes label key: an optional DNS prefix and ``/``, then a name of at most 63
    alphanumerics, '-', '_' or '.'."""
    name = key.rsplit("/", 1)[-1]
    return bool(name) and len(name) <= 63 and bool(_LABEL_NAME.match(name))


def labels(p: Problems, value: object, field: str) -> Labels:
    """A label map: string keys (qualified names) to string values."""
    m = mapping(p, value, field)
    if m is None:
        return frozenset()
    pairs: list[tuple[str, str]] = []
    for key, val in m.items():
        if not is_label_key(key):
            p.add(f"{field}.{key}", "label key must be a qualified name (alphanumerics, '-_.')")
        elif not isinstance(val, str):
            hint = f' (quote it: "{val}")' if isinstance(val, int | float | bool) else ""
            p.add(f"{field}.{key}", f"label value must be a string, got {describe(val)}{hint}")
        elif "*" in key or "*" in val:
            p.add(f"{field}.{key}", f"wildcard is not supported in selector: {key}={val}")
        elif len(val) > 63 or not _LABEL_VALUE.match(val):
            p.add(
                f"{field}.{key}",
                "label value must be at most 63 alphanumerics, '-', '_' or '.', starting and "
                f"ending with an alphanumeric, got {describe(val)}",
            )
        else:
            pairs.append((key, val))
    return frozenset(pairs)


def named_ports(p: Problems, value: object, field: str) -> tuple[tuple[str, int], ...]:
    """A ``{name: port}`` map (WorkloadEntry and ServiceEntry endpoint ``ports``), sorted."""
    m = mapping(p, value, field)
    if m is None:
        return ()
    out: list[tuple[str, int]] = []
    for name, val in m.items():
        number = port(p, val, f"{field}.{name}")
        if number is not None:
            out.append((name, number))
    return tuple(sorted(out))


def choice(p: Problems, value: object, field: str, enum_cls: type[EnumT], default: EnumT) -> EnumT:
    """``value`` as a member of a string-valued enum (by value, case-sensitive)."""
    if value is None:
        return default
    members = {str(m.value): m for m in enum_cls}
    if isinstance(value, str) and value in members:
        return members[value]
    p.add(field, f"must be one of {', '.join(members)}, got {describe(value)}")
    return default
