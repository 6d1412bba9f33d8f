"""Errors of pyistiod, each carrying what an operator needs to act.

    PyistiodError
    ├── ProtocolViolation   a proxy broke the xDS protocol (node, type_url, nonce)
    ├── ConfigRejected      a proxy NACKed a response (version, detail)
    ├── ConfigError         one invalid input object (file, document, field, reason)
    │   └── ConfigInvalid   a whole config change refused: a list of ConfigErrors
    ├── SourceUnavailable   a config source cannot be read at all (kubeconfig, API server)
    ├── TranslationError    the model could not become Envoy config (source key)
    └── CAError(kind)       certificate authority failures (issue 3)

Each maps to a gRPC status code through ``grpc_status`` (as h2 maps its
exceptions to an ``error_code``), so the transport never guesses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StatusCode(enum.Enum):
    """The subset of gRPC status codes pyistiod returns, by name (no grpc import here)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"


class PyistiodError(Exception):
    """The root of pyistiod's errors."""

    grpc_status: StatusCode = StatusCode.INTERNAL


class ProtocolViolation(PyistiodError):
    """A proxy sent something the xDS protocol does not allow."""

    grpc_status = StatusCode.INVALID_ARGUMENT

    def __init__(self, reason: str, *, node: str = "", type_url: str = "", nonce: str = "") -> None:
        self.reason = reason
        self.node = node
        self.type_url = type_url
        self.nonce = nonce
        where = ", ".join(
            f"{k}={v!r}" for k, v in (("node", node), ("type_url", type_url), ("nonce", nonce)) if v
        )
        super().__init__(f"{reason} ({where})" if where else reason)


class ConfigRejected(PyistiodError):
    """A proxy rejected (NACKed) a response; it keeps its previous version."""

    grpc_status = StatusCode.FAILED_PRECONDITION

    def __init__(self, *, node: str, type_url: str, version: str, detail: str) -> None:
        self.node = node
        self.type_url = type_url
        self.version = version
        self.detail = detail
        super().__init__(f"{node} rejected {type_url} version {version}: {detail}")


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One invalid input object: where it is and why it is refused.

    ``path`` is the file, ``document`` the 0-based index of the YAML document in
    it (-1 for an object that is no document of a file: one read from the API
    server), ``field`` a dotted path such as ``spec.ports[0].port``.
    """

    path: str
    document: int
    field: str
    reason: str
    object: str = ""
    """The object, as ``Kind namespace/name``, when it could be read."""

    def __str__(self) -> str:
        where = f"{self.path} (document {self.document})" if self.document >= 0 else self.path
        head = " ".join(part for part in (where, self.object) if part)
        at = f"field {self.field} " if self.field else ""
        return f"{head}: {at}{self.reason}" if head else f"{at}{self.reason}"


class ConfigInvalid(PyistiodError):
    """A config change was refused as a whole; the last good config stays in force."""

    grpc_status = StatusCode.INVALID_ARGUMENT

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{len(errors)} invalid object(s):\n{lines}")


class SourceUnavailable(PyistiodError):
    """A config source cannot be reached at all: a bad kubeconfig, a silent API server."""

    grpc_status = StatusCode.UNAVAILABLE

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class TranslationError(PyistiodError):
    """The mesh model could not be turned into Envoy config for one source object."""

    grpc_status = StatusCode.INTERNAL

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")
