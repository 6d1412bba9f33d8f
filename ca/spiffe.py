"""SPIFFE IDs of Istio's workload form: ``spiffe://<trust-domain>/ns/<ns>/sa/<sa>``.

Rule 1: a ``SpiffeId`` is valid by construction: ``__post_init__`` applies the
same checks as ``parse``, so ``str(SpiffeId(...))`` always parses back to an
equal value (round trip).

Rule 2: validation follows the SPIFFE ID spec (github.com/spiffe/spiffe,
standards/SPIFFE-ID.md):
  - section 2: the scheme is exactly ``spiffe://``; no query, fragment, port
    or userinfo;
  - section 2.1: the trust domain holds only lowercase letters, digits, ``.``,
    ``-`` and ``_``, at most 255 characters;
  - section 2.2: path segments are non-empty, never ``.`` or ``..``, and hold
    only letters, digits, ``.``, ``-`` and ``_``;
  - section 2.3: the whole ID is at most 2048 bytes.
Parsing is by hand, never ``urllib``: urllib normalizes (lowercases, accepts
``%`` escapes, drops empty segments), and a CA must refuse what it would not
reproduce byte for byte.

Rule 3: the path is Istio's ``/ns/<namespace>/sa/<service-account>``, exactly
four segments (Istio's ``spiffe.Identity``); any other path is refused.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ca.errors import InvalidSpiffeId

SCHEME = "spiffe://"
MAX_ID_LENGTH = 2048
MAX_TRUST_DOMAIN_LENGTH = 255
_TRUST_DOMAIN_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
_SEGMENT_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """A workload identity; ``str()`` gives its URI (Rule 1)."""

    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        uri = self._format()
        _check_trust_domain(uri, self.trust_domain)
        for segment in (self.namespace, self.service_account):
            _check_segment(uri, segment)
        _check_length(uri)

    def _format(self) -> str:
        return f"{SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def __str__(self) -> str:
        return self._format()


def parse(uri: str) -> SpiffeId:
    """Parse ``spiffe://<td>/ns/<ns>/sa/<sa>``; raise ``InvalidSpiffeId`` saying what is wrong."""
    if not uri.startswith(SCHEME):
        raise InvalidSpiffeId(uri, f"must start with {SCHEME!r} (lowercase scheme, SPIFFE-ID 2)")
    _check_length(uri)
    for char, part in (("?", "query"), ("#", "fragment")):
        if char in uri:
            raise InvalidSpiffeId(uri, f"a SPIFFE ID has no {part} (SPIFFE-ID 2)")
    rest = uri[len(SCHEME) :]
    trust_domain, slash, path = rest.partition("/")
    _check_trust_domain(uri, trust_domain)
    if not slash:
        raise InvalidSpiffeId(uri, "path is missing: expected /ns/<namespace>/sa/<service-account>")
    segments = path.split("/")
    for segment in segments:
        _check_segment(uri, segment)
    if len(segments) != 4 or segments[0] != "ns" or segments[2] != "sa":
        raise InvalidSpiffeId(
            uri, f"path /{path} is not Istio's /ns/<namespace>/sa/<service-account>"
        )
    return SpiffeId(trust_domain, segments[1], segments[3])


def validate_trust_domain(trust_domain: str) -> None:
    """Raise ``InvalidSpiffeId`` unless ``trust_domain`` is valid (SPIFFE-ID 2.1)."""
    _check_trust_domain(f"{SCHEME}{trust_domain}", trust_domain)


def _check_length(uri: str) -> None:
    size = len(uri.encode("utf-8"))
    if size > MAX_ID_LENGTH:
        raise InvalidSpiffeId(uri, f"is {size} bytes, above the {MAX_ID_LENGTH}-byte maximum")


def _check_trust_domain(uri: str, trust_domain: str) -> None:
    if not trust_domain:
        raise InvalidSpiffeId(uri, "trust domain is empty (SPIFFE-ID 2.1)")
    if len(trust_domain) > MAX_TRUST_DOMAIN_LENGTH:
        raise InvalidSpiffeId(
            uri, f"trust domain is above {MAX_TRUST_DOMAIN_LENGTH} characters (SPIFFE-ID 2.1)"
        )
    bad = sorted(set(trust_domain) - _TRUST_DOMAIN_CHARS)
    if bad:
        raise InvalidSpiffeId(
            uri,
            f"trust domain {trust_domain!r} has characters {''.join(bad)!r}; only lowercase "
            "letters, digits, '.', '-' and '_' are allowed (no port, userinfo; SPIFFE-ID 2.1)",
        )


def _check_segment(uri: str, segment: str) -> None:
    if not segment:
        raise InvalidSpiffeId(
            uri, "path has an empty segment ('//' or trailing '/'; SPIFFE-ID 2.2)"
        )
    if segment in (".", ".."):
        raise InvalidSpiffeId(uri, f"path segment {segment!r} is not allowed (SPIFFE-ID 2.2)")
    bad = sorted(set(segment) - _SEGMENT_CHARS)
    if bad:
        raise InvalidSpiffeId(
            uri,
            f"path segment {segment!r} has characters {''.join(bad)!r}; only letters, digits, "
            "'.', '-' and '_' are allowed (SPIFFE-ID 2.2)",
        )
